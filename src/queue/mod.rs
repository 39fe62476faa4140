//! Durable queue (DESIGN.md "Queue"), shaped like NATS JetStream so a distributed backend is a
//! drop-in: named topics (streams), `publish` with a dedup id, durable consumers that `pull`
//! leased messages and `ack`, `nak`, `in_progress` or `term` them, a maximum delivery count with a
//! dead-letter topic. The embedded backend is SQLite ([`sqlite::SqliteQueue`]); state changes in
//! the metadata store reach the queue through the [`outbox`].
//!
//! Semantics every backend keeps:
//! - **Sequences** are per topic, start at 1, and are never reused (not even after [`Queue::trim`]).
//! - **Consumers** are durable names per topic. Each consumer sees every message of the topic
//!   independently. A consumer starts at the *oldest message still stored* in the topic when it is
//!   first used (JetStream `DeliverPolicy::All`), so messages published before any worker ran are
//!   not missed; only [`Queue::trim`] can remove them first, and it never removes messages of a
//!   topic that has no consumer yet.
//! - **Delivery** is at least once: a pulled message is leased for [`ConsumerConfig::lease`]; if it
//!   is not acked or termed before the lease ends it is delivered again. Pulls return the oldest
//!   visible messages first.
//! - **Dead letters**: a message that would be delivered more than
//!   [`ConsumerConfig::max_deliveries`] times is instead published to the dead-letter topic with
//!   its payload unchanged and its identity in [`Message::origin`], and termed for that consumer.
//! - **Dedup**: a publish whose dedup id was seen on that topic within the dedup window returns the
//!   first message's sequence and stores nothing (JetStream's duplicate window), even if that
//!   message was trimmed since. Dedup ids are forgotten by [`Queue::trim`] after the window.
//! - Acks identify a message by sequence only (not by delivery): a late ack from a worker whose
//!   lease expired still counts, as with at-least-once processing it should.

#![warn(missing_docs)]

pub mod clock;
pub mod outbox;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use clock::{Clock, ManualClock, SystemClock};

/// One message as delivered to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sequence within the topic, from 1.
    pub seq: u64,
    /// Topic the message is stored in.
    pub topic: String,
    /// Opaque payload.
    pub payload: Vec<u8>,
    /// Deliveries to this consumer so far, including this one (1 on the first delivery).
    pub deliveries: u32,
    /// Publish time, ms since the Unix epoch (the queue's clock).
    pub published_ms: u64,
    /// Dedup id given at publish, if any.
    pub dedup_id: Option<String>,
    /// Set on dead letters: where the message came from (NATS backend: message headers).
    pub origin: Option<Origin>,
}

/// The identity of a dead-lettered message in its original topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Original topic.
    pub topic: String,
    /// Original sequence in that topic.
    pub seq: u64,
    /// Consumer that gave up on it.
    pub consumer: String,
    /// Deliveries made to that consumer before it was dead-lettered.
    pub deliveries: u32,
}

/// Queue failures; each says which side failed and whether a retry is safe ([`Self::retry_safe`]).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backend failed (platform side: disk, database, connection). Retrying later is safe:
    /// a failed call changed nothing, and publish is idempotent with a dedup id.
    #[error("queue backend: {0}")]
    Backend(String),
    /// The outbox in the metadata store failed (platform side). Retrying later is safe: rows
    /// stay until they are published.
    #[error("queue outbox: {0}")]
    Outbox(String),
    /// The caller named a message that the topic does not hold (client side).
    #[error("queue: no message {seq} in topic {topic:?}")]
    NoMessage {
        /// Topic asked for.
        topic: String,
        /// Sequence asked for.
        seq: u64,
    },
    /// The caller passed an invalid topic or consumer name or argument (client side).
    #[error("queue: invalid request: {0}")]
    Invalid(String),
}

impl QueueError {
    /// Whether repeating the same call later can succeed.
    pub fn retry_safe(&self) -> bool {
        matches!(self, QueueError::Backend(_) | QueueError::Outbox(_))
    }
}

