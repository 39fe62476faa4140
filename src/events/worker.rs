//! Delivery workers: pull accepted events from [`TOPIC`], run them through the router's invoke
//! path ([`Dispatch`]) with the function's event invoke config, retry, and send destination
//! records.
//!
//! Lambda's semantics, and how they survive restarts:
//! - A function error is retried up to `MaximumRetryAttempts` (default 2) times with backoff. A
//!   retry is a *re-published* event ([`Queued`]: the [`AsyncEvent`] plus `attempts` incremented
//!   and `not_before_ms` set; dedup id `<request id>#<attempt>`), published before the original
//!   is acked. So a crash between the
//!   two re-runs nothing extra (the duplicate publish is dropped by the queue's dedup window) and
//!   a redelivery after a crash mid-run does not count as an attempt the function never
//!   finished. (The queue's own delivery count would also count throttles and redeliveries.)
//! - A throttle, capacity refusal or platform error is nakked with backoff (`throttle_base_ms`,
//!   doubling per delivery up to `throttle_max_ms`) and uses up no attempt.
//! - An event older than `MaximumEventAgeInSeconds` (default 6 hours) is not run again: it goes
//!   to the on-failure destination with `EventAgeExceeded`.
//! - The message is acked only after the outcome and its destination record are published, so
//!   a crash at any point means a redelivery (at least once), never a loss.

use super::accept::{publish, publish_event};
use super::arn::{Target, parse_destination};
use super::record::{Condition, build};
use super::{AsyncEvent, CONSUMER, EventsMetrics, TOPIC, now_ms};
use crate::api::ApiError;
use crate::config::EventsConfig;
use crate::control::Control;
use crate::queue::{ConsumerConfig, Message, Queue, pull_wait};
use crate::router::invoke::MAX_EVENT_PAYLOAD;
use base64::Engine;
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A message on [`TOPIC`] as the workers read it: the accepted [`AsyncEvent`] (whatever
/// published it) plus the retry state the workers add when they re-publish it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Queued {
    #[serde(flatten)]
    pub event: AsyncEvent,
    /// Function attempts that already ended in a function error.
    #[serde(default)]
    pub attempts: u32,
    /// Not to be run before this time, epoch milliseconds (the backoff of a retry).
    #[serde(default)]
    pub not_before_ms: u64,
}

/// What a delivery attempt produced when the function ran.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub body: Bytes,
    /// `Some("Unhandled")` when the function failed.
    pub function_error: Option<&'static str>,
    pub executed_version: String,
}

/// Why a delivery attempt did not run the function.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DispatchError {
    /// Throttled, no capacity, or a platform error: try again later (uses no attempt).
    #[error("not run, will retry: {0}")]
    Retry(String),
    /// The function (or qualifier) no longer exists or cannot be invoked: drop the event.
    #[error("not runnable: {0}")]
    Gone(String),
}

impl From<ApiError> for DispatchError {
    fn from(e: ApiError) -> Self {
        if e.status.as_u16() == 429 || e.status.is_server_error() {
            DispatchError::Retry(e.to_string())
        } else {
            DispatchError::Gone(e.to_string())
        }
    }
}

/// The invoke path the workers call: resolve, admit, place, forward (one call site: the router).
#[async_trait::async_trait]
pub trait Dispatch: Send + Sync {
    async fn dispatch(
        &self,
        event: &AsyncEvent,
        payload: Bytes,
    ) -> Result<Delivered, DispatchError>;
}

/// A function's asynchronous invocation settings.
#[derive(Debug, Clone)]
struct Settings {
    max_retries: u32,
    max_age_ms: u64,
    on_success: Option<String>,
    on_failure: Option<String>,
}

/// Injected fault for tests: caps every event's maximum age (seconds), so the age path can be
/// exercised without waiting a minute (the API's smallest `MaximumEventAgeInSeconds`).
const MAX_AGE_FAULT: &str = "HEARTH_FAULT_EVENT_MAX_AGE_SECS";

