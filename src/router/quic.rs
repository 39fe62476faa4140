//! HTTP/3 on the public API: quinn (QUIC, same rustls provider and certificate resolver as the
//! TLS listener) and h3, feeding the same router service. Each h3 request is checked and mapped
//! by [`map_request`] (pure, fuzzed), its body streamed to the router (which enforces the
//! payload limits, so at most limit + a bounded drain is ever buffered), and the router's
//! response written back onto the request stream.
//!
//! 0-RTT: early data is accepted, but a request whose method is not safe (an invoke is a POST;
//! management PUT/DELETE too) waits until the handshake completes (the client's Finished proves it is not a
//! replay), at most [`CONFIRM_TIMEOUT`]; if it does not complete in time it is answered 425.

use super::{Body, BoxError};
use crate::api::ApiError;
use bytes::{Buf, Bytes};
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Largest encoded header section of a request (SETTINGS_MAX_FIELD_SECTION_SIZE); larger
/// ones are refused by h3.
pub const MAX_HEADER_BYTES: u64 = super::http::MAX_HEADER_BYTES as u64;
/// Most header fields in a request.
pub const MAX_HEADERS: usize = 128;
/// Per-stream receive window: a 6 MB payload plus headroom in flight without stalls.
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// Per-connection receive and send windows: a few large streams at once.
const CONN_WINDOW: u32 = 32 * 1024 * 1024;
/// A connection with no traffic for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a QUIC handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a non-idempotent 0-RTT request waits for the handshake before a 425.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// Concurrent request streams per connection.
const MAX_STREAMS: u32 = 256;

/// Binds the QUIC endpoint on `addr` (UDP), sharing `certs` with the TLS listener.
pub fn endpoint(
    addr: SocketAddr,
    certs: Arc<super::tls::Certs>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> anyhow::Result<quinn::Endpoint> {
    let mut tls = super::tls::server_config(certs, provider, &[b"h3"])?;
    // quinn needs 0 or u32::MAX; u32::MAX accepts 0-RTT (see the module doc for replays).
    tls.max_early_data_size = u32::MAX;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(STREAM_WINDOW.into())
        .receive_window(CONN_WINDOW.into())
        .send_window(CONN_WINDOW.into())
        .max_concurrent_bidi_streams(MAX_STREAMS.into())
        .max_idle_timeout(Some(IDLE_TIMEOUT.try_into()?))
        // Clients keep connections alive; the server only times idle ones out.
        .keep_alive_interval(None);
    server.transport_config(Arc::new(t));
    server.migration(true);
    Ok(quinn::Endpoint::server(server, addr)?)
}

/// Serves HTTP/3 until `shutdown` resolves; then refuses new connections, sends GOAWAY on
/// open ones and waits for their in-flight requests.
pub async fn serve<S, F>(endpoint: quinn::Endpoint, service: S, shutdown: impl Future<Output = ()>)
where
    S: Fn(Request<Body>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => {
                    conns.spawn(connection(incoming, service.clone(), stop_rx.clone()));
                }
                None => break,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    endpoint.set_server_config(None);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    endpoint.close(0u32.into(), b"shutdown");
    endpoint.wait_idle().await;
}

async fn connection<S, F>(incoming: quinn::Incoming, service: S, mut stop: watch::Receiver<bool>)
where
    S: Fn(Request<Body>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => return tracing::debug!(error = %e, "QUIC connection refused"),
    };
    let (confirmed_tx, confirmed) = watch::channel(false);
    // A server's into_0rtt always succeeds; `accepted` resolves once the handshake completes.
    let conn = match connecting.into_0rtt() {
        Ok((conn, accepted)) => {
            let watched = conn.clone();
            tokio::spawn(async move {
                // Resolves (true only if 0-RTT was used) on completion or on close.
                let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, accepted).await;
                if done.is_ok() && watched.close_reason().is_none() {
                    let _ = confirmed_tx.send(true);
                }
            });
            conn
        }
        Err(connecting) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
            Ok(Ok(conn)) => {
                let _ = confirmed_tx.send(true);
                conn
            }
            _ => return tracing::debug!("QUIC handshake failed"),
        },
    };
    let peer = conn.remote_address();
    let h3 = h3::server::builder()
        .max_field_section_size(MAX_HEADER_BYTES)
        // A grease frame after the last DATA frame hides the end of the response from some
        // clients (aioquic 1.2 never reports the stream as ended).
        .send_grease(false)
        .build::<_, Bytes>(h3_quinn::Connection::new(conn))
        .await;
    let mut h3 = match h3 {
        Ok(c) => c,
        Err(e) => return tracing::debug!(error = %e, "HTTP/3 connection setup failed"),
    };
    let mut requests = JoinSet::new();
    if *stop.borrow_and_update() {
        let _ = h3.shutdown(0).await;
    }
    loop {
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    requests.spawn(request(resolver, service.clone(), confirmed.clone(), peer));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "HTTP/3 connection ended");
                    break;
                }
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            _ = stop.changed() => {
                let _ = h3.shutdown(0).await;
                break;
            }
        }
    }
    while requests.join_next().await.is_some() {}
}

type Resolver = h3::server::RequestResolver<h3_quinn::Connection, Bytes>;

