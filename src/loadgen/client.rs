//! One client connection per worker over a `TcpStream` with TCP_NODELAY: the lean HTTP/1.1
//! client ([`super::h1`]) by default, a hyper h2c connection (prior knowledge) with
//! `--http2`; for `https://` targets hyper over rustls (ALPN `http/1.1`, or `h2` with
//! `--http2`), or with `--http3` a stream on the thread's shared QUIC connection
//! ([`super::h3`]); and the few response headers the reports need.

use super::target::Source;
use super::{h1, h3};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A connection: the lean HTTP/1.1 client, hyper (h2c, or h1/h2 over TLS), or an HTTP/3 handle.
pub enum Conn {
    H1(h1::Conn),
    Hyper(HyperConn),
    H3(h3::Conn),
}

/// The protocol a run speaks.
#[derive(Clone)]
pub enum Wire {
    /// HTTP/1.1 over TCP (the lean client).
    H1,
    /// h2c with prior knowledge.
    H2c,
    /// HTTP/1.1 (or h2 with `http2`) over TLS.
    Tls {
        config: Arc<rustls::ClientConfig>,
        name: rustls_pki_types::ServerName<'static>,
        http2: bool,
    },
    /// HTTP/3 over QUIC.
    H3(Arc<h3::Setup>),
}

impl Wire {
    /// The report's name for it.
    pub fn label(&self) -> &'static str {
        match self {
            Wire::H1 => "h1",
            Wire::H2c => "h2c",
            Wire::Tls { http2: false, .. } => "h1-tls",
            Wire::Tls { http2: true, .. } => "h2-tls",
            Wire::H3(_) => "h3",
        }
    }

    /// Whether requests carry an absolute URI (`:scheme`, `:authority`) instead of `Host`.
    pub fn absolute_uri(&self) -> bool {
        !matches!(self, Wire::H1 | Wire::Tls { http2: false, .. })
    }
}

/// A hyper connection: its request half and its driver. The driver is polled by the worker
/// that owns the connection, only while a request is in flight: one task per worker, so a
/// response wakes nothing but that worker.
pub struct HyperConn {
    send: Sender,
    driver: Driver,
    /// A lazily reset per-connection timer: it fires at or before the current request's
    /// deadline and is re-armed only then, so a request costs no timer registration.
    timer: Pin<Box<tokio::time::Sleep>>,
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// The connection future, fused: pending forever once it has finished.
struct Driver {
    fut: Pin<Box<dyn Future<Output = ()>>>,
    done: bool,
}

impl Future for Driver {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Pending;
        }
        let r = self.fut.as_mut().poll(cx);
        self.done = r.is_ready();
        r
    }
}

/// Why a request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Io,
}

/// What a response says about the invocation, read while its body is drained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `x-hearth-cold-start: true`.
    pub cold_start: bool,
    /// `x-amz-function-error` present.
    pub function_error: bool,
    /// `x-hearth-start-delay-us`, when present and a number.
    pub start_delay_us: Option<u64>,
}

/// Opens a connection (TCP_NODELAY; then the h2c or TLS handshake), or for HTTP/3 takes a
/// handle on the thread's QUIC connection.
pub async fn connect(addr: SocketAddr, wire: &Wire) -> std::io::Result<Conn> {
    match wire {
        Wire::H1 => Ok(Conn::H1(h1::connect(addr).await?)),
        Wire::H2c => Ok(Conn::Hyper(connect_hyper(addr, true).await?)),
        Wire::Tls {
            config,
            name,
            http2,
        } => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name.clone(), stream)
                .await?;
            Ok(Conn::Hyper(handshake(TokioIo::new(tls), *http2).await?))
        }
        Wire::H3(setup) => Ok(Conn::H3(h3::connect(setup, addr).await?)),
    }
}

