//! Fires timer triggers. Each pass reads every trigger with its newest tick, and for each
//! trigger whose next tick is due writes ONE transaction: the unique (trigger, scheduled time)
//! record and the tick's [`AsyncEvent`](crate::events::AsyncEvent) on the outbox. Another
//! scheduler (another process on the same store) that races for the same tick loses on the
//! unique record and writes nothing, so every tick fires once.
//!
//! Missed ticks: when the newest due tick is more than [`LATE_AFTER_MS`] old (hearth was down,
//! or the trigger's schedule was behind), the trigger's [`MissedTicks`] decides: fire it once
//! (`FIRE_ONCE`) or record it as skipped (`SKIP`). Older due ticks are never fired: at most one
//! catch-up per trigger.

use super::{MissedTicks, Trigger, from_ms, to_ms};
use crate::events;
use crate::queue::Clock;
use crate::queue::outbox::Relay;
use crate::schedule::Schedule;
use crate::store::{MetadataStore, Op, StoreError, TriggerRow};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// A tick fired later than this after its scheduled time counts as missed.
pub const LATE_AFTER_MS: i64 = 60_000;
/// Longest sleep between passes, so triggers created by any process are picked up soon.
pub const POLL: Duration = Duration::from_secs(5);
/// Most ticks a catch-up looks through to find the newest due one of a cron schedule.
const MAX_CATCH_UP_STEPS: usize = 600_000;

/// The system clock shifted by `HEARTH_FAULT_CLOCK_OFFSET_SECS` (an injected fault for restart
/// tests: a process that "wakes up" hours later without anyone waiting hours).
pub fn clock_from_env() -> Arc<dyn Clock> {
    let offset = std::env::var("HEARTH_FAULT_CLOCK_OFFSET_SECS")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    Arc::new(ShiftedClock {
        offset_ms: offset.saturating_mul(1000),
    })
}

/// [`SystemClock`](crate::queue::SystemClock) plus a fixed offset.
struct ShiftedClock {
    offset_ms: i64,
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> u64 {
        let now = crate::queue::SystemClock.now_ms() as i64;
        now.saturating_add(self.offset_ms).max(0) as u64
    }
}

/// What a pass did with one due tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// Recorded and its event put on the outbox.
    Fired { trigger: String, scheduled_ms: i64 },
    /// A missed tick recorded as skipped (`SKIP`).
    Skipped { trigger: String, scheduled_ms: i64 },
    /// Another scheduler recorded this tick first.
    Lost { trigger: String, scheduled_ms: i64 },
}

/// The result of one pass.
#[derive(Debug, Default)]
pub struct Pass {
    pub outcomes: Vec<TickOutcome>,
    /// The earliest tick still to come, ms since the epoch.
    pub next_due_ms: Option<i64>,
}

/// The trigger scheduler of one tenant.
pub struct Scheduler {
    store: Arc<dyn MetadataStore>,
    clock: Arc<dyn Clock>,
    tenant: String,
    region: String,
    relay: Option<Relay>,
}

