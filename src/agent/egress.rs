//! The per-tenant egress proxy (DESIGN.md "Egress"): a function configured with egress (Lambda's
//! `VpcConfig`) gets `HTTP_PROXY`/`HTTPS_PROXY` = `http://127.0.0.1:3128`, a listener the driver
//! bound inside the instance's network namespace before it started. The agent serves it from the
//! host's namespace: `CONNECT host:port` becomes a tunnel, a plain `GET http://host/path` is
//! forwarded, each only to destinations the tenant's allow-list ([`rules`]) permits; the rest is
//! answered `403` with a short plain-text reason, malformed requests `400`.
//!
//! The serving task lives as long as the instance's sandbox; tunnels and forwarded exchanges end
//! with it.

pub mod rules;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::{counter::Counter, family::Family};
use rules::{AllowList, Host, Target};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::metrics::OutcomeLabel;
use crate::sandbox::ExitReason;

/// The proxy address inside every sandbox with egress.
pub const PROXY_URL: &str = "http://127.0.0.1:3128";
/// Never proxied: the Runtime API lives on the sandbox's own loopback.
pub const NO_PROXY: &str = "127.0.0.1,localhost";

type Body = BoxBody<Bytes, hyper::Error>;

/// Limits of the proxy (config `egress.*`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Client connections (and their tunnels) per instance.
    pub max_connections: usize,
    /// Request line and headers (hyper's read buffer; at least 8192).
    pub max_header_bytes: usize,
}

/// Every tenant's allow-list and the limits: built once from the config.
pub struct Egress {
    allow: HashMap<String, Arc<AllowList>>,
    limits: Limits,
    connections: Family<OutcomeLabel, Counter>,
}

impl Egress {
    /// `allow` is validated config (account id → rules); a bad rule is an error here too.
    pub fn new(
        allow: &std::collections::BTreeMap<String, Vec<String>>,
        limits: Limits,
        connections: Family<OutcomeLabel, Counter>,
    ) -> Result<Egress, String> {
        let allow = allow
            .iter()
            .map(|(acct, r)| Ok((acct.clone(), Arc::new(AllowList::parse(r)?))))
            .collect::<Result<_, String>>()?;
        Ok(Egress {
            allow,
            limits,
            connections,
        })
    }

    /// The proxy of a function (by its ARN's account; no list means everything is refused).
    pub fn proxy_for(&self, function_arn: &str) -> Proxy {
        let account = function_arn.split(':').nth(4).unwrap_or_default();
        Proxy {
            allow: self.allow.get(account).cloned().unwrap_or_default(),
            limits: self.limits,
            connections: self.connections.clone(),
        }
    }
}

/// The proxy environment of a function with egress.
pub fn proxy_env() -> [(&'static str, &'static str); 6] {
    [
        ("HTTP_PROXY", PROXY_URL),
        ("HTTPS_PROXY", PROXY_URL),
        ("http_proxy", PROXY_URL),
        ("https_proxy", PROXY_URL),
        ("NO_PROXY", NO_PROXY),
        ("no_proxy", NO_PROXY),
    ]
}

/// One instance's proxy.
#[derive(Clone)]
pub struct Proxy {
    allow: Arc<AllowList>,
    limits: Limits,
    connections: Family<OutcomeLabel, Counter>,
}

/// Per-instance state shared by its connections.
#[derive(Clone)]
struct Ctx {
    proxy: Proxy,
    /// Closed when the serving task ends: tunnels and forwards stop with it.
    stop: watch::Receiver<()>,
}

/// Serves `listener` until the sandbox has exited (or the task is aborted); every connection,
/// tunnel and forwarded exchange ends with it.
pub async fn serve(
    listener: std::net::TcpListener,
    proxy: Proxy,
    mut exited: watch::Receiver<Option<ExitReason>>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return tracing::error!(error = %e, "egress listener"),
    };
    let (_stop, stop) = watch::channel(());
    let slots = Arc::new(Semaphore::new(proxy.limits.max_connections));
    let ctx = Ctx { proxy, stop };
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = exited.wait_for(Option::is_some) => return,
            accepted = listener.accept() => accepted,
        };
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or similar: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => conns.spawn(serve_conn(stream, ctx.clone(), permit)),
            Err(_) => conns.spawn(too_many(stream)),
        };
    }
}

