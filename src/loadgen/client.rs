//! One hyper client connection per worker (HTTP/1.1, or h2c with prior knowledge) over a
//! `TcpStream` with TCP_NODELAY, and the few response headers the reports need.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;

/// A connection's request half; its driver runs as a separate task.
pub enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// What a response says about the invocation, read while its body is drained.
#[derive(Clone, Copy, Debug, Default)]
pub struct Answer {
    pub status: u16,
    /// `x-hearth-cold-start: true`.
    pub cold_start: bool,
    /// `x-amz-function-error` present.
    pub function_error: bool,
    /// `x-hearth-start-delay-us`, when present and a number.
    pub start_delay_us: Option<u64>,
}

/// Opens a connection and spawns its driver on the current runtime (or `LocalSet`).
pub async fn connect(addr: SocketAddr, http2: bool) -> std::io::Result<Conn> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    if http2 {
        let (send, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(std::io::Error::other)?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Conn::H2(send))
    } else {
        let (send, conn) = http1::handshake(io).await.map_err(std::io::Error::other)?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Conn::H1(send))
    }
}

impl Conn {
    /// The peer closed the connection (e.g. after `Connection: close`): open a new one.
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::H1(s) => s.is_closed(),
            Conn::H2(s) => s.is_closed(),
        }
    }

    /// Sends one request and drains the whole response body.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> hyper::Result<Answer> {
        let resp = match self {
            Conn::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Conn::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        drain(resp).await
    }
}

async fn drain(resp: Response<Incoming>) -> hyper::Result<Answer> {
    let (parts, mut body) = resp.into_parts();
    let h = &parts.headers;
    let answer = Answer {
        status: parts.status.as_u16(),
        cold_start: h
            .get("x-hearth-cold-start")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")),
        function_error: h.contains_key("x-amz-function-error"),
        start_delay_us: h
            .get("x-hearth-start-delay-us")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok()),
    };
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(answer)
}
