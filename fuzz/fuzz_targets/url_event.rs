//! Fuzzes function URLs: an arbitrary path, query, headers and body go through routing
//! (`url_path`, `url_target`), event building and CORS, and an arbitrary function result
//! through response mapping.
//!
//! Nothing may panic; an event is valid JSON no larger than the limit; a mapped response has a
//! status of 200..=599.
#![no_main]

use hearth::api::UrlError;
use hearth::api::types::Cors;
use hearth::router::url::{
    EventInput, apply_cors, build_event, http_response, is_preflight, preflight, url_path,
    url_target,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;
const HEADERS: [&str; 6] = ["cookie", "content-type", "host", "origin", "x-any", "access-control-request-method"];

/// Splits the input into fields on 0xFF bytes: path, query, method, six header values, body,
/// function result.
fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.splitn(11, |b| *b == 0xFF).collect()
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data);
    let get = |i: usize| f.get(i).copied().unwrap_or_default();
    let path = format!("/fn/{}", String::from_utf8_lossy(get(0)));
    let query = String::from_utf8_lossy(get(1)).into_owned();
    let method = Method::from_bytes(get(2)).unwrap_or(Method::GET);
    let mut headers = HeaderMap::new();
    for (i, name) in HEADERS.iter().enumerate() {
        let raw = get(3 + i);
        for part in raw.split(|b| *b == b'\n').filter(|p| !p.is_empty()) {
            if let Ok(v) = HeaderValue::from_bytes(part) {
                headers.append(HeaderName::from_static(name), v);
            }
        }
    }
    let body = get(9);
    if let Some(p) = url_path(&path) {
        let _ = url_target(p.function);
        let input = EventInput {
            method: &method,
            raw_path: p.raw_path,
            query: &query,
            version: http::Version::HTTP_11,
            headers: &headers,
            body,
            source_ip: "127.0.0.1".into(),
            request_id: "rid",
            account: "000000000000",
            now: std::time::SystemTime::now(),
        };
        match build_event(&input, LIMIT) {
            Ok(event) => {
                assert!(event.len() <= LIMIT);
                let v: serde_json::Value = serde_json::from_slice(&event).expect("event is JSON");
                assert_eq!(v["rawPath"].as_str(), Some(p.raw_path));
            }
            Err(e) => assert_eq!(e, UrlError::TooLarge(LIMIT)),
        }
    }
    let cors = Cors {
        allow_origins: Some(vec!["*".into(), String::from_utf8_lossy(get(0)).into_owned()]),
        allow_methods: Some(vec!["*".into()]),
        allow_headers: Some(vec!["*".into()]),
        expose_headers: Some(vec![query.clone()]),
        max_age: Some(body.len() as i64),
        allow_credentials: Some(body.len() % 2 == 0),
    };
    if is_preflight(&method, &headers) {
        let _ = preflight(&cors, &headers);
    }
    match http_response(get(10)) {
        Ok(mut resp) => {
            assert!((200..=599).contains(&resp.status().as_u16()));
            apply_cors(&cors, &headers, &mut resp);
        }
        Err(e) => assert!(matches!(e, UrlError::BadGateway(_)), "{e}"),
    }
});
