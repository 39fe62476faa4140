//! Reserved concurrency: PutFunctionConcurrency, GetFunctionConcurrency,
//! DeleteFunctionConcurrency. Stored here; the router enforces it (a later issue).

use super::resources::{constraint, encode, parse_json, required};
use super::{Control, Reply};
use crate::api::ApiError;
use crate::api::types::PutFunctionConcurrencyRequest;
use crate::store::Edit;
use crate::store::resources::kind::CONCURRENCY;
use http::StatusCode;
use serde_json::json;

/// Largest reserved concurrency accepted (far above any one machine's instances).
pub const MAX_RESERVED: i64 = 1_000_000;

/// Parses and validates a PutFunctionConcurrency body (pure).
pub fn parse_put_concurrency(body: &[u8]) -> Result<u32, ApiError> {
    let req: PutFunctionConcurrencyRequest = parse_json(body)?;
    let n = required(
        req.reserved_concurrent_executions,
        "reservedConcurrentExecutions",
    )?;
    if !(0..=MAX_RESERVED).contains(&n) {
        return Err(constraint(
            n,
            "reservedConcurrentExecutions",
            &format!("Member must have value between 0 and {MAX_RESERVED}"),
        ));
    }
    Ok(n as u32)
}

impl Control {
    /// The function's reserved concurrency, if set (for GetFunction and the router).
    pub fn reserved_concurrency(&self, name: &str) -> Result<Option<u32>, ApiError> {
        let v = self.resource::<serde_json::Value>(name, CONCURRENCY, "")?;
        Ok(v.and_then(|v| v["ReservedConcurrentExecutions"].as_u64())
            .map(|n| n as u32))
    }

    pub(super) fn put_concurrency(&self, name: &str, body: &[u8]) -> Result<Reply, ApiError> {
        let n = parse_put_concurrency(body)?;
        let doc = json!({ "ReservedConcurrentExecutions": n });
        let json = encode(&doc)?;
        self.edit(name, CONCURRENCY, "", &mut |_, _| {
            Ok(Edit::Put(json.clone()))
        })?;
        Reply::json(StatusCode::OK, doc)
    }

    pub(super) fn get_concurrency(&self, name: &str) -> Result<Reply, ApiError> {
        self.require_function(name)?;
        let body = match self.reserved_concurrency(name)? {
            Some(n) => json!({ "ReservedConcurrentExecutions": n }),
            None => json!({}),
        };
        Reply::json(StatusCode::OK, body)
    }

    pub(super) fn delete_concurrency(&self, name: &str) -> Result<Reply, ApiError> {
        self.edit(name, CONCURRENCY, "", &mut |_, _| Ok(Edit::Delete))?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(
            parse_put_concurrency(br#"{"ReservedConcurrentExecutions": 0}"#).unwrap(),
            0
        );
        assert_eq!(
            parse_put_concurrency(br#"{"ReservedConcurrentExecutions": 5, "x": {}}"#).unwrap(),
            5
        );
        for b in [
            r#"{"ReservedConcurrentExecutions": -1}"#,
            r#"{"ReservedConcurrentExecutions": 1.5}"#,
            r#"{"ReservedConcurrentExecutions": "5"}"#,
            r#"{"ReservedConcurrentExecutions": 99999999999999999999}"#,
            r#"{}"#,
            "",
        ] {
            let e = parse_put_concurrency(b.as_bytes()).unwrap_err();
            assert_eq!(e.status, 400, "{b}");
            assert!(
                e.message
                    .to_lowercase()
                    .contains("reservedconcurrentexecutions"),
                "{b}: {}",
                e.message
            );
        }
    }
}