impl Conn {
    /// The peer closed the connection (e.g. after `Connection: close`): open a new one.
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_closed(),
            Conn::Hyper(c) => c.is_closed(),
            Conn::H3(c) => c.is_closed(),
        }
    }

    /// Sends request `idx` of `source` and reads the whole response within `timeout`.
    /// After a failure the connection must be dropped.
    pub async fn send(
        &mut self,
        source: &dyn Source,
        idx: u32,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        match self {
            Conn::H1(c) => c.send(&source.h1_request(idx), timeout).await,
            Conn::Hyper(c) => c.send(source.request(idx), timeout).await,
            Conn::H3(c) => c.send(source.request(idx), timeout).await,
        }
    }
}

/// A hyper connection (HTTP/1.1, or h2c with prior knowledge).
pub async fn connect_hyper(addr: SocketAddr, http2: bool) -> std::io::Result<HyperConn> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    handshake(TokioIo::new(stream), http2).await
}

/// The HTTP/1.1 or h2 handshake on an open byte stream.
async fn handshake<I>(io: I, http2: bool) -> std::io::Result<HyperConn>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (send, fut): (Sender, Pin<Box<dyn Future<Output = ()>>>) = if http2 {
        let (send, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(std::io::Error::other)?;
        (
            Sender::H2(send),
            Box::pin(async move {
                let _ = conn.await;
            }),
        )
    } else {
        let (send, conn) = http1::Builder::new()
            .writev(false)
            .read_buf_exact_size(Some(16 * 1024))
            .handshake(io)
            .await
            .map_err(std::io::Error::other)?;
        (
            Sender::H1(send),
            Box::pin(async move {
                let _ = conn.await;
            }),
        )
    };
    Ok(HyperConn {
        send,
        driver: Driver { fut, done: false },
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
    })
}

impl HyperConn {
    /// The peer closed the connection (e.g. after `Connection: close`): open a new one.
    pub fn is_closed(&self) -> bool {
        self.driver.done
            || match &self.send {
                Sender::H1(s) => s.is_closed(),
                Sender::H2(s) => s.is_closed(),
            }
    }

    /// Sends one request and drains the whole response body within `timeout`, driving the
    /// connection meanwhile. After a failure the connection must be dropped.
    pub async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let HyperConn {
            send,
            driver,
            timer,
        } = self;
        let deadline = tokio::time::Instant::now() + timeout;
        if timer.deadline() <= tokio::time::Instant::now() {
            timer.as_mut().reset(deadline);
        }
        let exchange = async move {
            let resp = match send {
                Sender::H1(s) => {
                    s.ready().await?;
                    s.send_request(req).await?
                }
                Sender::H2(s) => {
                    s.ready().await?;
                    s.send_request(req).await?
                }
            };
            drain(resp).await
        };
        tokio::pin!(exchange);
        loop {
            tokio::select! {
                biased;
                r = &mut exchange => return r.map_err(|_| Failure::Io),
                () = &mut *driver => return Err(Failure::Io),
                () = timer.as_mut() => {
                    // The timer was armed for an earlier request: re-arm it for this one.
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Failure::Timeout);
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

async fn drain(resp: Response<Incoming>) -> hyper::Result<Answer> {
    let (parts, mut body) = resp.into_parts();
    let answer = answer_of(parts.status, &parts.headers);
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(answer)
}

/// What a response's status and headers say.
pub(super) fn answer_of(status: http::StatusCode, headers: &http::HeaderMap) -> Answer {
    let mut answer = Answer {
        status: status.as_u16(),
        ..Answer::default()
    };
    // One pass over the headers (cheaper than three hashed lookups).
    for (name, value) in headers {
        match name.as_str() {
            "x-hearth-cold-start" => {
                answer.cold_start = value.as_bytes().eq_ignore_ascii_case(b"true")
            }
            "x-amz-function-error" => answer.function_error = true,
            "x-hearth-start-delay-us" => {
                answer.start_delay_us = value.to_str().ok().and_then(|v| v.trim().parse().ok())
            }
            _ => {}
        }
    }
    answer
}
