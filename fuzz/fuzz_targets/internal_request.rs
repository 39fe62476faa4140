//! Fuzzes the control service's internal endpoints (what routers send): the request line
//! (method, path, query), acknowledgement bodies and event bodies, and the mapping of another
//! process's error answers back onto [`hearth::api::ApiError`].
//!
//! Every input must give `Ok` or a 4xx error; nothing may panic; parsed values respect the
//! documented limits.
#![no_main]

use hearth::api::ApiError;
use hearth::control::internal::{self, Internal};
use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;

const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::DELETE];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == 0xFF);
    let head = parts.next().unwrap_or_default();
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let method = &METHODS[head.first().copied().unwrap_or(0) as usize % METHODS.len()];
    // Half the inputs get the internal prefix, so the fuzzer reaches the endpoint parsers.
    let path = if head.get(1).is_some_and(|b| b & 1 == 1) {
        format!("{}{path}", internal::PREFIX)
    } else {
        path.into_owned()
    };
    match internal::parse(method, &path, &query) {
        Ok(Some(Internal::Changes { router, wait, .. })) => {
            assert!(!router.is_empty() && router.len() <= internal::MAX_ROUTER_ID);
            assert!(wait <= internal::MAX_WAIT);
        }
        Ok(Some(Internal::Route { name, version })) => {
            assert!(name.len() <= internal::MAX_SEGMENT && version.len() <= internal::MAX_SEGMENT)
        }
        Ok(_) => {}
        Err(e) => assert!(e.status.is_client_error(), "{e}"),
    }
    match internal::parse_ack(body) {
        Ok(a) => assert!(a.router.len() <= internal::MAX_ROUTER_ID),
        Err(e) => assert!(e.status.is_client_error(), "{e}"),
    }
    if let Err(e) = internal::parse_event(body) {
        assert!(e.status.is_client_error(), "{e}");
    }
    let status = StatusCode::from_u16(400 + u16::from(head.get(2).copied().unwrap_or(0)) % 200)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let e = ApiError::from_wire(status, &query, &path, Some(&query));
    // The message is bounded however long what came over the wire was.
    assert!(e.message.chars().count() <= 4096 + 100, "{}", e.message.len());
});
