//! The HTTP/3 client (`--http3`): quinn + h3. The workers of one engine thread share ONE QUIC
//! connection (so a run uses as many connections as threads, one per core), each request its
//! own bidirectional stream; the connection is opened by the first worker that needs it and
//! again by the first after it closed.

use super::client::{Answer, Failure, answer_of};
use bytes::{Buf, Bytes};
use http::Request;
use http_body_util::{BodyExt, Full};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Per-stream receive window: a 6 MB response without stalls.
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// Connection windows: many streams at once.
const CONN_WINDOW: u32 = 32 * 1024 * 1024;
/// Keeps an idle connection (a pause in an open loop) from timing out.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

type Sender = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// How to reach the server: the QUIC client config and the certificate name.
pub struct Setup {
    client: quinn::ClientConfig,
    server_name: String,
}

impl Setup {
    /// From a rustls config offering ALPN `h3` (TLS 1.3).
    pub fn new(tls: Arc<rustls::ClientConfig>, server_name: &str) -> anyhow::Result<Setup> {
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        let mut t = quinn::TransportConfig::default();
        t.stream_receive_window(STREAM_WINDOW.into())
            .receive_window(CONN_WINDOW.into())
            .send_window(CONN_WINDOW.into())
            .keep_alive_interval(Some(KEEP_ALIVE));
        client.transport_config(Arc::new(t));
        Ok(Setup {
            client,
            server_name: server_name.trim_matches(['[', ']']).to_string(),
        })
    }
}

/// This thread's connection.
struct Shared {
    send: Sender,
    closed: Rc<Cell<bool>>,
    _endpoint: quinn::Endpoint,
}

thread_local! {
    /// The engine thread's shared connection; a lock so concurrent first connects open one.
    static SLOT: Rc<tokio::sync::Mutex<Option<Shared>>> = Rc::default();
}

/// A worker's handle on its thread's connection.
pub struct Conn {
    send: Sender,
    closed: Rc<Cell<bool>>,
}

/// This thread's connection to `addr`, opened when there is none (or it closed). Must run
/// inside a `LocalSet` (the connection's driver is a local task).
pub async fn connect(setup: &Setup, addr: SocketAddr) -> std::io::Result<Conn> {
    let slot = SLOT.with(Rc::clone);
    let mut shared = slot.lock().await;
    if let Some(s) = shared.as_ref().filter(|s| !s.closed.get()) {
        return Ok(Conn {
            send: s.send.clone(),
            closed: s.closed.clone(),
        });
    }
    let s = open(setup, addr).await?;
    let conn = Conn {
        send: s.send.clone(),
        closed: s.closed.clone(),
    };
    *shared = Some(s);
    Ok(conn)
}

async fn open(setup: &Setup, addr: SocketAddr) -> std::io::Result<Shared> {
    let bind = if addr.is_ipv6() {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0u8; 4], 0))
    };
    let mut endpoint = quinn::Endpoint::client(bind)?;
    endpoint.set_default_client_config(setup.client.clone());
    let quic = endpoint
        .connect(addr, &setup.server_name)
        .map_err(std::io::Error::other)?
        .await
        .map_err(std::io::Error::other)?;
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic))
        .await
        .map_err(std::io::Error::other)?;
    let closed = Rc::new(Cell::new(false));
    let flag = closed.clone();
    tokio::task::spawn_local(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        flag.set(true);
    });
    Ok(Shared {
        send,
        closed,
        _endpoint: endpoint,
    })
}

impl Conn {
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Sends one request on a new stream and drains the response within `timeout`.
    pub async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        match tokio::time::timeout(timeout, self.exchange(req)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Failure::Io),
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn exchange(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await?.to_bytes();
        let mut stream = self
            .send
            .send_request(Request::from_parts(parts, ()))
            .await?;
        if !body.is_empty() {
            stream.send_data(body).await?;
        }
        stream.finish().await?;
        let resp = stream.recv_response().await?;
        let answer = answer_of(resp.status(), resp.headers());
        while let Some(mut chunk) = stream.recv_data().await? {
            chunk.advance(chunk.remaining());
        }
        Ok(answer)
    }
}

/// Forget this thread's connection (the engine thread is done).
pub fn reset() {
    SLOT.with(|s| {
        if let Ok(mut g) = s.try_lock() {
            *g = None;
        }
    });
}
