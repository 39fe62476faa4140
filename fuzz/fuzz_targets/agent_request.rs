//! Fuzzes the agent's `POST /v1/invoke` header parser (router-to-agent protocol): header
//! values from arbitrary bytes, plus a well-formed version header with arbitrary fields.
//!
//! Every input must give `Ok` or a 4xx error naming the header; nothing may panic, and a
//! parsed request must carry a descriptor the agent can use (a SHA-256 hex code hash).
#![no_main]

use bytes::Bytes;
use hearth::agent::wire::{self, parse_invoke};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const HEADERS: [&str; 7] = [
    wire::REQUEST_ID,
    wire::VERSION,
    wire::INVOKED_ARN,
    wire::TRACE_ID,
    wire::CLIENT_CONTEXT,
    wire::LOG_TAIL,
    wire::DEADLINE_MS,
];

/// Splits the input into header values and body on 0xFF bytes.
fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.splitn(HEADERS.len() + 1, |b| *b == 0xFF).collect()
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data);
    let get = |i: usize| f.get(i).copied().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (i, name) in HEADERS.iter().enumerate() {
        let raw = get(i);
        // An input starting with '{' in the version slot is JSON to be base64-encoded, so the
        // fuzzer reaches the descriptor checks too.
        let value = if i == 1 && raw.first() == Some(&b'{') {
            use base64::Engine;
            HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(raw)).ok()
        } else {
            HeaderValue::from_bytes(raw).ok()
        };
        if let Some(v) = value.filter(|_| !raw.is_empty()) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let body = Bytes::copy_from_slice(get(HEADERS.len()));
    match parse_invoke(&headers, body) {
        Ok(p) => assert!(hearth::codestore::is_sha256_hex(&p.request.descriptor.code_sha256)),
        Err(e) => assert!(e.status.is_client_error(), "{e}"),
    }
});
