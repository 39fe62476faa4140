//! The control service's internal endpoints (what a `hearth router` process calls through
//! [`super::http_client::HttpControl`]). Pure parsing here, fuzzed by
//! `fuzz/fuzz_targets/internal_request.rs`; [`super::server`] answers them.
//!
//! - `GET /internal/v1/changes?router=ID&after=REV&wait_ms=N`: acknowledges `REV` for router
//!   `ID`, then answers `{"rev","keys","gap"}` (the changes after `REV`, waiting up to `N` ms
//!   for some; `gap: true` means flush everything: too many, or no longer kept).
//! - `POST /internal/v1/acks` `{"router","rev"}` or `{"router","forget":true}`.
//! - `GET /internal/v1/routes/{name}/{version}`: the routable version descriptor.
//! - `GET /internal/v1/aliases/{name}/{alias}`: the alias configuration.
//! - `GET /internal/v1/limits/{name}`: `{"reserved","rate_per_sec"}`.
//! - `GET /internal/v1/reserved-total`: `{"total"}`.
//! - `GET /internal/v1/urls/{name}[?qualifier=Q]`: the URL config, or `null`.
//! - `GET /internal/v1/functions/{name}`: 200 when the function exists.
//! - `POST /internal/v1/events` (an `AsyncEvent`): 202 once stored.
//!
//! Errors are the Lambda error shape ([`ApiError`]); the client maps them back.

use crate::api::ApiError;
use crate::events::AsyncEvent;
use http::Method;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The prefix of every internal path.
pub const PREFIX: &str = "/internal/v1/";
/// Longest long poll a router may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Longest router id.
pub const MAX_ROUTER_ID: usize = 128;
/// Longest name, version, alias or qualifier segment (decoded).
pub const MAX_SEGMENT: usize = 256;
/// Largest acknowledgement body.
pub const MAX_ACK_BODY: usize = 4096;

/// One parsed internal request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Internal {
    Changes {
        router: String,
        after: u64,
        wait: Duration,
    },
    Ack,
    Route {
        name: String,
        version: String,
    },
    Alias {
        name: String,
        alias: String,
    },
    Limits {
        name: String,
    },
    ReservedTotal,
    Url {
        name: String,
        qualifier: Option<String>,
    },
    Function {
        name: String,
    },
    Event,
}

/// An acknowledgement body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    pub router: String,
    #[serde(default)]
    pub rev: u64,
    #[serde(default)]
    pub forget: bool,
}

/// What `GET /internal/v1/changes` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesBody {
    pub rev: u64,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub gap: bool,
}

/// Parses an internal request line; `Ok(None)` when the path is not internal.
pub fn parse(method: &Method, path: &str, query: &str) -> Result<Option<Internal>, ApiError> {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    let r = match segs.as_slice() {
        ["changes"] if get => Internal::Changes {
            router: router_id(&required(query, "router")?)?,
            after: number(query, "after")?.unwrap_or(0),
            wait: Duration::from_millis(number(query, "wait_ms")?.unwrap_or(0)).min(MAX_WAIT),
        },
        ["acks"] if post => Internal::Ack,
        ["routes", name, version] if get => Internal::Route {
            name: segment(name)?,
            version: segment(version)?,
        },
        ["aliases", name, alias] if get => Internal::Alias {
            name: segment(name)?,
            alias: segment(alias)?,
        },
        ["limits", name] if get => Internal::Limits {
            name: segment(name)?,
        },
        ["reserved-total"] if get => Internal::ReservedTotal,
        ["urls", name] if get => Internal::Url {
            name: segment(name)?,
            qualifier: match super::query_param(query, "qualifier") {
                Some(q) => Some(bounded(q, "qualifier")?),
                None => None,
            },
        },
        ["functions", name] if get => Internal::Function {
            name: segment(name)?,
        },
        ["events"] if post => Internal::Event,
        _ => {
            return Err(ApiError::unknown_operation(format!(
                "Unknown operation: {method} {path}"
            )));
        }
    };
    Ok(Some(r))
}

/// Parses an acknowledgement body.
pub fn parse_ack(body: &[u8]) -> Result<AckBody, ApiError> {
    if body.len() > MAX_ACK_BODY {
        return Err(ApiError::too_large(format!(
            "acknowledgement larger than {MAX_ACK_BODY} bytes"
        )));
    }
    let ack: AckBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_content(format!("bad acknowledgement: {e}")))?;
    router_id(&ack.router)?;
    Ok(ack)
}

