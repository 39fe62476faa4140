//! hearth's per-function invocation limits (Lambda has no API for them): a rate override stored
//! as the function resource `hearth-limits` (`{"RatePerSec": N}`), set with `hearth limits` through
//! `PUT|GET|DELETE /hearth/v1/functions/{name}/limits`. Like every resource edit it bumps the
//! change feed, so routers pick it up exactly.

use super::resources::{constraint, encode, parse_json, required};
use super::{Control, Reply};
use crate::api::ApiError;
use crate::store::Edit;
use crate::store::resources::kind::LIMITS;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

/// Highest per-function rate accepted, invocations per second.
pub const MAX_RATE_PER_SEC: i64 = 1_000_000;

#[derive(Debug, Default, Deserialize)]
struct PutLimitsRequest {
    #[serde(rename = "RatePerSec")]
    rate_per_sec: Option<i64>,
}

/// Parses and validates a put-limits body (pure): the rate, 1..=1000000 per second.
pub fn parse_put_limits(body: &[u8]) -> Result<u32, ApiError> {
    let req: PutLimitsRequest = parse_json(body)?;
    let n = required(req.rate_per_sec, "ratePerSec")?;
    if !(1..=MAX_RATE_PER_SEC).contains(&n) {
        return Err(constraint(
            n,
            "ratePerSec",
            &format!("Member must have value between 1 and {MAX_RATE_PER_SEC}"),
        ));
    }
    Ok(n as u32)
}

impl Control {
    /// The function's invocation rate override, if set (for the router's admit phase).
    pub fn rate_override(&self, name: &str) -> Result<Option<u32>, ApiError> {
        let v = self.resource::<serde_json::Value>(name, LIMITS, "")?;
        Ok(v.and_then(|v| v["RatePerSec"].as_u64()).map(|n| n as u32))
    }

    /// `PUT /hearth/v1/functions/{name}/limits` `{"RatePerSec": N}`.
    pub fn put_limits(&self, name: &str, body: &[u8]) -> Result<Reply, ApiError> {
        let n = parse_put_limits(body)?;
        let doc = json!({ "RatePerSec": n });
        let json = encode(&doc)?;
        self.edit(name, LIMITS, "", &mut |_, _| Ok(Edit::Put(json.clone())))?;
        Reply::json(StatusCode::OK, doc)
    }

    /// `GET /hearth/v1/functions/{name}/limits`: `{}` when unset.
    pub fn get_limits(&self, name: &str) -> Result<Reply, ApiError> {
        self.require_function(name)?;
        let body = match self.rate_override(name)? {
            Some(n) => json!({ "RatePerSec": n }),
            None => json!({}),
        };
        Reply::json(StatusCode::OK, body)
    }

    /// `DELETE /hearth/v1/functions/{name}/limits`.
    pub fn delete_limits(&self, name: &str) -> Result<Reply, ApiError> {
        self.edit(name, LIMITS, "", &mut |_, _| Ok(Edit::Delete))?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(parse_put_limits(br#"{"RatePerSec": 5}"#).unwrap(), 5);
        for b in [
            r#"{"RatePerSec": 0}"#,
            r#"{"RatePerSec": -1}"#,
            r#"{"RatePerSec": 1.5}"#,
            r#"{"RatePerSec": "5"}"#,
            r#"{"RatePerSec": 99999999999999999999}"#,
            r#"{"RatePerSec": 1000001}"#,
            r#"{}"#,
            "",
            "[",
            "\u{0}\u{ff}",
        ] {
            let e = parse_put_limits(b.as_bytes()).unwrap_err();
            assert_eq!(e.status, 400, "{b}");
        }
    }
}
