//! The router-to-agent protocol (DESIGN.md "Router to agent protocol (HTTP/2)"): how an
//! [`InvokeRequest`] travels as `POST /v1/invoke` headers + body, and how the answer travels
//! back. Both directions live here so the two ends cannot disagree. The agent side parses
//! outside input: every header is bounded and every refusal names the header
//! (fuzzed by `fuzz/fuzz_targets/agent_request.rs`).

use super::{AgentError, InvokeRequest, InvokeResponse};
use crate::api::{ApiError, VersionDescriptor};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub const REQUEST_ID: &str = "x-hearth-request-id";
pub const DEADLINE_MS: &str = "x-hearth-deadline-ms";
pub const VERSION: &str = "x-hearth-version";
pub const INVOKED_ARN: &str = "x-hearth-invoked-arn";
pub const TRACE_ID: &str = "x-hearth-trace-id";
pub const CLIENT_CONTEXT: &str = "x-hearth-client-context";
pub const LOG_TAIL: &str = "x-hearth-log-tail";
pub const FUNCTION_ERROR: &str = "x-hearth-function-error";
pub const COLD_START: &str = "x-hearth-cold-start";
pub const INSTANCE: &str = "x-hearth-instance";
pub const IDLE: &str = "x-hearth-idle";
pub const START_DELAY_US: &str = "x-hearth-start-delay-us";
pub const REFUSED: &str = "x-hearth-refused";
/// On a refusal: the refusal's detail (e.g. why a start failed).
pub const REFUSED_DETAIL: &str = "x-hearth-refused-detail";

/// Largest `x-hearth-version` (base64 JSON; the environment is at most 4 KB in Lambda).
pub const MAX_VERSION_HEADER: usize = 64 * 1024;
/// Largest request id, ARN and trace id headers.
pub const MAX_SHORT_HEADER: usize = 2048;
/// Largest `x-hearth-client-context` (base64 of at most 3583 bytes of JSON, with headroom).
pub const MAX_CLIENT_CONTEXT_HEADER: usize = 8 * 1024;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::invalid_parameter(msg)
}

/// A header as a bounded visible-ASCII string.
fn text<'a>(h: &'a HeaderMap, name: &str, max: usize) -> Result<Option<&'a str>, ApiError> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    if v.len() > max {
        return Err(bad(format!("{name}: longer than {max} bytes")));
    }
    v.to_str()
        .map(Some)
        .map_err(|_| bad(format!("{name}: not visible ASCII")))
}

fn required<'a>(h: &'a HeaderMap, name: &str, max: usize) -> Result<&'a str, ApiError> {
    match text(h, name, max)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(bad(format!("{name}: required"))),
    }
}

/// Checks what the agent relies on in a descriptor it did not make itself.
fn check_descriptor(d: &VersionDescriptor) -> Result<(), ApiError> {
    if !crate::codestore::is_sha256_hex(&d.code_sha256) {
        return Err(bad(format!("{VERSION}: code_sha256 is not a SHA-256 hex")));
    }
    let name_ok = !d.function_name.is_empty()
        && d.function_name.len() <= 140
        && d.function_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(bad(format!("{VERSION}: bad function_name")));
    }
    if !(128..=10240).contains(&d.memory_mb) || !(1..=900).contains(&d.timeout_secs) {
        return Err(bad(format!(
            "{VERSION}: memory_mb or timeout_secs out of range"
        )));
    }
    Ok(())
}

/// What the agent reads from a `POST /v1/invoke`: the request and its deadline (epoch ms).
pub struct Parsed {
    pub request: InvokeRequest,
    pub deadline_ms: Option<u64>,
}

/// Parses the headers of `POST /v1/invoke` (outside input) into an [`InvokeRequest`].
pub fn parse_invoke(h: &HeaderMap, payload: Bytes) -> Result<Parsed, ApiError> {
    let request_id = required(h, REQUEST_ID, MAX_SHORT_HEADER)?.to_string();
    let descriptor =
        VersionDescriptor::from_header(required(h, VERSION, MAX_VERSION_HEADER)?).map_err(bad)?;
    check_descriptor(&descriptor)?;
    let invoked_arn = match text(h, INVOKED_ARN, MAX_SHORT_HEADER)? {
        Some(a) if a == descriptor.function_arn || a.starts_with(&descriptor.function_arn) => {
            a.to_string()
        }
        Some(_) => return Err(bad(format!("{INVOKED_ARN}: not an ARN of the function"))),
        None => descriptor.function_arn.clone(),
    };
    let trace_id = text(h, TRACE_ID, MAX_SHORT_HEADER)?
        .unwrap_or_default()
        .to_string();
    let client_context = match text(h, CLIENT_CONTEXT, MAX_CLIENT_CONTEXT_HEADER)? {
        None => None,
        Some(b64) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| bad(format!("{CLIENT_CONTEXT}: bad base64")))?;
            Some(String::from_utf8(raw).map_err(|_| bad(format!("{CLIENT_CONTEXT}: not UTF-8")))?)
        }
    };
    let log_tail = match text(h, LOG_TAIL, 8)? {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(bad(format!("{LOG_TAIL}: must be 0 or 1"))),
    };
    let deadline_ms = text(h, DEADLINE_MS, 20)?
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|_| bad(format!("{DEADLINE_MS}: not a number")))?;
    Ok(Parsed {
        request: InvokeRequest {
            request_id,
            descriptor: Arc::new(descriptor),
            invoked_arn,
            client_context,
            trace_id,
            payload,
            log_tail,
        },
        deadline_ms,
    })
}