/// Result of queue calls.
pub type Result<T> = std::result::Result<T, QueueError>;

/// Per-consumer delivery settings, passed on every pull (JetStream consumer config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// How long a pulled message stays leased (JetStream `AckWait`). Default 30 s.
    pub lease: Duration,
    /// Deliveries before a message is dead-lettered (JetStream `MaxDeliver`); 0 = unlimited.
    /// Default 5.
    pub max_deliveries: u32,
    /// Dead-letter topic; `None` means `"<topic>.dlq"` (the default).
    pub dead_letter_topic: Option<String>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            lease: Duration::from_secs(30),
            max_deliveries: 5,
            dead_letter_topic: None,
        }
    }
}

impl ConsumerConfig {
    /// The dead-letter topic for messages of `topic`.
    pub fn dead_letter_for(&self, topic: &str) -> String {
        match &self.dead_letter_topic {
            Some(t) => t.clone(),
            None => format!("{topic}.dlq"),
        }
    }
}

/// Backend-wide settings (JetStream stream config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a dedup id is remembered per topic (JetStream `Duplicates`). Default 2 minutes.
    pub dedup_window: Duration,
    /// Optional age limit: [`Queue::trim`] also removes messages older than this, acked or not
    /// (JetStream `MaxAge`). Default none.
    pub max_age: Option<Duration>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            dedup_window: Duration::from_secs(120),
            max_age: None,
        }
    }
}

/// The queue seam. Calls block (disk or network); async callers use `spawn_blocking` or
/// [`pull_wait`].
pub trait Queue: Send + Sync {
    /// Appends a message to `topic` and returns its sequence. With a dedup id seen on this
    /// topic within the dedup window, returns the first message's sequence and stores nothing.
    fn publish(&self, topic: &str, payload: &[u8], dedup_id: Option<&str>) -> Result<u64>;

    /// Leases up to `max` messages that `consumer` has not acked or termed and that are visible
    /// (never delivered, lease expired, or nak delay passed), oldest first. Each returned message
    /// is leased until now + `config.lease` and its delivery count is incremented. Messages over
    /// `config.max_deliveries` go to the dead-letter topic instead and are termed.
    fn pull(
        &self,
        topic: &str,
        consumer: &str,
        max: usize,
        config: &ConsumerConfig,
    ) -> Result<Vec<Message>>;

    /// Marks a message done for `consumer`. Idempotent.
    fn ack(&self, topic: &str, consumer: &str, seq: u64) -> Result<()>;

    /// Gives a message back: it becomes visible to `consumer` again after `delay`. The delivery
    /// count is kept. No effect on a message already acked or termed.
    fn nak(&self, topic: &str, consumer: &str, seq: u64, delay: Duration) -> Result<()>;

    /// Extends the lease of a delivered, unacked message to now + `extend`. No effect on a
    /// message not delivered yet or already acked or termed.
    fn in_progress(&self, topic: &str, consumer: &str, seq: u64, extend: Duration) -> Result<()>;

    /// Marks a message as never to be delivered to `consumer` again. Idempotent.
    fn term(&self, topic: &str, consumer: &str, seq: u64) -> Result<()>;

    /// Messages of `topic` that `consumer` has not acked or termed yet (leased ones included).
    /// Like every call naming a consumer, creates the consumer if it is new.
    fn pending(&self, topic: &str, consumer: &str) -> Result<u64>;

    /// Removes the messages that every consumer of `topic` has acked or termed, up to the first
    /// one some consumer still needs (none while the topic has no consumer), messages older than
    /// [`QueueConfig::max_age`], and dedup ids older than the dedup window. Returns how many
    /// messages were removed. Call it periodically (a maintenance tick).
    fn trim(&self, topic: &str) -> Result<u64>;