/// Lambda's default `MaximumRetryAttempts` and `MaximumEventAgeInSeconds`.
const DEFAULT_RETRIES: u32 = 2;
const DEFAULT_MAX_AGE_SECS: u64 = 21_600;

/// How often a destination publish is tried in place before the event is given back.
const PUBLISH_TRIES: u32 = 3;

/// The delivery workers.
pub struct Workers {
    queue: Arc<dyn Queue>,
    control: Arc<Control>,
    dispatch: Arc<dyn Dispatch>,
    metrics: EventsMetrics,
    cfg: EventsConfig,
    max_age_cap_ms: Option<u64>,
}

impl Workers {
    pub fn new(
        queue: Arc<dyn Queue>,
        control: Arc<Control>,
        dispatch: Arc<dyn Dispatch>,
        metrics: EventsMetrics,
        cfg: &EventsConfig,
    ) -> Arc<Workers> {
        let max_age_cap_ms = std::env::var(MAX_AGE_FAULT)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(|s| s * 1000);
        Arc::new(Workers {
            queue,
            control,
            dispatch,
            metrics,
            cfg: cfg.clone(),
            max_age_cap_ms,
        })
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.cfg.lease_secs)
    }

    /// Runs `events.workers` delivery loops and the depth sampler until `shutdown` flips.
    /// An event being run when it flips is finished first.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.cfg.workers {
            tasks.spawn(self.clone().deliver_loop(shutdown.clone()));
        }
        tasks.spawn(self.clone().maintain(shutdown));
        while tasks.join_next().await.is_some() {}
    }

    async fn deliver_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let config = ConsumerConfig {
            lease: self.lease(),
            max_deliveries: 0,
            dead_letter_topic: None,
        };
        while !*shutdown.borrow() {
            let pulled = tokio::select! {
                r = pull_wait(&self.queue, TOPIC, CONSUMER, 1, &config, Duration::from_secs(5)) => r,
                _ = shutdown.changed() => break,
            };
            match pulled {
                Ok(batch) => {
                    for m in batch {
                        self.handle(m).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pulling events");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Samples the queue depth and trims settled events.
    async fn maintain(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let q = self.queue.clone();
            let trim = n.is_multiple_of(15);
            n += 1;
            let depth = tokio::task::spawn_blocking(move || {
                if trim && let Err(e) = q.trim(TOPIC) {
                    tracing::warn!(error = %e, "trimming events");
                }
                q.pending(TOPIC, CONSUMER)
            })
            .await;
            if let Ok(Ok(d)) = depth {
                self.metrics.queue_depth.set(d as i64);
            }
        }
    }

    /// Runs a blocking queue call on the blocking pool; logs a failure.
    async fn queue_call(
        &self,
        what: &'static str,
        f: impl FnOnce(&dyn Queue) -> crate::queue::Result<()> + Send + 'static,
    ) -> bool {
        let q = self.queue.clone();
        match tokio::task::spawn_blocking(move || f(q.as_ref())).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, what, "queue call failed");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, what, "queue task failed");
                false
            }
        }
    }

    async fn ack(&self, seq: u64) {
        self.queue_call("ack", move |q| q.ack(TOPIC, CONSUMER, seq))
            .await;
    }

    async fn term(&self, seq: u64) {
        self.queue_call("term", move |q| q.term(TOPIC, CONSUMER, seq))
            .await;
    }

    async fn nak(&self, seq: u64, delay: Duration) {
        self.queue_call("nak", move |q| q.nak(TOPIC, CONSUMER, seq, delay))
            .await;
    }

    /// The function's event invoke config (a metadata read, on the blocking pool).
    async fn settings(&self, ev: &AsyncEvent) -> Result<Settings, DispatchError> {
        let (control, name, qualifier) = (
            self.control.clone(),
            ev.function_name.clone(),
            ev.qualifier.clone(),
        );
        let c = tokio::task::spawn_blocking(move || {
            control.event_invoke_config(&name, qualifier.as_deref())
        })
        .await
        .map_err(|e| DispatchError::Retry(format!("config task: {e}")))??;
        let dest = |d: &crate::api::types::Destination| d.destination.clone();
        let mut s = Settings {
            max_retries: DEFAULT_RETRIES,
            max_age_ms: DEFAULT_MAX_AGE_SECS * 1000,
            on_success: None,
            on_failure: None,
        };
        if let Some(c) = c {
            s.max_retries = c.maximum_retry_attempts.unwrap_or(DEFAULT_RETRIES);
            s.max_age_ms = c
                .maximum_event_age_in_seconds
                .map_or(s.max_age_ms, |a| u64::from(a) * 1000);
            s.on_success = dest(&c.destination_config.on_success);
            s.on_failure = dest(&c.destination_config.on_failure);
        }
        if let Some(cap) = self.max_age_cap_ms {
            s.max_age_ms = s.max_age_ms.min(cap);
        }
        Ok(s)
    }

    /// One delivery of one message, settled (acked, nakked or termed) before returning.
    async fn handle(&self, m: Message) {
        let q: Queued = match serde_json::from_slice(&m.payload) {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(seq = m.seq, error = %e, "unreadable event dropped");
                return self.term(m.seq).await;
            }
        };
        let now = now_ms();
        if q.not_before_ms > now {
            return self
                .nak(m.seq, Duration::from_millis(q.not_before_ms - now))
                .await;
        }
        let ev = &q.event;
        let settings = match self.settings(ev).await {
            Ok(s) => s,
            Err(e) => return self.not_run(&m, ev, e).await,
        };
        let Ok(payload) = base64::engine::general_purpose::STANDARD.decode(&ev.payload_b64) else {
            tracing::error!(request_id = %ev.request_id, "event payload is not base64; dropped");
            return self.term(m.seq).await;
        };
        if now.saturating_sub(ev.accepted_ms) > settings.max_age_ms {
            self.metrics.dropped_age.inc();
            let outcome = Outcome::new(Condition::EventAgeExceeded, q.attempts, None);
            return self.finish(&m, ev, &payload, &settings, outcome).await;
        }
        let run = self.dispatch.dispatch(ev, Bytes::from(payload.clone()));
        let result = self.leased(m.seq, run).await;
        let count = q.attempts + 1;
        match result {
            Ok(d) if d.function_error.is_none() => {
                self.metrics.delivered.inc();
                let outcome = Outcome::new(Condition::Success, count, Some(d));
                self.finish(&m, ev, &payload, &settings, outcome).await
            }
            Ok(_) if q.attempts < settings.max_retries => self.retry(&m, &q).await,
            Ok(d) => {
                self.metrics.failed.inc();
                let outcome = Outcome::new(Condition::RetriesExhausted, count, Some(d));
                self.finish(&m, ev, &payload, &settings, outcome).await
            }
            Err(e) => self.not_run(&m, ev, e).await,
        }
    }

    /// The function did not run: retry later (no attempt used) or drop.
    async fn not_run(&self, m: &Message, ev: &AsyncEvent, e: DispatchError) {
        match e {
            DispatchError::Retry(why) => {
                self.metrics.retried.inc();
                let delay = throttle_backoff(&self.cfg, m.deliveries);
                tracing::debug!(request_id = %ev.request_id, %why, ?delay, "event not run; retrying");
                self.nak(m.seq, delay).await
            }
            DispatchError::Gone(why) => {
                tracing::warn!(request_id = %ev.request_id, function = %ev.function_name, %why, "event dropped: function not invocable");
                self.term(m.seq).await
            }
        }
    }

    /// Keeps the lease of `seq` alive while `fut` runs.
    async fn leased<F: Future>(&self, seq: u64, fut: F) -> F::Output {
        let lease = self.lease();
        let every = (lease / 3).max(Duration::from_millis(100));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => {
                    self.queue_call("in_progress", move |q| q.in_progress(TOPIC, CONSUMER, seq, lease)).await;
                }
            }
        }
    }

    /// A function error with attempts left: re-publish with the attempt counted, then ack.
    async fn retry(&self, m: &Message, q: &Queued) {
        let mut next = q.clone();
        next.attempts += 1;
        next.not_before_ms = now_ms() + retry_backoff(&self.cfg, next.attempts).as_millis() as u64;
        let dedup = format!("{}#{}", q.event.request_id, next.attempts);
        let Ok(body) = serde_json::to_vec(&next) else {
            return self.term(m.seq).await;
        };
        match publish(&self.queue, TOPIC, body, dedup).await {
            Ok(_) => {
                self.metrics.retried.inc();
                self.ack(m.seq).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "re-publishing a retry; giving the event back");
                self.nak(m.seq, Duration::from_secs(1)).await
            }
        }
    }

    fn function_arn(&self, ev: &AsyncEvent, executed: Option<&str>) -> String {
        let qualifier = executed.or(ev.qualifier.as_deref()).unwrap_or("$LATEST");
        format!(
            "arn:aws:lambda:{}:{}:function:{}:{qualifier}",
            self.control.region(),
            self.control.account(),
            ev.function_name
        )
    }

    /// The outcome is final: send the destination record (if configured), then ack.
    async fn finish(
        &self,
        m: &Message,
        ev: &AsyncEvent,
        payload: &[u8],
        settings: &Settings,
        outcome: Outcome,
    ) {
        let dest = match outcome.condition {
            Condition::Success => settings.on_success.as_deref(),
            _ => settings.on_failure.as_deref(),
        };
        if let Some(arn) = dest {
            let executed = outcome
                .response
                .as_ref()
                .map(|d| d.executed_version.as_str());
            let record = build(
                ev,
                payload,
                &self.function_arn(ev, executed),
                outcome.condition,
                outcome.count,
                outcome.response.as_ref(),
                now_ms(),
            );
            if !self.send_record(ev, arn, outcome.condition, record).await {
                return self.nak(m.seq, Duration::from_secs(1)).await;
            }
        }
        self.ack(m.seq).await
    }

    /// Publishes a destination record; `false` if the queue kept failing.
    async fn send_record(
        &self,
        ev: &AsyncEvent,
        arn: &str,
        condition: Condition,
        record: serde_json::Value,
    ) -> bool {
        let target = match parse_destination(arn) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(request_id = %ev.request_id, arn, error = %e, "destination unusable; record not sent");
                return true;
            }
        };
        let dedup = format!("{}:{}", ev.request_id, condition.as_str());
        let record = record.to_string();
        if matches!(target, Target::Function { .. }) && record.len() > MAX_EVENT_PAYLOAD {
            // Also what ends a function that names itself as its destination and returns its
            // input: the record doubles on every hop.
            tracing::warn!(request_id = %ev.request_id, arn, bytes = record.len(), "destination record over the 1 MB event limit; not sent");
            return true;
        }
        for attempt in 1..=PUBLISH_TRIES {
            let sent = match &target {
                Target::Queue(topic) => {
                    publish(
                        &self.queue,
                        topic,
                        record.clone().into_bytes(),
                        dedup.clone(),
                    )
                    .await
                }
                Target::Function { name, qualifier } => {
                    let dest_event = AsyncEvent {
                        request_id: derived_request_id(&dedup),
                        function_name: name.clone(),
                        qualifier: qualifier.clone(),
                        payload_b64: base64::engine::general_purpose::STANDARD.encode(&record),
                        accepted_ms: now_ms(),
                        trace_id: ev.trace_id.clone(),
                        source: Some(format!("destination:{}", ev.request_id)),
                    };
                    publish_event(&self.queue, &dest_event).await
                }
            };
            match sent {
                Ok(_) => {
                    self.metrics.destinations.inc();
                    return true;
                }
                Err(e) => {
                    tracing::warn!(arn, attempt, error = %e, "publishing a destination record");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        false
    }
}

/// Wait after the `deliveries`-th refusal: `throttle_base_ms` doubling, at most `throttle_max_ms`.
fn throttle_backoff(cfg: &EventsConfig, deliveries: u32) -> Duration {
    let exp = deliveries.saturating_sub(1).min(20);
    let ms = cfg
        .throttle_base_ms
        .saturating_mul(1 << exp)
        .min(cfg.throttle_max_ms);
    Duration::from_millis(ms)
}

/// Wait before the retry that follows `failed` failed attempts: `retry_base_ms`, then doubled.
fn retry_backoff(cfg: &EventsConfig, failed: u32) -> Duration {
    let exp = failed.saturating_sub(1).min(20);
    Duration::from_millis(cfg.retry_base_ms.saturating_mul(1 << exp))
}

/// The final outcome of an event.
struct Outcome {
    condition: Condition,
    count: u32,
    response: Option<Delivered>,
}

impl Outcome {
    fn new(condition: Condition, count: u32, response: Option<Delivered>) -> Self {
        Outcome {
            condition,
            count,
            response,
        }
    }
}

/// A UUID-shaped request id derived from `seed` (the same seed always gives the same id, so a
/// re-sent destination invoke is deduplicated).
pub fn derived_request_id(seed: &str) -> String {
    use sha2::Digest;
    let mut b: [u8; 16] = sha2::Sha256::digest(seed.as_bytes())[..16]
        .try_into()
        .unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8 (custom)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid::Uuid::from_bytes(b).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_reads_plain_events_and_keeps_retry_state() {
        let plain = r#"{"request_id":"r","function_name":"f","qualifier":null,"payload_b64":"","accepted_ms":5,"trace_id":null}"#;
        let q: Queued = serde_json::from_str(plain).unwrap();
        assert_eq!(
            (q.event.request_id.as_str(), q.attempts, q.not_before_ms),
            ("r", 0, 0)
        );
        let retry = Queued {
            attempts: 2,
            not_before_ms: 9,
            ..q
        };
        let text = serde_json::to_string(&retry).unwrap();
        let back: Queued = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (back.attempts, back.not_before_ms, back.event.accepted_ms),
            (2, 9, 5)
        );
        // Whoever reads it as an AsyncEvent still can.
        assert!(serde_json::from_str::<AsyncEvent>(&text).is_ok());
    }

    #[test]
    fn backoffs() {
        let cfg = EventsConfig::default();
        let ms = |d: Duration| d.as_millis() as u64;
        // Lambda: about one minute before the first retry, two before the second.
        assert_eq!(ms(retry_backoff(&cfg, 1)), 60_000);
        assert_eq!(ms(retry_backoff(&cfg, 2)), 120_000);
        assert_eq!(ms(throttle_backoff(&cfg, 1)), 1_000);
        assert_eq!(ms(throttle_backoff(&cfg, 3)), 4_000);
        assert_eq!(ms(throttle_backoff(&cfg, 1000)), 300_000);
    }

    #[test]
    fn derived_ids_are_stable_uuids() {
        let a = derived_request_id("r:Success");
        assert_eq!(a, derived_request_id("r:Success"));
        assert_ne!(a, derived_request_id("r:RetriesExhausted"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn api_errors_map_to_retry_or_drop() {
        let t = ApiError::too_many_requests("ConcurrentInvocationLimitExceeded", "Rate Exceeded.");
        assert!(matches!(DispatchError::from(t), DispatchError::Retry(_)));
        assert!(matches!(
            DispatchError::from(ApiError::service("x")),
            DispatchError::Retry(_)
        ));
        assert!(matches!(
            DispatchError::from(ApiError::not_found("x")),
            DispatchError::Gone(_)
        ));
    }
}