/// Milliseconds since the epoch.
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The headers of `POST /v1/invoke` for `req` (the router side).
pub fn invoke_headers(req: &InvokeRequest) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, v: &str| -> Result<(), String> {
        let v = HeaderValue::from_str(v).map_err(|_| format!("{name}: not a header value"))?;
        h.insert(name, v);
        Ok(())
    };
    let d = &req.descriptor;
    put(REQUEST_ID, &req.request_id)?;
    put(VERSION, &d.to_header())?;
    put(INVOKED_ARN, &req.invoked_arn)?;
    put(TRACE_ID, &req.trace_id)?;
    let deadline = epoch_ms() + u64::from(d.timeout_secs) * 1000;
    put(DEADLINE_MS, &deadline.to_string())?;
    if let Some(cc) = &req.client_context {
        put(
            CLIENT_CONTEXT,
            &base64::engine::general_purpose::STANDARD.encode(cc),
        )?;
    }
    if req.log_tail {
        put(LOG_TAIL, "1")?;
    }
    Ok(h)
}

/// The answer headers of an invocation that ran (the agent side).
pub fn response_headers(out: &InvokeResponse, h: &mut HeaderMap) {
    if let Some(fe) = out.function_error {
        h.insert(FUNCTION_ERROR, HeaderValue::from_static(fe));
    }
    h.insert(
        COLD_START,
        HeaderValue::from_static(if out.cold_start { "true" } else { "false" }),
    );
    if let Ok(v) = HeaderValue::from_str(&out.instance_id) {
        h.insert(INSTANCE, v);
    }
    h.insert(IDLE, HeaderValue::from(out.idle as u64));
    h.insert(
        START_DELAY_US,
        HeaderValue::from(out.start_delay.as_micros() as u64),
    );
    if let Some(tail) = &out.log_tail {
        let b64 = base64::engine::general_purpose::STANDARD.encode(tail);
        if let Ok(v) = HeaderValue::from_str(&b64) {
            h.insert(LOG_TAIL, v);
        }
    }
}

/// `x-hearth-function-error` back to the value the router passes on.
fn function_error(v: &str) -> &'static str {
    match v {
        "Handled" => "Handled",
        _ => "Unhandled",
    }
}

/// Reads a 200 answer of `POST /v1/invoke` (the router side).
pub fn parse_response(h: &HeaderMap, body: Bytes, log_tail: bool) -> InvokeResponse {
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let num = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    InvokeResponse {
        body,
        function_error: get(FUNCTION_ERROR).map(function_error),
        cold_start: get(COLD_START) == Some("true"),
        instance_id: get(INSTANCE).unwrap_or_default().to_string(),
        idle: num(IDLE) as usize,
        start_delay: Duration::from_micros(num(START_DELAY_US)),
        log_tail: log_tail.then(|| {
            get(LOG_TAIL)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .unwrap_or_default()
        }),
    }
}

/// A `503` answer's refusal back to the error (the router side).
pub fn parse_refusal(h: &HeaderMap) -> Option<AgentError> {
    let detail = h
        .get(REFUSED_DETAIL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    match h.get(REFUSED)?.to_str().ok()? {
        "capacity" => Some(AgentError::Capacity),
        "draining" => Some(AgentError::Draining),
        "starting-failed" => Some(AgentError::StartingFailed(detail)),
        _ => None,
    }
}

/// One version's instances on an agent (`GET /v1/state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionState {
    /// The descriptor's pool key ([`VersionDescriptor::pool_key`]).
    pub key: String,
    pub idle: usize,
    /// Busy or starting.
    pub busy: usize,
}

/// `GET /v1/state`: what placement needs to know about an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub versions: Vec<VersionState>,
    pub memory_used_mb: u64,
    pub memory_capacity_mb: u64,
    pub instances: usize,
    pub max_instances: usize,
    pub draining: bool,
}

