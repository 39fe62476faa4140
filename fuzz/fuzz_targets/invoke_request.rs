//! Fuzzes the Invoke API request parser: path, query, headers and body from arbitrary bytes.
//!
//! Every input must give `Ok` or a Lambda error with a 4xx status; nothing may panic, and a
//! parsed request must respect the payload limits.
#![no_main]

use bytes::Bytes;
use hearth::router::invoke::{invoke_path, parse};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64 * 1024;
const HEADERS: [&str; 5] =
    ["x-amz-invocation-type", "x-amz-log-type", "x-amz-client-context", "x-amzn-trace-id", "x-amz-other"];

/// Splits the input into path, query, header values and body on 0xFF bytes.
fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.splitn(8, |b| *b == 0xFF).collect()
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data);
    let get = |i: usize| f.get(i).copied().unwrap_or_default();
    let path = format!("/2015-03-31/functions/{}/invocations", String::from_utf8_lossy(get(0)));
    let query = String::from_utf8_lossy(get(1)).into_owned();
    let mut headers = HeaderMap::new();
    for (i, name) in HEADERS.iter().enumerate() {
        if let Ok(v) = HeaderValue::from_bytes(get(2 + i)) {
            if !get(2 + i).is_empty() {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }
    let body = Bytes::copy_from_slice(get(7));
    let Some(name) = invoke_path(&path) else { return };
    match parse(name, &query, &headers, body, MAX, "000000000000") {
        Ok(p) => assert!(p.payload.len() <= MAX),
        Err(e) => assert!(e.status.is_client_error(), "{e}"),
    }
});
