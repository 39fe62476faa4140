//! Asynchronous invocation metrics (`hearth_events_*` on the admin port).

use crate::metrics::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// Counters of the accept path and the delivery workers.
#[derive(Default, Clone)]
pub struct EventsMetrics {
    /// Events accepted (published, answered 202).
    pub accepted: Counter,
    /// Events whose function ran successfully.
    pub delivered: Counter,
    /// Attempts that will be retried (function errors, throttles, platform errors).
    pub retried: Counter,
    /// Events that failed for good after their retries (RetriesExhausted).
    pub failed: Counter,
    /// Events dropped because they got older than MaximumEventAgeInSeconds (EventAgeExceeded).
    pub dropped_age: Counter,
    /// Destination records published.
    pub destinations: Counter,
    /// Events accepted and not yet settled (sampled by the workers).
    pub queue_depth: Gauge,
}

impl EventsMetrics {
    /// New counters registered in `metrics` under `hearth_events`.
    pub fn register(metrics: &Metrics) -> EventsMetrics {
        let m = EventsMetrics::default();
        metrics.register_component("hearth_events", |r| {
            r.register(
                "accepted",
                "Asynchronous invocations accepted",
                m.accepted.clone(),
            );
            r.register(
                "delivered",
                "Asynchronous invocations that succeeded",
                m.delivered.clone(),
            );
            r.register(
                "retried",
                "Delivery attempts that will be retried",
                m.retried.clone(),
            );
            r.register(
                "failed",
                "Events whose retries were exhausted",
                m.failed.clone(),
            );
            r.register(
                "dropped_age",
                "Events older than MaximumEventAgeInSeconds",
                m.dropped_age.clone(),
            );
            r.register(
                "destinations",
                "Destination records published",
                m.destinations.clone(),
            );
            r.register(
                "queue_depth",
                "Events accepted and not yet settled",
                m.queue_depth.clone(),
            );
        });
        m
    }
}