/// `POST /v1/provision` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionBody {
    pub config: String,
    pub targets: Vec<ProvisionTargetBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionTargetBody {
    pub descriptor: VersionDescriptor,
    pub count: usize,
}

/// `POST /v1/retire` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetireBody {
    pub function_arn: String,
}

/// The answer of `POST /v1/provision` and `GET /v1/provisioned`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allocated {
    pub allocated: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor() -> VersionDescriptor {
        VersionDescriptor::for_tests("$LATEST")
    }

    fn request() -> InvokeRequest {
        InvokeRequest {
            request_id: "id-1".into(),
            descriptor: Arc::new(descriptor()),
            invoked_arn: "arn:aws:lambda:us-east-1:000000000000:function:f:live".into(),
            client_context: Some(r#"{"custom":{"a":1}}"#.into()),
            trace_id: "Root=1-0-0".into(),
            payload: Bytes::from_static(b"{}"),
            log_tail: true,
        }
    }

    #[test]
    fn request_round_trip() {
        let req = request();
        let h = invoke_headers(&req).unwrap();
        let p = parse_invoke(&h, req.payload.clone()).unwrap();
        let got = p.request;
        assert_eq!(got.request_id, req.request_id);
        assert_eq!(*got.descriptor, *req.descriptor);
        assert_eq!(got.invoked_arn, req.invoked_arn);
        assert_eq!(got.client_context, req.client_context);
        assert_eq!(got.trace_id, req.trace_id);
        assert!(got.log_tail);
        assert!(p.deadline_ms.unwrap() > epoch_ms());
    }

    #[test]
    fn response_round_trip() {
        let out = InvokeResponse {
            body: Bytes::from_static(b"\"ok\""),
            function_error: Some("Unhandled"),
            cold_start: true,
            instance_id: "f-1".into(),
            idle: 3,
            start_delay: Duration::from_micros(1234),
            log_tail: Some(b"START\n".to_vec()),
        };
        let mut h = HeaderMap::new();
        response_headers(&out, &mut h);
        let back = parse_response(&h, out.body.clone(), true);
        assert_eq!(back.function_error, Some("Unhandled"));
        assert!(back.cold_start);
        assert_eq!((back.idle, back.instance_id.as_str()), (3, "f-1"));
        assert_eq!(back.start_delay, out.start_delay);
        assert_eq!(back.log_tail.as_deref(), Some(&b"START\n"[..]));
    }

    #[test]
    fn hostile_headers() {
        let good = invoke_headers(&request()).unwrap();
        let with = |name: &'static str, v: &[u8]| {
            let mut h = good.clone();
            h.insert(name, HeaderValue::from_bytes(v).unwrap());
            parse_invoke(&h, Bytes::new()).err().map(|e| e.message)
        };
        let without = |name: &str| {
            let mut h = good.clone();
            h.remove(name);
            parse_invoke(&h, Bytes::new()).err().map(|e| e.message)
        };
        assert!(without(REQUEST_ID).unwrap().contains(REQUEST_ID));
        assert!(without(VERSION).unwrap().contains(VERSION));
        assert!(with(VERSION, b"!!!").unwrap().contains("base64"));
        let mut d = descriptor();
        d.code_sha256 = "../../etc".into();
        assert!(
            with(VERSION, d.to_header().as_bytes())
                .unwrap()
                .contains("code_sha256")
        );
        let mut d = descriptor();
        d.function_name = "../x".into();
        assert!(with(VERSION, d.to_header().as_bytes()).is_some());
        assert!(with(LOG_TAIL, b"yes").unwrap().contains(LOG_TAIL));
        assert!(with(DEADLINE_MS, b"soon").unwrap().contains(DEADLINE_MS));
        assert!(with(CLIENT_CONTEXT, b"%%%").unwrap().contains("base64"));
        assert!(
            with(INVOKED_ARN, b"arn:other")
                .unwrap()
                .contains(INVOKED_ARN)
        );
        let long = vec![b'a'; MAX_SHORT_HEADER + 1];
        assert!(with(REQUEST_ID, &long).unwrap().contains("longer"));
        assert!(with(TRACE_ID, b"\xff").unwrap().contains("ASCII"));
        assert!(without(INVOKED_ARN).is_none() && without(TRACE_ID).is_none());
    }

    #[test]
    fn refusals() {
        let mut h = HeaderMap::new();
        assert!(parse_refusal(&h).is_none());
        h.insert(REFUSED, HeaderValue::from_static("capacity"));
        assert!(matches!(parse_refusal(&h), Some(AgentError::Capacity)));
        h.insert(REFUSED, HeaderValue::from_static("bogus"));
        assert!(parse_refusal(&h).is_none());
    }
}
