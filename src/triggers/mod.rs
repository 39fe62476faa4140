//! Timer triggers: a function invoked asynchronously on an EventBridge schedule.
//!
//! A [`Trigger`] is stored through the control service (`/hearth/v1/triggers`, see
//! `control::triggers`); the [`scheduler`] fires its ticks. Each tick is one transaction that
//! records the unique (trigger, scheduled time) and puts an [`AsyncEvent`] on
//! [`crate::events::TOPIC`] through the outbox; the delivery workers invoke the function from
//! there with its retry and destination settings.

pub mod scheduler;

use crate::events::AsyncEvent;
use crate::schedule::{Schedule, ScheduleError};
use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Most triggers per account.
pub const MAX_TRIGGERS: usize = 1000;
/// Longest constant `Input` (EventBridge's limit for a target's input).
pub const MAX_INPUT_BYTES: usize = 8192;
/// Longest trigger name (EventBridge rule names).
pub const MAX_NAME: usize = 64;

/// What to do with ticks that passed while no scheduler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MissedTicks {
    /// Fire the newest missed tick once (at most one catch-up), then continue on schedule.
    #[default]
    FireOnce,
    /// Fire none of them.
    Skip,
}

impl MissedTicks {
    pub fn parse(s: &str) -> Option<MissedTicks> {
        match s {
            "FIRE_ONCE" | "fire-once" => Some(MissedTicks::FireOnce),
            "SKIP" | "skip" => Some(MissedTicks::Skip),
            _ => None,
        }
    }
}

/// A stored trigger (the JSON document, also the API's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trigger {
    pub name: String,
    /// `arn:aws:events:REGION:ACCOUNT:rule/NAME` (the scheduled event's `resources`).
    pub trigger_arn: String,
    /// Unique per creation.
    pub trigger_id: String,
    pub function_name: String,
    pub qualifier: Option<String>,
    pub schedule_expression: String,
    /// Constant JSON sent instead of the scheduled event.
    pub input: Option<String>,
    pub missed_ticks: MissedTicks,
    /// RFC 3339; a rate counts its ticks from here.
    pub creation_time: String,
    /// The same instant, ms since the epoch.
    pub created_ms: i64,
}

/// Whether `name` is a valid trigger name: 1–64 of letters, digits, `.`, `-`, `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The ARN a trigger's events name as their resource.
pub fn trigger_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:rule/{name}")
}

/// `ms` since the epoch as an `OffsetDateTime` (clamped to the epoch on nonsense).
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `t` in ms since the epoch.
pub fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Trigger {
    /// The trigger's schedule, a rate anchored at its creation.
    pub fn schedule(&self) -> Result<Schedule, ScheduleError> {
        Ok(Schedule::parse(&self.schedule_expression)?.with_anchor(from_ms(self.created_ms)))
    }

    /// The queue dedup id of the tick at `scheduled_ms`.
    pub fn dedup_id(&self, scheduled_ms: i64) -> String {
        format!("trigger:{}:{}:{scheduled_ms}", self.name, self.trigger_id)
    }

    /// The payload a tick delivers: the constant input, or EventBridge's scheduled event.
    pub fn payload(&self, scheduled: OffsetDateTime, region: &str, account: &str) -> Vec<u8> {
        if let Some(input) = &self.input {
            return input.clone().into_bytes();
        }
        let time = scheduled
            .replace_nanosecond(0)
            .unwrap_or(scheduled)
            .format(&Rfc3339)
            .unwrap_or_default();
        serde_json::json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": account,
            "time": time,
            "region": region,
            "resources": [self.trigger_arn],
            "detail": {},
        })
        .to_string()
        .into_bytes()
    }

    /// The asynchronous invocation a tick becomes.
    pub fn event(&self, payload: &[u8], now_ms: i64) -> AsyncEvent {
        AsyncEvent {
            request_id: uuid::Uuid::new_v4().to_string(),
            function_name: self.function_name.clone(),
            qualifier: self.qualifier.clone(),
            payload_b64: base64::engine::general_purpose::STANDARD.encode(payload),
            accepted_ms: now_ms.max(0) as u64,
            trace_id: None,
            source: Some(format!("trigger:{}", self.name)),
        }
    }
}