/// Over the per-instance connection limit: a 503 and close.
async fn too_many(mut stream: TcpStream) {
    let msg = "too many proxy connections from this instance\n";
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{msg}",
        msg.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn serve_conn(stream: TcpStream, ctx: Ctx, permit: OwnedSemaphorePermit) {
    let _ = stream.set_nodelay(true);
    let permit = Arc::new(permit);
    let limits = ctx.proxy.limits;
    let svc = hyper::service::service_fn(move |req| {
        let (ctx, permit) = (ctx.clone(), permit.clone());
        async move { Ok::<_, Infallible>(handle(ctx, req, permit).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(100)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades()
        .await;
}

fn text(status: StatusCode, msg: impl std::fmt::Display) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("hearth egress: {msg}\n")))
            .map_err(|n: Infallible| match n {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Why a request was not proxied.
struct Refusal(StatusCode, String);

async fn handle(
    ctx: Ctx,
    req: Request<Incoming>,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<Body> {
    let result = proxy_request(&ctx, req, permit).await;
    // Refused: malformed or not permitted. A permitted destination that is down (502, 504)
    // still counts as allowed.
    let outcome = match &result {
        Err(Refusal(s, _)) if *s == StatusCode::FORBIDDEN || *s == StatusCode::BAD_REQUEST => {
            "refused"
        }
        _ => "allowed",
    };
    ctx.proxy
        .connections
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
    result.unwrap_or_else(|Refusal(status, msg)| {
        tracing::debug!(%status, %msg, "egress refused");
        text(status, msg)
    })
}

async fn proxy_request(
    ctx: &Ctx,
    req: Request<Incoming>,
    permit: Arc<OwnedSemaphorePermit>,
) -> Result<Response<Body>, Refusal> {
    let connect = req.method() == Method::CONNECT;
    let target = rules::parse_target(connect, &req.uri().to_string())
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, e.to_string()))?;
    let addrs = ctx.proxy.destinations(&target).await?;
    let stream = connect_any(&addrs, ctx.proxy.limits.connect_timeout).await?;
    if connect {
        let upgrade = hyper::upgrade::on(req);
        let (idle, mut stop) = (ctx.proxy.limits.idle_timeout, ctx.stop.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(client) = upgrade.await else { return };
            tokio::select! {
                _ = stop.changed() => {}
                _ = tunnel(TokioIo::new(client), stream, idle) => {}
            }
        });
        return Ok(Response::new(
            Full::default().map_err(|n| match n {}).boxed(),
        ));
    }
    forward(ctx, req, &target, stream).await
}

impl Proxy {
    /// The addresses `target` may be reached at, resolved on the host.
    async fn destinations(&self, target: &Target) -> Result<Vec<SocketAddr>, Refusal> {
        let forbidden = |msg: &str| Refusal(StatusCode::FORBIDDEN, format!("{target}: {msg}"));
        let resolved = match &target.host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, target.port)],
            Host::Name(name) => {
                if !self.allow.may_resolve(name, target.port) {
                    return Err(forbidden("the destination is not in the allow-list"));
                }
                let lookup = tokio::net::lookup_host((name.as_str(), target.port));
                match tokio::time::timeout(self.limits.connect_timeout, lookup).await {
                    Ok(Ok(addrs)) => addrs.collect(),
                    Ok(Err(e)) => {
                        let msg = format!("{target}: cannot resolve: {e}");
                        return Err(Refusal(StatusCode::BAD_GATEWAY, msg));
                    }
                    Err(_) => {
                        let msg = format!("{target}: name resolution timed out");
                        return Err(Refusal(StatusCode::GATEWAY_TIMEOUT, msg));
                    }
                }
            }
        };
        self.allow.permitted(target, &resolved).map_err(forbidden)
    }
}

/// Connects to the first address that answers within the connect timeout (overall).
async fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Refusal> {
    let attempt = async {
        let mut last = None;
        for a in addrs {
            match TcpStream::connect(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(format!("{a}: {e}")),
            }
        }
        Err(last.unwrap_or_else(|| "no address".into()))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(Refusal(StatusCode::BAD_GATEWAY, format!("connect {e}"))),
        Err(_) => Err(Refusal(
            StatusCode::GATEWAY_TIMEOUT,
            format!("connect timed out after {timeout:?}"),
        )),
    }
}

/// When bytes last moved on a destination connection.
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn idle(&self, idle: Duration) {
        let tick = (idle / 4).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(tick).await;
            let now = self.epoch.elapsed().as_millis() as u64;
            if now.saturating_sub(self.last.load(Ordering::Relaxed)) >= idle.as_millis() as u64 {
                return;
            }
        }
    }
}

/// A destination connection that records its activity (for the idle timeout).
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Copies both ways (passing half-closes on) until both sides have closed, or nothing moved
/// for `idle`.
async fn tunnel<C>(mut client: C, upstream: TcpStream, idle: Duration)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity::new();
    let mut upstream = Tracked {
        inner: upstream,
        activity: activity.clone(),
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = activity.idle(idle) => tracing::debug!("egress tunnel idle, closed"),
    }
}

