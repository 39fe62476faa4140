//! Asynchronous invocations (`X-Amz-Invocation-Type: Event`, timer ticks) as messages on the
//! durable queue. Whoever accepts an event publishes one [`AsyncEvent`] on [`TOPIC`] (through the
//! outbox when the accept writes other state in the same transaction); delivery workers run it
//! with the function's event-invoke config.

pub mod accept;
pub mod arn;
pub mod http_dispatch;
pub mod metrics;
pub mod read;
pub mod record;
pub mod worker;

pub use accept::{Acceptor, accept};
pub use metrics::EventsMetrics;
pub use worker::{Delivered, Dispatch, DispatchError, Workers};

use serde::{Deserialize, Serialize};

/// The queue topic every accepted asynchronous invocation is published on.
pub const TOPIC: &str = "invoke.events";

/// One accepted asynchronous invocation, as stored on [`TOPIC`] (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncEvent {
    /// The request id the caller was given (also the queue dedup id).
    pub request_id: String,
    pub function_name: String,
    /// `None` means `$LATEST`.
    pub qualifier: Option<String>,
    /// The payload, base64 (payloads are bytes on the wire).
    pub payload_b64: String,
    /// When the event was accepted, epoch milliseconds (`MaximumEventAgeInSeconds` counts from here).
    pub accepted_ms: u64,
    pub trace_id: Option<String>,
    /// What produced the event when it was not an Invoke call (`trigger:NAME` for timer ticks).
    #[serde(default)]
    pub source: Option<String>,
}

/// The durable consumer the delivery workers pull [`TOPIC`] with.
pub const CONSUMER: &str = "delivery";

/// Now, epoch milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