async fn request<S, F>(
    resolver: Resolver,
    service: S,
    mut confirmed: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    S: Fn(Request<Body>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (head, stream) = match resolver.resolve_request().await {
        Ok(r) => r,
        Err(e) => return tracing::debug!(error = %e, "HTTP/3 request refused"),
    };
    let (mut send, recv) = stream.split();
    let resp = match map_request(head) {
        Err(e) => e.to_response(""),
        Ok(head) => {
            let safe = is_safe(head.method());
            let waited = safe
                || tokio::time::timeout(CONFIRM_TIMEOUT, async {
                    confirmed.wait_for(|c| *c).await.is_ok()
                })
                .await
                .unwrap_or(false);
            if waited {
                let mut req = head.map(|()| H3Body { recv }.boxed_unsync());
                req.extensions_mut().insert(super::http::RemoteAddr(peer));
                service(req).await
            } else {
                ApiError::too_early("The request arrived in 0-RTT data; retry it").to_response("")
            }
        }
    };
    if let Err(e) = respond(&mut send, resp).await {
        tracing::debug!(error = %e, "writing an HTTP/3 response");
    }
}

type SendStream = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

async fn respond(send: &mut SendStream, resp: Response<Full<Bytes>>) -> Result<(), BoxError> {
    let (mut parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    parts
        .headers
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    send.send_response(Response::from_parts(parts, ())).await?;
    if !body.is_empty() {
        send.send_data(body).await?;
    }
    send.finish().await?;
    Ok(())
}

/// Safe to replay from 0-RTT: only methods without side effects. PUT and DELETE are
/// idempotent in HTTP but still change state (the management API), so they wait too.
fn is_safe(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// An h3 request body, streamed frame by frame (QUIC flow control bounds what is in flight).
struct H3Body {
    recv: h3::server::RequestStream<h3_quinn::RecvStream, Bytes>,
}

impl http_body::Body for H3Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        match self.recv.poll_recv_data(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(mut buf))) => {
                let data = buf.copy_to_bytes(buf.remaining());
                Poll::Ready(Some(Ok(http_body::Frame::data(data))))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e.into()))),
        }
    }
}

/// Checks an h3 request head (RFC 9114 §4.3.1 and §4.2) and maps it to the request the
/// router sees: `https` scheme, an origin-form path, the authority as `Host`, no
/// connection-specific headers, a well-formed `content-length`, bounded header count.
pub fn map_request(head: Request<()>) -> Result<Request<()>, ApiError> {
    let (mut parts, ()) = head.into_parts();
    let bad = |m: &str| {
        Err(ApiError::invalid_content(format!(
            "malformed HTTP/3 request: {m}"
        )))
    };
    if parts.method == Method::CONNECT {
        return bad("CONNECT is not supported");
    }
    if parts.uri.scheme_str().is_some_and(|s| s != "https") {
        return bad("scheme must be https");
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    if !(path.starts_with('/') || (path == "*" && parts.method == Method::OPTIONS)) {
        return bad(":path must be an absolute path");
    }
    if parts.headers.len() > MAX_HEADERS {
        return bad("too many header fields");
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        if parts.headers.contains_key(name) {
            return bad("connection-specific header field");
        }
    }
    if parts.headers.get_all("te").iter().any(|v| v != "trailers") {
        return bad("te other than trailers");
    }
    let mut lengths = parts.headers.get_all(http::header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        let valid = first.to_str().ok().is_some_and(|s| {
            !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())
        });
        if !valid || lengths.any(|v| v != first) {
            return bad("invalid content-length");
        }
    }
    if let Some(authority) = parts.uri.authority() {
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| ApiError::invalid_content("malformed HTTP/3 request: :authority"))?;
        match parts.headers.get(http::header::HOST) {
            Some(h) if *h != host => return bad(":authority and host differ"),
            Some(_) => {}
            None => {
                parts.headers.insert(http::header::HOST, host);
            }
        }
    } else if !parts.headers.contains_key(http::header::HOST) {
        return bad("no :authority or host");
    }
    parts.uri = http::Uri::try_from(path)
        .map_err(|_| ApiError::invalid_content("malformed HTTP/3 request: :path"))?;
    Ok(Request::from_parts(parts, ()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn maps_authority_to_host_and_path_to_origin_form() {
        let r = map_request(req(
            "POST",
            "https://localhost:8443/2015-03-31/functions/f/invocations?Qualifier=1",
            &[],
        ))
        .unwrap();
        assert_eq!(r.headers()["host"], "localhost:8443");
        assert_eq!(r.uri().path(), "/2015-03-31/functions/f/invocations");
        assert_eq!(r.uri().query(), Some("Qualifier=1"));
        assert_eq!(r.uri().scheme(), None);
    }

    #[test]
    fn refuses_malformed_requests() {
        for (m, u, h) in [
            ("CONNECT", "https://a:1/", vec![]),
            ("GET", "http://a/", vec![]),
            ("GET", "https://a/", vec![("connection", "close")]),
            ("GET", "https://a/", vec![("transfer-encoding", "chunked")]),
            ("GET", "https://a/", vec![("te", "gzip")]),
            ("POST", "https://a/", vec![("content-length", "x")]),
            (
                "POST",
                "https://a/",
                vec![("content-length", "1"), ("content-length", "2")],
            ),
            ("GET", "https://a/", vec![("host", "b")]),
            ("GET", "/", vec![]),
        ] {
            let e = map_request(req(m, u, &h)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{m} {u} {h:?}");
        }
        let many: Vec<_> = (0..=MAX_HEADERS).map(|i| (format!("x-{i}"), "v")).collect();
        let mut r = req("GET", "https://a/", &[]);
        for (k, v) in &many {
            r.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        assert!(map_request(r).is_err());
    }

    #[test]
    fn only_safe_methods_skip_the_handshake_wait() {
        assert!(is_safe(&Method::GET));
        assert!(!is_safe(&Method::POST));
        assert!(!is_safe(&Method::PUT));
        assert!(!is_safe(&Method::DELETE));
    }
}
