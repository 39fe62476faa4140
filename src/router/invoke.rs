//! Parsing an Invoke API request (untrusted input): function name and qualifier, headers,
//! payload. Pure functions, fuzzed by `fuzz/fuzz_targets/invoke_request.rs`.

use crate::api::ApiError;
use crate::api::names::{FunctionRef, merge_qualifier, parse_function_name};
use crate::control::{decode_segment, query_param};
use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// A validated invoke request.
#[derive(Debug, Clone)]
pub struct ParsedInvoke {
    pub function: FunctionRef,
    pub invocation_type: InvocationType,
    pub log_tail: bool,
    /// Decoded client context JSON.
    pub client_context: Option<String>,
    pub trace_id: Option<String>,
    pub payload: Bytes,
}

/// Largest base64 `X-Amz-Client-Context`.
pub const MAX_CLIENT_CONTEXT: usize = 3583;
/// Largest `Event` payload (Lambda: 1 MB).
pub const MAX_EVENT_PAYLOAD: usize = 1024 * 1024;

/// Matches `/2015-03-31/functions/{name}/invocations`, returning the raw name segment.
pub fn invoke_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/2015-03-31/functions/")?;
    let name = rest.strip_suffix("/invocations")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            ApiError::invalid_parameter(format!("header {name} is not visible ASCII"))
        }),
    }
}

/// Validates everything but the function's existence.
pub fn parse(
    name_segment: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
    max_payload: usize,
    account: &str,
) -> Result<ParsedInvoke, ApiError> {
    let FunctionRef { name, qualifier } =
        parse_function_name(&decode_segment(name_segment)?, account)?;
    let qualifier = merge_qualifier(qualifier, query_param(query, "Qualifier").as_deref())?;
    let invocation_type = match header(headers, "x-amz-invocation-type")? {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: \
                 Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )));
        }
    };
    let log_tail = match header(headers, "x-amz-log-type")? {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: \
                 Member must satisfy enum value set: [None, Tail]"
            )));
        }
    };
    let client_context = header(headers, "x-amz-client-context")?
        .map(client_context)
        .transpose()?;
    let trace_id = header(headers, "x-amzn-trace-id")?.map(str::to_string);
    let limit = if invocation_type == InvocationType::Event {
        MAX_EVENT_PAYLOAD.min(max_payload)
    } else {
        max_payload
    };
    let payload = payload(body, limit)?;
    Ok(ParsedInvoke {
        function: FunctionRef { name, qualifier },
        invocation_type,
        log_tail,
        client_context,
        trace_id,
        payload,
    })
}

/// An oversized payload.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!(
        "Request must be smaller than {limit} bytes for the InvokeFunction operation"
    ))
}

/// The payload must be JSON; an empty body is `{}`.
fn payload(body: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    if body.len() > limit {
        return Err(too_large(limit));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&body).map_err(|e| {
        ApiError::invalid_content(format!("Could not parse request body into json: {e}"))
    })?;
    Ok(body)
}

/// `X-Amz-Client-Context`: base64 of a JSON object, at most 3583 bytes.
fn client_context(b64: &str) -> Result<String, ApiError> {
    let bad =
        || ApiError::invalid_content("Client context must be a valid Base64-encoded JSON object.");
    if b64.len() > MAX_CLIENT_CONTEXT {
        return Err(ApiError::invalid_parameter(format!(
            "Client context must be smaller than {MAX_CLIENT_CONTEXT} bytes when base64-encoded."
        )));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad())?;
    match serde_json::from_slice::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::Object(_)) => String::from_utf8(raw).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const A: &str = "000000000000";

    fn p(
        name: &str,
        query: &str,
        headers: &[(&'static str, &str)],
        body: &str,
    ) -> Result<ParsedInvoke, ApiError> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, v.parse().unwrap());
        }
        parse(
            name,
            query,
            &h,
            Bytes::from(body.to_string()),
            6 * 1024 * 1024,
            A,
        )
    }

    #[test]
    fn path() {
        assert_eq!(
            invoke_path("/2015-03-31/functions/f/invocations"),
            Some("f")
        );
        assert_eq!(invoke_path("/2015-03-31/functions//invocations"), None);
        assert_eq!(invoke_path("/2015-03-31/functions/a/b/invocations"), None);
    }

    #[test]
    fn good_requests() {
        let r = p(
            "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af%3A2",
            "",
            &[],
            "",
        )
        .unwrap();
        assert_eq!(r.function.qualifier.as_deref(), Some("2"));
        assert_eq!(&r.payload[..], b"{}");
        let r = p(
            "f",
            "Qualifier=%24LATEST",
            &[
                ("x-amz-log-type", "Tail"),
                ("x-amz-invocation-type", "DryRun"),
            ],
            "[1]",
        )
        .unwrap();
        assert!(r.log_tail && r.invocation_type == InvocationType::DryRun);
        let cc = base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"a":1}}"#);
        assert!(
            p("f", "", &[("x-amz-client-context", &cc)], "{}")
                .unwrap()
                .client_context
                .is_some()
        );
    }

    #[test]
    fn hostile_requests() {
        assert_eq!(
            p("f", "", &[], "{nope").unwrap_err().error_type,
            "InvalidRequestContentException"
        );
        assert_eq!(p("f", "", &[], "\u{0}").unwrap_err().status, 400);
        assert_eq!(
            p("f", "", &[("x-amz-invocation-type", "Sometimes")], "{}")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            p("f", "", &[("x-amz-client-context", "!!!")], "{}")
                .unwrap_err()
                .status,
            400
        );
        let not_object = base64::engine::general_purpose::STANDARD.encode("[1]");
        assert_eq!(
            p("f", "", &[("x-amz-client-context", &not_object)], "{}")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(p("f:1", "Qualifier=2", &[], "{}").unwrap_err().status, 400);
        let big = format!("\"{}\"", "x".repeat(6 * 1024 * 1024));
        assert_eq!(p("f", "", &[], &big).unwrap_err().status, 413);
        let event = format!("\"{}\"", "x".repeat(1024 * 1024 + 1));
        assert_eq!(
            p("f", "", &[("x-amz-invocation-type", "Event")], &event)
                .unwrap_err()
                .status,
            413
        );
    }
}
