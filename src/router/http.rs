//! Listeners and the HTTP server loop shared by the public and admin ports (the accept phase):
//! socket2-tuned listeners (backlog, SO_REUSEADDR; SO_REUSEPORT on the public port so several
//! routers can share it), TCP_NODELAY and TCP keep-alive on every connection, a connection cap
//! (a permit taken before `accept`), HTTP/1.1 and h2c on one port, graceful shutdown.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pending connections the kernel queues per listener.
const BACKLOG: i32 = 1024;
/// Idle time before TCP keep-alive probes, and the interval between them.
const KEEPALIVE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The client's address, added to every request as an extension (a function URL's
/// `requestContext.http.sourceIp`). Listeners that feed the router put it there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// Binds a TCP listener (SO_REUSEADDR, backlog 1024, non-blocking) for tokio.
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    bind_with(addr, false)
}

/// [`bind`] plus SO_REUSEPORT: the public port, which several router processes may share.
pub fn bind_public(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    bind_with(addr, true)
}

fn bind_with(addr: SocketAddr, reuse_port: bool) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Options of [`serve_with`].
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Open connections at most (none: unlimited); more wait in the backlog.
    pub max_connections: Option<usize>,
    /// Where the accept phase's time goes.
    pub accept_phase: Option<Histogram>,
    /// Open connections now.
    pub connections: Option<Gauge>,
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
    serve_with(listener, service, shutdown, ServeOptions::default()).await
}

/// Sets TCP_NODELAY and keep-alive on an accepted connection.
fn tune(stream: &tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let ka = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE)
        .with_interval(KEEPALIVE_INTERVAL);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
}

/// [`serve`] with a connection cap and accept-phase metrics.
pub async fn serve_with<S, F>(
    listener: tokio::net::TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
) where
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = builder();
    let cap = Arc::new(tokio::sync::Semaphore::new(
        opts.max_connections
            .unwrap_or(tokio::sync::Semaphore::MAX_PERMITS),
    ));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer, permit) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(&listener, &cap) => match accepted {
                Some(a) => a,
                None => continue,
            },
        };
        let t = Instant::now();
        tune(&stream);
        let service = service.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(RemoteAddr(peer));
            let fut = service(req);
            async move { Ok::<_, std::convert::Infallible>(fut.await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        let gauge = opts.connections.clone();
        tokio::spawn(async move {
            let _open = gauge.map(Open::new);
            let _ = conn.await;
            drop(permit);
        });
        if let Some(h) = &opts.accept_phase {
            h.observe(t.elapsed().as_secs_f64());
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Takes a connection permit, then accepts one connection (`None` after an accept error).
async fn accept(
    listener: &tokio::net::TcpListener,
    cap: &Arc<tokio::sync::Semaphore>,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    let permit = cap.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => Some((stream, peer, permit)),
        Err(e) => {
            tracing::warn!(error = %e, "accept");
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

/// Counts one open connection on a gauge while it lives.
struct Open(Gauge);

impl Open {
    fn new(g: Gauge) -> Self {
        g.inc();
        Open(g)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}
