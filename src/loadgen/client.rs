//! One client connection per worker over a `TcpStream` with TCP_NODELAY: the lean HTTP/1.1
//! client ([`super::h1`]) by default, a hyper h2c connection (prior knowledge) with
//! `--http2`; and the few response headers the reports need.

use super::h1;
use super::target::Source;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A connection: the lean HTTP/1.1 client, or hyper (h2c).
pub enum Conn {
    H1(h1::Conn),
    Hyper(HyperConn),
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

/// Opens a connection (TCP_NODELAY; with `http2`, then the h2c handshake).
pub async fn connect(addr: SocketAddr, http2: bool) -> std::io::Result<Conn> {
    if http2 {
        Ok(Conn::Hyper(connect_hyper(addr, true).await?))
    } else {
        Ok(Conn::H1(h1::connect(addr).await?))
    }
}

impl Conn {
    /// The peer closed the connection (e.g. after `Connection: close`): open a new one.
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_closed(),
            Conn::Hyper(c) => c.is_closed(),
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
        }
    }
}

/// A hyper connection (HTTP/1.1, or h2c with prior knowledge).
pub async fn connect_hyper(addr: SocketAddr, http2: bool) -> std::io::Result<HyperConn> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
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
    let mut answer = Answer {
        status: parts.status.as_u16(),
        ..Answer::default()
    };
    // One pass over the headers (cheaper than three hashed lookups).
    for (name, value) in &parts.headers {
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
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(answer)
}
