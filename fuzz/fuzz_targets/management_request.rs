//! Fuzzes the management API's untrusted input: arbitrary (method, path, query, body) through
//! `Action::parse`, and the body through every operation's pure parser. Nothing may panic;
//! every refusal must be a 4xx Lambda error.
#![no_main]

use hearth::control::{Action, parse};
use http::Method;
use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"];
const ACCOUNT: &str = "000000000000";

/// Splits the input into method selector, path, query and body at the first two NULs.
fn split(data: &[u8]) -> Option<(Method, String, String, &[u8])> {
    let (&m, rest) = data.split_first()?;
    let mut parts = rest.splitn(3, |b| *b == 0);
    let path = String::from_utf8_lossy(parts.next()?).into_owned();
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let method = Method::from_bytes(METHODS[m as usize % METHODS.len()].as_bytes()).ok()?;
    Some((method, path, query, body))
}

fn client_error<T>(r: Result<T, hearth::api::ApiError>) {
    if let Err(e) = r {
        assert!(e.status.is_client_error(), "{e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((method, path, query, body)) = split(data) else {
        return;
    };
    client_error(Action::parse(&method, &path, &query, ACCOUNT));
    client_error(parse::parse_create_alias(body));
    client_error(parse::parse_update_alias(body));
    client_error(parse::parse_put_concurrency(body));
    client_error(parse::parse_put_limits(body));
    client_error(parse::parse_create_url(body));
    client_error(parse::parse_update_url(body));
    client_error(parse::parse_event_invoke_config(body));
    client_error(parse::parse_add_permission(body));
    client_error(parse::parse_tag_resource(body));
    client_error(parse::parse_untag_keys(&parse::query_params(&query, "tagKeys")));
    client_error(parse::parse_create_trigger(body, ACCOUNT));
});