/// Headers that belong to one hop (RFC 9110 7.6.1), plus those `Connection` names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for n in named {
        h.remove(n.as_str());
    }
    for n in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        h.remove(n);
    }
}

/// Sends a plain request on its own upstream connection, in origin form, and streams the answer
/// back (the client's connection to the proxy stays keep-alive as hyper decides).
async fn forward(
    ctx: &Ctx,
    req: Request<Incoming>,
    target: &Target,
    stream: TcpStream,
) -> Result<Response<Body>, Refusal> {
    let bad_gateway =
        |e: &dyn std::fmt::Display| Refusal(StatusCode::BAD_GATEWAY, format!("{target}: {e}"));
    let (mut parts, body) = req.into_parts();
    let authority = parts.uri.authority().map(|a| a.as_str().to_string());
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    parts.uri = path.parse().map_err(|e| bad_gateway(&e))?;
    strip_hop_by_hop(&mut parts.headers);
    if !parts.headers.contains_key(header::HOST)
        && let Some(a) = authority.and_then(|a| HeaderValue::from_str(&a).ok())
    {
        parts.headers.insert(header::HOST, a);
    }
    let activity = Activity::new();
    let stream = Tracked {
        inner: stream,
        activity: activity.clone(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| bad_gateway(&e))?;
    let (idle, mut stop) = (ctx.proxy.limits.idle_timeout, ctx.stop.clone());
    // Dropping the connection (stop, idle) ends the answer's body, and so the client's response.
    tokio::spawn(async move {
        tokio::select! {
            _ = stop.changed() => {}
            _ = conn => {}
            _ = activity.idle(idle) => tracing::debug!("egress upstream idle, closed"),
        }
    });
    let sent = tokio::time::timeout(idle, sender.send_request(Request::from_parts(parts, body)));
    let mut resp = match sent.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(bad_gateway(&e)),
        Err(_) => {
            return Err(Refusal(
                StatusCode::GATEWAY_TIMEOUT,
                format!("{target}: no answer"),
            ));
        }
    };
    strip_hop_by_hop(resp.headers_mut());
    Ok(resp.map(|b| b.boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A host-side TCP echo server.
    async fn echo_server() -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        port
    }

    /// The proxy served on a host listener (as the agent serves the in-namespace one).
    fn start(
        port: u16,
        max_connections: usize,
        idle: Duration,
    ) -> (
        SocketAddr,
        watch::Sender<Option<ExitReason>>,
        tokio::task::JoinHandle<()>,
    ) {
        let allow = std::collections::BTreeMap::from([(
            "000000000000".to_string(),
            vec![format!("127.0.0.1:{port}")],
        )]);
        let limits = Limits {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: idle,
            max_connections,
            max_header_bytes: 8192,
        };
        let proxy = Egress::new(&allow, limits, Family::default())
            .unwrap()
            .proxy_for("arn:aws:lambda:us-east-1:000000000000:function:f");
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = watch::channel(None);
        (addr, tx, tokio::spawn(serve(l, proxy, rx)))
    }

    /// Sends `request`, returns the stream and the response head.
    async fn ask(proxy: SocketAddr, request: &str) -> (TcpStream, String) {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).await.unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        (s, String::from_utf8_lossy(&head).into_owned())
    }

    async fn tunnel_to(proxy: SocketAddr, port: u16) -> TcpStream {
        let (mut s, head) = ask(proxy, &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n")).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        s
    }

    /// Waits (bounded) until the peer closes `s`.
    async fn closed(s: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await;
        matches!(read, Ok(Ok(0)) | Ok(Err(_)))
    }

    #[tokio::test]
    async fn connection_limit_and_instance_lifetime() {
        let port = echo_server().await;
        let (proxy, exited, task) = start(port, 2, Duration::from_secs(300));
        let mut a = tunnel_to(proxy, port).await;
        let mut b = tunnel_to(proxy, port).await;
        let (_, head) = ask(proxy, &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n")).await;
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        let (_, head) = ask(proxy, "CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        // The instance ends: its tunnels end with it.
        exited.send(Some(ExitReason::Signaled(9))).unwrap();
        task.await.unwrap();
        assert!(closed(&mut a).await && closed(&mut b).await);
    }

    #[tokio::test]
    async fn refusals_and_idle_tunnels() {
        let port = echo_server().await;
        let (proxy, _exited, _task) = start(port, 8, Duration::from_millis(300));
        let (_, head) = ask(proxy, "CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 403"), "{head}");
        let (_, head) = ask(proxy, "GET /relative HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
        // A tunnel nothing moves on is closed.
        let mut t = tunnel_to(proxy, port).await;
        assert!(closed(&mut t).await);
    }
}
