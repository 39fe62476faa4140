//! What to send: a parsed `http://` or `https://` URL and request templates built once, so the hot path
//! only clones them (the method, URI and body are reference-counted or inline).

use anyhow::{Context, bail};
use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;
use std::net::{SocketAddr, ToSocketAddrs};

/// Builds request number `i` of a run.
pub trait Source: Send + Sync + 'static {
    fn request(&self, i: u32) -> Request<Full<Bytes>>;
    /// The same request serialised for HTTP/1.1 (request line, headers, body).
    fn h1_request(&self, i: u32) -> Bytes;
    /// Whether request `i` is its function's first invocation (trace replay).
    fn is_first(&self, _i: u32) -> bool {
        false
    }
}

/// Where requests go.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host[:port]` as written in the URL.
    pub authority: String,
    /// The host as written in the URL (the TLS server name).
    pub host: String,
    /// `https://`.
    pub tls: bool,
    /// `http(s)://authority` without a trailing slash.
    pub base: String,
}

impl Target {
    /// Parses an `http://` or `https://` URL and resolves its host once; returns the target
    /// and the path and query (at least `/`).
    pub fn parse(url: &str) -> anyhow::Result<(Target, String)> {
        let uri: Uri = url.parse().with_context(|| format!("URL {url:?}"))?;
        let (tls, default_port) = match uri.scheme_str() {
            Some("http") => (false, 80),
            Some("https") => (true, 443),
            Some(s) => {
                bail!("URL {url:?}: scheme {s:?} is not supported (only http:// and https://)")
            }
            None => bail!("URL {url:?}: expected http(s)://HOST[:PORT]/PATH"),
        };
        let auth = uri
            .authority()
            .with_context(|| format!("URL {url:?}: no host"))?;
        let port = auth.port_u16().unwrap_or(default_port);
        let addr = (auth.host().trim_matches(['[', ']']), port)
            .to_socket_addrs()
            .with_context(|| format!("URL {url:?}: cannot resolve {}", auth.host()))?
            .next()
            .with_context(|| format!("URL {url:?}: {} has no address", auth.host()))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let scheme = if tls { "https" } else { "http" };
        let target = Target {
            addr,
            authority: auth.as_str().to_string(),
            host: auth.host().to_string(),
            tls,
            base: format!("{scheme}://{}", auth.as_str()),
        };
        Ok((target, path))
    }
}

/// A request prepared once and cloned per send.
#[derive(Clone, Debug)]
pub struct Template {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// HTTP/1.1: the request line and headers, without Content-Length and the blank line.
    h1_head: Bytes,
    /// HTTP/1.1: the whole request with `body`, serialised once.
    h1: Bytes,
}

impl Template {
    /// `path` is origin-form (`/p?q`). HTTP/1.1 gets it with a `Host` header; HTTP/2 and
    /// HTTP/3 (`absolute`) need the absolute URI (`:scheme` and `:authority`).
    pub fn new(
        target: &Target,
        path: &str,
        method: Method,
        headers: &[(String, String)],
        body: Bytes,
        absolute: bool,
    ) -> anyhow::Result<Template> {
        let uri: Uri = if absolute {
            format!("{}{path}", target.base).parse()?
        } else {
            path.parse()?
        };
        let mut map = HeaderMap::new();
        if !absolute {
            map.insert(HOST, HeaderValue::from_str(&target.authority)?);
        }
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .with_context(|| format!("header name {k:?}"))?;
            let value = HeaderValue::from_str(v).with_context(|| format!("header {k}: {v:?}"))?;
            map.append(name, value);
        }
        let mut h1_head = format!("{method} {uri} HTTP/1.1\r\n").into_bytes();
        for (name, value) in &map {
            // Framing is the client's: Content-Length follows from the body.
            if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
                continue;
            }
            h1_head.extend_from_slice(name.as_str().as_bytes());
            h1_head.extend_from_slice(b": ");
            h1_head.extend_from_slice(value.as_bytes());
            h1_head.extend_from_slice(b"\r\n");
        }
        let mut t = Template {
            method,
            uri,
            headers: map,
            body,
            h1_head: h1_head.into(),
            h1: Bytes::new(),
        };
        t.h1 = t.h1_with(&t.body);
        Ok(t)
    }

    /// The HTTP/1.1 request with `body`: Content-Length unless the body is empty and the
    /// method is GET or HEAD (as hyper does).
    pub fn h1_with(&self, body: &[u8]) -> Bytes {
        let mut v = Vec::with_capacity(self.h1_head.len() + body.len() + 32);
        v.extend_from_slice(&self.h1_head);
        if !body.is_empty() || !matches!(self.method, Method::GET | Method::HEAD) {
            v.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(body);
        v.into()
    }

    /// The template with another body.
    pub fn build_with(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

impl Source for Template {
    fn request(&self, _i: u32) -> Request<Full<Bytes>> {
        self.build_with(self.body.clone())
    }

    fn h1_request(&self, _i: u32) -> Bytes {
        self.h1.clone()
    }
}

/// Parses `-H 'Name: value'`.
pub fn parse_header(h: &str) -> anyhow::Result<(String, String)> {
    match h.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => bail!("-H {h:?}: expected 'Name: value'"),
    }
}

/// `STR` or `@FILE`.
pub fn read_body(arg: &str) -> anyhow::Result<Bytes> {
    match arg.strip_prefix('@') {
        Some(path) => Ok(std::fs::read(path)
            .with_context(|| format!("reading {path}"))?
            .into()),
        None => Ok(Bytes::copy_from_slice(arg.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_builds_requests() {
        let (t, path) = Target::parse("http://127.0.0.1:8080/a/b?c=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(path, "/a/b?c=1");
        let (t2, p2) = Target::parse("http://localhost").unwrap();
        assert_eq!((t2.addr.port(), p2.as_str()), (80, "/"));
        let (t3, p3) = Target::parse("https://localhost:8443/x").unwrap();
        assert!(t3.tls);
        assert_eq!(
            (t3.host.as_str(), t3.addr.port(), p3.as_str()),
            ("localhost", 8443, "/x")
        );
        assert_eq!(
            Target::parse("https://127.0.0.1/").unwrap().0.addr.port(),
            443
        );
        let h3 = Template::new(&t3, &p3, Method::POST, &[], Bytes::new(), true).unwrap();
        assert_eq!(h3.request(0).uri(), "https://localhost:8443/x");
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("127.0.0.1:80").is_err());
        let hdr = [parse_header("X-A: b: c").unwrap()];
        assert_eq!(hdr[0], ("X-A".into(), "b: c".into()));
        let tpl = Template::new(&t, &path, Method::PUT, &hdr, "x".into(), false).unwrap();
        let r = tpl.request(0);
        assert_eq!(r.uri(), "/a/b?c=1");
        assert_eq!(r.headers()["host"], "127.0.0.1:8080");
        assert_eq!(r.headers()["x-a"], "b: c");
        let tpl2 = Template::new(&t, &path, Method::GET, &[], Bytes::new(), true).unwrap();
        assert_eq!(tpl2.request(0).uri(), "http://127.0.0.1:8080/a/b?c=1");
        assert_eq!(
            tpl.h1_request(0),
            "PUT /a/b?c=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nx-a: b: c\r\ncontent-length: 1\r\n\r\nx"
        );
        let get = Template::new(&t, "/", Method::GET, &[], Bytes::new(), false).unwrap();
        assert_eq!(
            get.h1_request(0),
            "GET / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n"
        );
        assert!(parse_header("nocolon").is_err());
    }
}
