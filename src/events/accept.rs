//! The accept side: an `Event` invoke (or a destination) becomes an [`AsyncEvent`] on [`TOPIC`],
//! published (on disk) before the caller is answered.

use super::{AsyncEvent, EventsMetrics, TOPIC};
use crate::api::ApiError;
use crate::queue::{Queue, QueueError};
use std::sync::Arc;

/// What the router needs to accept asynchronous invocations.
#[derive(Clone)]
pub struct Acceptor {
    pub queue: Arc<dyn Queue>,
    pub metrics: EventsMetrics,
}

/// Publishes `payload` on `topic` (blocking pool) with `dedup_id`.
pub async fn publish(
    queue: &Arc<dyn Queue>,
    topic: &str,
    payload: Vec<u8>,
    dedup_id: String,
) -> Result<u64, QueueError> {
    let (q, t) = (queue.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || q.publish(&t, &payload, Some(&dedup_id)))
        .await
        .map_err(|e| QueueError::Backend(format!("publish task: {e}")))?
}

/// Publishes `event` on [`TOPIC`] with its request id as the dedup id.
pub async fn publish_event(queue: &Arc<dyn Queue>, event: &AsyncEvent) -> Result<u64, QueueError> {
    let body = serde_json::to_vec(event).map_err(|e| QueueError::Invalid(e.to_string()))?;
    publish(queue, TOPIC, body, event.request_id.clone()).await
}

/// Accepts an asynchronous invocation: returns once the event is durable.
pub async fn accept(acceptor: &Acceptor, event: &AsyncEvent) -> Result<(), ApiError> {
    publish_event(&acceptor.queue, event)
        .await
        .map_err(|e| ApiError::service(format!("storing the event: {e}")))?;
    acceptor.metrics.accepted.inc();
    Ok(())
}