/// Parses an event to accept (the router checked the payload size; the caller bounds the body).
pub fn parse_event(body: &[u8]) -> Result<AsyncEvent, ApiError> {
    let ev: AsyncEvent = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_content(format!("bad event: {e}")))?;
    if ev.request_id.is_empty() || ev.request_id.len() > MAX_SEGMENT {
        return Err(ApiError::invalid_parameter(
            "event request_id: 1 to 256 characters",
        ));
    }
    bounded(ev.function_name.clone(), "event function_name")?;
    if let Some(q) = &ev.qualifier {
        bounded(q.clone(), "event qualifier")?;
    }
    Ok(ev)
}

fn required(query: &str, key: &str) -> Result<String, ApiError> {
    super::query_param(query, key)
        .ok_or_else(|| ApiError::invalid_parameter(format!("{key}: required")))
}

fn number(query: &str, key: &str) -> Result<Option<u64>, ApiError> {
    match super::query_param(query, key) {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::invalid_parameter(format!("{key}: not a number: {v:.32}"))),
    }
}

fn router_id(id: &str) -> Result<String, ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ROUTER_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(id.to_string())
    } else {
        Err(ApiError::invalid_parameter(
            "router: 1 to 128 characters of A-Z a-z 0-9 - _ . :",
        ))
    }
}

fn segment(seg: &str) -> Result<String, ApiError> {
    bounded(super::decode_segment(seg)?, "path segment")
}

fn bounded(s: String, what: &str) -> Result<String, ApiError> {
    if s.is_empty() || s.len() > MAX_SEGMENT {
        return Err(ApiError::invalid_parameter(format!(
            "{what}: 1 to {MAX_SEGMENT} bytes"
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_endpoint() {
        let g = Method::GET;
        assert_eq!(parse(&g, "/2015-03-31/functions", "").unwrap(), None);
        assert_eq!(
            parse(
                &g,
                "/internal/v1/changes",
                "router=r-1&after=7&wait_ms=99999999"
            )
            .unwrap(),
            Some(Internal::Changes {
                router: "r-1".into(),
                after: 7,
                wait: MAX_WAIT
            })
        );
        assert_eq!(
            parse(&g, "/internal/v1/routes/f/%24LATEST", "").unwrap(),
            Some(Internal::Route {
                name: "f".into(),
                version: "$LATEST".into()
            })
        );
        assert_eq!(
            parse(&g, "/internal/v1/urls/f", "qualifier=live").unwrap(),
            Some(Internal::Url {
                name: "f".into(),
                qualifier: Some("live".into())
            })
        );
        assert_eq!(
            parse(&Method::POST, "/internal/v1/events", "").unwrap(),
            Some(Internal::Event)
        );
    }

    #[test]
    fn refuses_hostile_requests() {
        let g = Method::GET;
        let bad = |p: &str, q: &str| parse(&g, p, q).unwrap_err();
        assert_eq!(bad("/internal/v1/changes", "").status, 400);
        assert_eq!(bad("/internal/v1/changes", "router=a%0Ab").status, 400);
        assert_eq!(bad("/internal/v1/changes", "router=a&after=-1").status, 400);
        assert_eq!(
            bad(
                "/internal/v1/changes",
                &format!("router={}", "a".repeat(200))
            )
            .status,
            400
        );
        assert_eq!(bad("/internal/v1/routes/f", "").status, 404);
        assert_eq!(bad("/internal/v1/routes//1", "").status, 400);
        let long = "x".repeat(300);
        assert_eq!(bad(&format!("/internal/v1/limits/{long}"), "").status, 400);
        assert_eq!(
            parse(&Method::DELETE, "/internal/v1/events", "")
                .unwrap_err()
                .status,
            404
        );
        assert!(parse_ack(b"{").is_err());
        assert!(parse_ack(br#"{"router":"r","rev":1,"x":1}"#).is_err());
        assert!(parse_ack(&vec![b' '; MAX_ACK_BODY + 1]).is_err());
        assert_eq!(
            parse_ack(br#"{"router":"r","forget":true}"#).unwrap(),
            AckBody {
                router: "r".into(),
                rev: 0,
                forget: true
            }
        );
        assert!(parse_event(b"[]").is_err());
        assert!(
            parse_event(
                br#"{"request_id":"","function_name":"f","qualifier":null,"payload_b64":"","accepted_ms":1,"trace_id":null}"#
            )
            .is_err()
        );
    }
}
