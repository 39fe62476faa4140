//! `GET /hearth/v1/queues/{name}/messages?max=N&after=SEQ`: reads a destination queue's messages
//! without consuming them (`hearth queue read`). Each message is `{Seq, PublishedMs, Body}`;
//! `NextAfter` is the sequence to pass as `after` to read on.

use super::arn::queue_name;
use crate::api::ApiError;
use crate::control::{decode_segment, query_param};
use crate::queue::Queue;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most messages one read returns.
pub const MAX_READ: usize = 1000;
/// Messages returned when `max` is not given.
pub const DEFAULT_READ: usize = 100;

/// A validated read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub topic: String,
    pub after: u64,
    pub max: usize,
}

/// Matches `/hearth/v1/queues/{name}/messages`, returning the raw name segment.
pub fn read_path(path: &str) -> Option<&str> {
    let name = path
        .strip_prefix("/hearth/v1/queues/")?
        .strip_suffix("/messages")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Parses the name segment and query (outside input).
pub fn parse_read(segment: &str, query: &str) -> Result<ReadRequest, ApiError> {
    let topic = queue_name(&decode_segment(segment)?)?.to_string();
    let number = |key: &str, default: u64, max: u64| -> Result<u64, ApiError> {
        match query_param(query, key) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| {
                ApiError::invalid_parameter(format!("{key} must be a number from 0 to {max}"))
            }),
        }
    };
    let max = number("max", DEFAULT_READ as u64, MAX_READ as u64)? as usize;
    let after = number("after", 0, i64::MAX as u64)?;
    Ok(ReadRequest { topic, after, max })
}

/// Reads the messages a request names.
pub async fn read(queue: &Arc<dyn Queue>, req: ReadRequest) -> Result<Value, ApiError> {
    let q = queue.clone();
    let (topic, after, max) = (req.topic, req.after, req.max);
    let msgs = tokio::task::spawn_blocking(move || q.read(&topic, after, max))
        .await
        .map_err(|e| ApiError::service(format!("read task: {e}")))?
        .map_err(|e| ApiError::service(format!("reading the queue: {e}")))?;
    let next = msgs.last().map_or(after, |m| m.seq);
    let messages: Vec<Value> = msgs
        .iter()
        .map(|m| {
            json!({
                "Seq": m.seq,
                "PublishedMs": m.published_ms,
                "Body": String::from_utf8_lossy(&m.payload),
            })
        })
        .collect();
    Ok(json!({ "Messages": messages, "NextAfter": next }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries() {
        assert_eq!(read_path("/hearth/v1/queues/q/messages"), Some("q"));
        assert_eq!(read_path("/hearth/v1/queues//messages"), None);
        assert_eq!(read_path("/hearth/v1/queues/a/b/messages"), None);
        let r = parse_read("q", "max=5&after=7").unwrap();
        assert_eq!((r.topic.as_str(), r.after, r.max), ("q", 7, 5));
        assert_eq!(parse_read("q", "").unwrap().max, DEFAULT_READ);
    }

    #[test]
    fn hostile_reads() {
        for (seg, q) in [
            ("invoke.events", ""),
            ("invoke%2Eevents", ""),
            ("%ff", ""),
            ("q", "max=1001"),
            ("q", "max=-1"),
            ("q", "after=99999999999999999999999"),
            ("q", "after=x"),
        ] {
            let e = parse_read(seg, q).unwrap_err();
            assert_eq!(e.status, 400, "{seg} {q}");
        }
    }
}
