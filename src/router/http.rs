//! Listeners and the HTTP server loop shared by the public and admin ports: socket2-tuned
//! listeners, HTTP/1.1 and h2c on one port, graceful shutdown.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::net::SocketAddr;

/// Binds a TCP listener (SO_REUSEADDR, backlog 1024, non-blocking) for tokio.
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Largest request header section on h1 and h2 (h1: 431 past it); the h3 listener uses the
/// same bound.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The HTTP/1.1 + HTTP/2 server of every TCP listener, with the header limits set.
pub fn builder() -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    b.http1().max_buf_size(MAX_HEADER_BYTES);
    b.http2().max_header_list_size(MAX_HEADER_BYTES as u32);
    b
}

/// Serves connections until `shutdown` resolves, then stops accepting and lets open
/// connections finish their in-flight requests.
pub async fn serve<S, F>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = builder();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let svc = hyper::service::service_fn(move |req| {
            let fut = service(req);
            async move { Ok::<_, std::convert::Infallible>(fut.await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