    /// A watch whose value changes whenever messages of `topic` may have become available
    /// (a publish or a nak without delay seen by this process). The value is opaque and only
    /// increases. A NATS backend feeds it from a core subscription on the stream's subject.
    fn subscribe(&self, topic: &str) -> watch::Receiver<u64>;

    /// Reads up to `max` stored messages of `topic` with sequences above `after`, oldest first,
    /// without leasing or settling anything (JetStream direct get). `deliveries` is 0. Backends
    /// that cannot read directly answer [`QueueError::Invalid`].
    fn read(&self, topic: &str, after: u64, max: usize) -> Result<Vec<Message>> {
        let _ = (topic, after, max);
        Err(QueueError::Invalid("direct reads are not supported".into()))
    }
}

/// How often [`pull_wait`] pulls again without a notification, so that expired leases and
/// passed nak delays are picked up (they cause no notification).
pub const RECHECK: Duration = Duration::from_secs(1);

/// Pulls like [`Queue::pull`] but, when nothing is visible, waits up to `timeout` for
/// messages instead of returning at once (JetStream's pull with `expires`). Returns an empty
/// batch if the timeout passes.
pub async fn pull_wait(
    queue: &Arc<dyn Queue>,
    topic: &str,
    consumer: &str,
    max: usize,
    config: &ConsumerConfig,
    timeout: Duration,
) -> Result<Vec<Message>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = queue.subscribe(topic);
    loop {
        changes.borrow_and_update();
        let batch = pull_blocking(queue, topic, consumer, max, config).await?;
        let now = tokio::time::Instant::now();
        if !batch.is_empty() || now >= deadline {
            return Ok(batch);
        }
        let wait = (deadline - now).min(RECHECK);
        if let Ok(Err(_closed)) = tokio::time::timeout(wait, changes.changed()).await {
            tokio::time::sleep(wait).await;
        }
    }
}

/// [`Queue::pull`] on the blocking pool.
async fn pull_blocking(
    queue: &Arc<dyn Queue>,
    topic: &str,
    consumer: &str,
    max: usize,
    config: &ConsumerConfig,
) -> Result<Vec<Message>> {
    let (q, t, c, cfg) = (
        queue.clone(),
        topic.to_owned(),
        consumer.to_owned(),
        config.clone(),
    );
    tokio::task::spawn_blocking(move || q.pull(&t, &c, max, &cfg))
        .await
        .map_err(|e| QueueError::Backend(format!("pull task: {e}")))?
}

/// Checks a topic name: non-empty, no whitespace, no NATS wildcards (`*`, `>`), so every topic
/// maps to a NATS subject.
pub fn check_topic(topic: &str) -> Result<()> {
    let bad = |c: char| c.is_whitespace() || c == '*' || c == '>';
    if topic.is_empty() || topic.contains(bad) || topic.starts_with('.') || topic.ends_with('.') {
        return Err(QueueError::Invalid(format!("bad topic name {topic:?}")));
    }
    Ok(())
}

/// Checks a consumer name: non-empty, no whitespace, `.`, `*` or `>` (NATS durable names).
pub fn check_consumer(consumer: &str) -> Result<()> {
    let bad = |c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>');
    if consumer.is_empty() || consumer.contains(bad) {
        return Err(QueueError::Invalid(format!(
            "bad consumer name {consumer:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_topic("invoke.async").is_ok());
        for bad in ["", "a b", "a.*", "a.>", ".a", "a."] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
        assert!(check_consumer("workers-1").is_ok());
        for bad in ["", "a.b", "a b", "*"] {
            assert!(check_consumer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults() {
        let c = ConsumerConfig::default();
        assert_eq!(c.lease, Duration::from_secs(30));
        assert_eq!(c.max_deliveries, 5);
        assert_eq!(c.dead_letter_for("t"), "t.dlq");
        assert_eq!(
            QueueConfig::default().dedup_window,
            Duration::from_secs(120)
        );
        assert!(QueueError::Backend("x".into()).retry_safe());
        assert!(!QueueError::Invalid("x".into()).retry_safe());
    }
}
