//! Fuzzes the HTTP/3 request mapping: an arbitrary request head (method, `:scheme`,
//! `:authority`, `:path`, header fields, as h3 would hand them over after QPACK decoding)
//! through `router::quic::map_request`. Nothing may panic; a refusal is a 400 Lambda error; an
//! accepted request has an origin-form path, a `host` header, and no connection-specific field.
#![no_main]

use hearth::router::quic::{MAX_HEADERS, map_request};
use libfuzzer_sys::fuzz_target;

/// Fields are split at 0xFF: method, scheme, authority, path, then name/value pairs.
fn build(data: &[u8]) -> Option<http::Request<()>> {
    let mut parts = data.split(|b| *b == 0xff);
    let method = http::Method::from_bytes(parts.next()?).ok()?;
    let scheme = std::str::from_utf8(parts.next()?).ok()?;
    let authority = std::str::from_utf8(parts.next()?).ok()?;
    let path = std::str::from_utf8(parts.next()?).ok()?;
    let mut uri = http::Uri::builder();
    if !scheme.is_empty() {
        uri = uri.scheme(scheme);
    }
    if !authority.is_empty() {
        uri = uri.authority(authority);
    }
    let uri = uri.path_and_query(path).build().ok()?;
    let mut req = http::Request::builder().method(method).uri(uri);
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        let name = http::HeaderName::from_bytes(name).ok()?;
        let value = http::HeaderValue::from_bytes(value).ok()?;
        req = req.header(name, value);
    }
    req.body(()).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = build(data) else {
        return;
    };
    match map_request(req) {
        Err(e) => assert_eq!(e.status, http::StatusCode::BAD_REQUEST, "{e}"),
        Ok(r) => {
            assert!(r.uri().scheme().is_none() && r.uri().authority().is_none());
            assert!(r.uri().path().starts_with('/') || r.uri().path() == "*");
            assert!(r.headers().contains_key("host"));
            assert!(!r.headers().contains_key("connection"));
            assert!(!r.headers().contains_key("transfer-encoding"));
            assert!(r.headers().len() <= MAX_HEADERS + 1);
        }
    }
});