impl Scheduler {
    /// A scheduler over `store` for `tenant` (the account) in `region`; `relay`, when given, is
    /// woken after every fired tick so the event reaches the queue at once.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        clock: Arc<dyn Clock>,
        tenant: &str,
        region: &str,
        relay: Option<Relay>,
    ) -> Scheduler {
        Scheduler {
            store,
            clock,
            tenant: tenant.to_owned(),
            region: region.to_owned(),
            relay,
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now_ms()).unwrap_or(i64::MAX)
    }

    /// One pass over every trigger: fires what is due now (blocking store calls).
    pub fn run_once(&self) -> Result<Pass, StoreError> {
        let now = self.now_ms();
        let mut pass = Pass::default();
        for row in self.store.triggers(&self.tenant)? {
            let Some((trigger, schedule)) = decode(&row) else {
                continue;
            };
            let next = self.visit(&row, &trigger, &schedule, now, &mut pass.outcomes);
            if let Some(n) = next {
                pass.next_due_ms = Some(pass.next_due_ms.map_or(n, |m: i64| m.min(n)));
            }
        }
        if let Some(relay) = &self.relay
            && pass
                .outcomes
                .iter()
                .any(|o| matches!(o, TickOutcome::Fired { .. }))
        {
            relay.notify();
        }
        Ok(pass)
    }

    /// Fires the trigger's due tick, if any; returns its next tick after that.
    fn visit(
        &self,
        row: &TriggerRow,
        trigger: &Trigger,
        schedule: &Schedule,
        now: i64,
        outcomes: &mut Vec<TickOutcome>,
    ) -> Option<i64> {
        let base = row.last_tick_ms.unwrap_or(i64::MIN).max(trigger.created_ms);
        let first = schedule.next_after(from_ms(base))?;
        if to_ms(first) > now {
            return Some(to_ms(first));
        }
        let due = newest_due(schedule, first, from_ms(now));
        let due_ms = to_ms(due);
        let late = now - due_ms > LATE_AFTER_MS;
        let fire = !late || trigger.missed_ticks == MissedTicks::FireOnce;
        match self.record(trigger, due, fire, now) {
            Ok(()) => outcomes.push(if fire {
                TickOutcome::Fired {
                    trigger: trigger.name.clone(),
                    scheduled_ms: due_ms,
                }
            } else {
                TickOutcome::Skipped {
                    trigger: trigger.name.clone(),
                    scheduled_ms: due_ms,
                }
            }),
            Err(StoreError::Conflict) => outcomes.push(TickOutcome::Lost {
                trigger: trigger.name.clone(),
                scheduled_ms: due_ms,
            }),
            // Deleted (or re-created) since the read: nothing to fire.
            Err(StoreError::NotFound) => return None,
            Err(e) => {
                tracing::error!(trigger = %trigger.name, error = %e, "recording a tick");
                return Some(due_ms);
            }
        }
        schedule.next_after(due).map(to_ms)
    }

    /// One transaction: the tick record and, when fired, its event on the outbox.
    fn record(
        &self,
        trigger: &Trigger,
        scheduled: OffsetDateTime,
        fire: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let scheduled_ms = to_ms(scheduled);
        let mut ops = vec![Op::TriggerTick {
            name: trigger.name.clone(),
            id: trigger.trigger_id.clone(),
            scheduled_ms,
            fired: fire,
        }];
        if fire {
            let payload = trigger.payload(scheduled, &self.region, &self.tenant);
            let event = trigger.event(&payload, now);
            let payload =
                serde_json::to_vec(&event).map_err(|e| StoreError::Backend(e.to_string()))?;
            ops.push(Op::Outbox {
                topic: events::TOPIC.to_owned(),
                payload,
                dedup_id: trigger.dedup_id(scheduled_ms),
            });
        }
        self.store.transact(&self.tenant, &ops).map(|_| ())
    }

    /// Runs passes until `shutdown` flips to true, sleeping until the next tick is due (at most
    /// [`POLL`]).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let me = self.clone();
            let pass = tokio::task::spawn_blocking(move || me.run_once()).await;
            let next = match pass {
                Ok(Ok(pass)) => {
                    log_outcomes(&pass.outcomes);
                    pass.next_due_ms
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "trigger scheduler pass");
                    None
                }
                Err(e) => {
                    tracing::error!(error = %e, "trigger scheduler task");
                    None
                }
            };
            let wait = next.map_or(POLL, |n| {
                let ms = (n - self.now_ms()).clamp(0, POLL.as_millis() as i64);
                Duration::from_millis(ms as u64)
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

fn log_outcomes(outcomes: &[TickOutcome]) {
    for o in outcomes {
        match o {
            TickOutcome::Fired {
                trigger,
                scheduled_ms,
            } => tracing::info!(%trigger, scheduled_ms, "trigger fired"),
            TickOutcome::Skipped {
                trigger,
                scheduled_ms,
            } => tracing::info!(%trigger, scheduled_ms, "missed trigger tick skipped"),
            TickOutcome::Lost {
                trigger,
                scheduled_ms,
            } => tracing::debug!(%trigger, scheduled_ms, "tick fired by another scheduler"),
        }
    }
}

/// The stored trigger and its schedule; a record that does not decode is logged and left out.
fn decode(row: &TriggerRow) -> Option<(Trigger, Schedule)> {
    let trigger: Trigger = serde_json::from_str(&row.json)
        .map_err(|e| tracing::error!(trigger = %row.name, error = %e, "stored trigger"))
        .ok()?;
    let schedule = trigger
        .schedule()
        .map_err(|e| tracing::error!(trigger = %row.name, error = %e, "stored schedule"))
        .ok()?;
    Some((trigger, schedule))
}

/// The newest tick at or before `now`, given that `first` is one.
fn newest_due(schedule: &Schedule, first: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
    if let Some(period) = schedule.rate_period() {
        // Rate ticks are a grid: the one before the first tick after now.
        return schedule
            .next_after(now)
            .map(|n| n - period)
            .filter(|t| *t >= first)
            .unwrap_or(first);
    }
    let mut due = first;
    for _ in 0..MAX_CATCH_UP_STEPS {
        match schedule.next_after(due) {
            Some(n) if n <= now => due = n,
            _ => break,
        }
    }
    due
}

#[cfg(test)]
mod tests;
