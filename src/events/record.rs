//! The destination record Lambda sends to OnSuccess / OnFailure destinations.

use super::AsyncEvent;
use super::worker::Delivered;
use serde_json::{Value, json};

/// Why a record is sent (`requestContext.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// Bytes as JSON when they parse, else as a string (payloads and results are JSON in practice).
fn json_or_string(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| String::from_utf8_lossy(bytes).into())
}

/// `2019-11-24T23:08:25.651Z`.
pub fn timestamp_iso(ms: u64) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&f).ok())
        .unwrap_or_default()
}

/// The record: `version`, `timestamp`, `requestContext`, `requestPayload`, and when the
/// function ran, `responseContext` and `responsePayload`.
pub fn build(
    event: &AsyncEvent,
    payload: &[u8],
    function_arn: &str,
    condition: Condition,
    invoke_count: u32,
    response: Option<&Delivered>,
    now_ms: u64,
) -> Value {
    let mut record = json!({
        "version": "1.0",
        "timestamp": timestamp_iso(now_ms),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": function_arn,
            "condition": condition.as_str(),
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": json_or_string(payload),
    });
    if let Some(r) = response {
        let mut ctx = json!({ "statusCode": 200, "executedVersion": r.executed_version });
        if let Some(fe) = r.function_error {
            ctx["functionError"] = fe.into();
        }
        record["responseContext"] = ctx;
        record["responsePayload"] = json_or_string(&r.body);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let ev = AsyncEvent {
            request_id: "r1".into(),
            function_name: "f".into(),
            qualifier: None,
            payload_b64: String::new(),
            accepted_ms: 0,
            trace_id: None,
            source: None,
        };
        let d = Delivered {
            body: bytes::Bytes::from_static(br#"{"errorMessage":"x"}"#),
            function_error: Some("Unhandled"),
            executed_version: "$LATEST".into(),
        };
        let r = build(
            &ev,
            br#"{"a":1}"#,
            "arn:f:$LATEST",
            Condition::RetriesExhausted,
            2,
            Some(&d),
            1_574_636_905_651,
        );
        assert_eq!(r["timestamp"], "2019-11-24T23:08:25.651Z");
        assert_eq!(r["requestContext"]["approximateInvokeCount"], 2);
        assert_eq!(r["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(r["requestPayload"]["a"], 1);
        assert_eq!(r["responseContext"]["functionError"], "Unhandled");
        assert_eq!(r["responsePayload"]["errorMessage"], "x");
        let r = build(
            &ev,
            b"not json",
            "arn",
            Condition::EventAgeExceeded,
            0,
            None,
            0,
        );
        assert_eq!(r["requestPayload"], "not json");
        assert!(r.get("responseContext").is_none());
    }
}
