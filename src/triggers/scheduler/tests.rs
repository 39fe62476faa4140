use super::*;
use crate::events::AsyncEvent;
use crate::queue::sqlite::SqliteQueue;
use crate::queue::{ConsumerConfig, ManualClock, Queue};
use crate::store::TriggerStore;
use crate::store::sqlite::SqliteStore;
use crate::triggers::{Trigger, trigger_arn};
use base64::Engine;
use serde_json::Value;
use time::macros::datetime;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";

struct Fixture {
    _dir: tempfile::TempDir,
    meta: std::path::PathBuf,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    queue: Arc<dyn Queue>,
    relay: Relay,
}

fn fixture(now: OffsetDateTime) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta.sqlite");
    let store = Arc::new(SqliteStore::open(&meta).unwrap());
    let queue: Arc<dyn Queue> =
        Arc::new(SqliteQueue::open(&dir.path().join("queue.sqlite")).unwrap());
    let relay = Relay::open(&meta, queue.clone(), Duration::from_millis(100)).unwrap();
    Fixture {
        clock: Arc::new(ManualClock::new(to_ms(now) as u64)),
        _dir: dir,
        meta,
        store,
        queue,
        relay,
    }
}

impl Fixture {
    fn scheduler(&self) -> Scheduler {
        Scheduler::new(
            self.store.clone(),
            self.clock.clone(),
            ACCOUNT,
            REGION,
            None,
        )
    }

    /// A second scheduler with its own connection to the same database (another process).
    fn other_scheduler(&self) -> Scheduler {
        let store = Arc::new(SqliteStore::open(&self.meta).unwrap());
        Scheduler::new(store, self.clock.clone(), ACCOUNT, REGION, None)
    }

    fn set(&self, t: OffsetDateTime) {
        let now = self.clock.now_ms() as i64;
        assert!(to_ms(t) >= now, "the clock only moves forward");
        self.clock
            .advance(Duration::from_millis((to_ms(t) - now) as u64));
    }

    fn create(&self, name: &str, expr: &str, missed: MissedTicks, input: Option<&str>) {
        let created = from_ms(self.clock.now_ms() as i64);
        let t = Trigger {
            name: name.into(),
            trigger_arn: trigger_arn(REGION, ACCOUNT, name),
            trigger_id: uuid::Uuid::new_v4().to_string(),
            function_name: "f".into(),
            qualifier: Some("live".into()),
            schedule_expression: expr.into(),
            input: input.map(str::to_owned),
            missed_ticks: missed,
            creation_time: created.to_string(),
            created_ms: to_ms(created),
        };
        let op = Op::PutTrigger {
            name: name.into(),
            id: t.trigger_id.clone(),
            json: Some(serde_json::to_string(&t).unwrap()),
        };
        self.store.transact(ACCOUNT, &[op]).unwrap();
    }

    fn delete(&self, name: &str) {
        let op = Op::PutTrigger {
            name: name.into(),
            id: String::new(),
            json: None,
        };
        self.store.transact(ACCOUNT, &[op]).unwrap();
    }

    /// Every event published on the events topic so far.
    fn events(&self) -> Vec<(AsyncEvent, Option<String>)> {
        self.relay.drain().unwrap();
        let msgs = self
            .queue
            .pull(events::TOPIC, "test", 1000, &ConsumerConfig::default())
            .unwrap();
        for m in &msgs {
            self.queue.ack(events::TOPIC, "test", m.seq).unwrap();
        }
        msgs.iter()
            .map(|m| {
                (
                    serde_json::from_slice(&m.payload).unwrap(),
                    m.dedup_id.clone(),
                )
            })
            .collect()
    }
}

fn fired(name: &str, at: OffsetDateTime) -> TickOutcome {
    TickOutcome::Fired {
        trigger: name.into(),
        scheduled_ms: to_ms(at),
    }
}

fn payload(e: &AsyncEvent) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&e.payload_b64)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn rate_ticks_fire_at_their_times_counted_from_creation() {
    let f = fixture(datetime!(2026-11-27 12:01:30 UTC));
    f.create("every5", "rate(5 minutes)", MissedTicks::FireOnce, None);
    let s = f.scheduler();
    f.set(datetime!(2026-11-27 12:03 UTC));
    let pass = s.run_once().unwrap();
    assert!(pass.outcomes.is_empty());
    assert_eq!(
        pass.next_due_ms,
        Some(to_ms(datetime!(2026-11-27 12:06 UTC)))
    );
    f.set(datetime!(2026-11-27 12:06 UTC));
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [fired("every5", datetime!(2026-11-27 12:06 UTC))]
    );
    f.set(datetime!(2026-11-27 12:06:40 UTC));
    assert!(s.run_once().unwrap().outcomes.is_empty());
    f.set(datetime!(2026-11-27 12:11:02 UTC));
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [fired("every5", datetime!(2026-11-27 12:11 UTC))]
    );

    let events = f.events();
    assert_eq!(events.len(), 2);
    let (e, dedup) = &events[0];
    assert_eq!(e.function_name, "f");
    assert_eq!(e.qualifier.as_deref(), Some("live"));
    assert_eq!(e.source.as_deref(), Some("trigger:every5"));
    assert!(uuid::Uuid::parse_str(&e.request_id).is_ok());
    assert_ne!(e.request_id, events[1].0.request_id);
    assert!(dedup.as_deref().unwrap().starts_with("trigger:every5:"));
    let p = payload(e);
    assert_eq!(p["version"], "0");
    assert_eq!(p["detail-type"], "Scheduled Event");
    assert_eq!(p["source"], "aws.events");
    assert_eq!(p["account"], ACCOUNT);
    assert_eq!(p["region"], REGION);
    assert_eq!(p["time"], "2026-11-27T12:06:00Z");
    assert_eq!(
        p["resources"],
        serde_json::json!(["arn:aws:events:us-east-1:000000000000:rule/every5"])
    );
    assert_eq!(p["detail"], serde_json::json!({}));
    assert!(uuid::Uuid::parse_str(p["id"].as_str().unwrap()).is_ok());
    assert_eq!(payload(&events[1].0)["time"], "2026-11-27T12:11:00Z");
}

#[test]
fn cron_ticks_and_constant_input() {
    let f = fixture(datetime!(2026-11-27 11:59:59 UTC));
    f.create(
        "noon",
        "cron(0 12 * * ? *)",
        MissedTicks::Skip,
        Some(r#"{"job":"report"}"#),
    );
    let s = f.scheduler();
    assert!(s.run_once().unwrap().outcomes.is_empty());
    f.set(datetime!(2026-11-27 12:00:00.5 UTC));
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [fired("noon", datetime!(2026-11-27 12:00 UTC))]
    );
    let pass = s.run_once().unwrap();
    assert!(pass.outcomes.is_empty());
    assert_eq!(
        pass.next_due_ms,
        Some(to_ms(datetime!(2026-11-28 12:00 UTC)))
    );
    let events = f.events();
    assert_eq!(payload(&events[0].0), serde_json::json!({"job": "report"}));
}

#[test]
fn a_tick_fires_once_with_two_schedulers_on_the_same_store() {
    let f = fixture(datetime!(2026-11-27 12:00:10 UTC));
    f.create("a", "rate(1 minute)", MissedTicks::FireOnce, None);
    f.create("b", "cron(0/2 * * * ? *)", MissedTicks::FireOnce, None);
    let (s1, s2) = (Arc::new(f.scheduler()), Arc::new(f.other_scheduler()));
    let mut fired_count = 0;
    let mut lost = 0;
    for minute in 1..=20 {
        f.set(datetime!(2026-11-27 12:00 UTC) + time::Duration::minutes(minute));
        // Both race for the same ticks from two threads.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let run = |s: &Arc<Scheduler>| {
            let (s, b) = (s.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                s.run_once().unwrap().outcomes
            })
        };
        let (h1, h2) = (run(&s1), run(&s2));
        for o in h1.join().unwrap().into_iter().chain(h2.join().unwrap()) {
            match o {
                TickOutcome::Fired { .. } => fired_count += 1,
                TickOutcome::Lost { .. } => lost += 1,
                TickOutcome::Skipped { .. } => panic!("nothing is late"),
            }
        }
    }
    // 20 ticks of `a`, 10 of `b`.
    assert_eq!(fired_count, 30);
    let events = f.events();
    assert_eq!(events.len(), 30);
    let mut ids: Vec<_> = events.iter().map(|(_, d)| d.clone().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "one event per (trigger, time)");
    // Not asserted: how often the two actually overlapped (`lost`), which is timing.
    let _ = lost;
}

#[test]
fn missed_ticks_fire_once_after_a_gap() {
    let f = fixture(datetime!(2026-11-27 10:30 UTC));
    f.create("hourly", "cron(0 * * * ? *)", MissedTicks::FireOnce, None);
    let s = f.scheduler();
    f.set(datetime!(2026-11-27 11:00 UTC));
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [fired("hourly", datetime!(2026-11-27 11:00 UTC))]
    );
    // Down from 11:00 to 15:20: the 12:00–15:00 ticks were missed; only 15:00 fires, once.
    f.set(datetime!(2026-11-27 15:20 UTC));
    let s = f.other_scheduler();
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [fired("hourly", datetime!(2026-11-27 15:00 UTC))]
    );
    assert!(s.run_once().unwrap().outcomes.is_empty());
    f.set(datetime!(2026-11-27 16:00 UTC));
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [fired("hourly", datetime!(2026-11-27 16:00 UTC))]
    );
    let times: Vec<Value> = f
        .events()
        .iter()
        .map(|(e, _)| payload(e)["time"].clone())
        .collect();
    assert_eq!(
        times,
        [
            "2026-11-27T11:00:00Z",
            "2026-11-27T15:00:00Z",
            "2026-11-27T16:00:00Z"
        ]
    );
}

#[test]
fn missed_ticks_are_skipped_when_asked() {
    let f = fixture(datetime!(2026-11-27 10:30 UTC));
    f.create("hourly", "rate(1 hour)", MissedTicks::Skip, None);
    let s = f.scheduler();
    // Ticks are 11:30, 12:30, … (a rate counts from creation).
    f.set(datetime!(2026-11-27 15:45 UTC));
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [TickOutcome::Skipped {
            trigger: "hourly".into(),
            scheduled_ms: to_ms(datetime!(2026-11-27 15:30 UTC))
        }]
    );
    assert!(s.run_once().unwrap().outcomes.is_empty());
    f.set(datetime!(2026-11-27 16:30:05 UTC));
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [fired("hourly", datetime!(2026-11-27 16:30 UTC))]
    );
    let events = f.events();
    assert_eq!(events.len(), 1);
    assert_eq!(payload(&events[0].0)["time"], "2026-11-27T16:30:00Z");
}

#[test]
fn a_late_tick_within_the_grace_still_fires_in_skip_mode() {
    let f = fixture(datetime!(2026-11-27 10:30 UTC));
    f.create("m", "cron(* * * * ? *)", MissedTicks::Skip, None);
    f.set(datetime!(2026-11-27 10:31:30 UTC));
    assert_eq!(
        f.scheduler().run_once().unwrap().outcomes,
        [fired("m", datetime!(2026-11-27 10:31 UTC))]
    );
}

#[test]
fn deleted_triggers_do_not_fire_and_ticks_before_creation_never_do() {
    let f = fixture(datetime!(2026-11-27 12:00:30 UTC));
    f.create("x", "cron(0 12 * * ? *)", MissedTicks::FireOnce, None);
    let s = f.scheduler();
    f.set(datetime!(2026-11-27 12:05 UTC));
    assert!(
        s.run_once().unwrap().outcomes.is_empty(),
        "12:00 was before creation"
    );
    f.delete("x");
    f.set(datetime!(2026-11-28 12:00 UTC));
    assert!(s.run_once().unwrap().outcomes.is_empty());
    assert!(f.events().is_empty());
}

#[test]
fn schedules_that_ended_are_left_alone() {
    let f = fixture(datetime!(2026-11-27 12:00:30 UTC));
    f.create("y", "cron(0 12 * * ? 2026)", MissedTicks::FireOnce, None);
    f.set(datetime!(2027-01-05 00:00 UTC));
    let s = f.scheduler();
    // The 2026-12-31 tick is the newest due one: it fires once, then nothing is left.
    assert_eq!(
        s.run_once().unwrap().outcomes,
        [fired("y", datetime!(2026-12-31 12:00 UTC))]
    );
    let pass = s.run_once().unwrap();
    assert!(pass.outcomes.is_empty());
    assert_eq!(pass.next_due_ms, None);
}

#[test]
fn tick_records_are_unique_and_in_order() {
    let f = fixture(datetime!(2026-11-27 12:00 UTC));
    f.create("t", "rate(1 minute)", MissedTicks::FireOnce, None);
    let id = f.store.triggers(ACCOUNT).unwrap()[0].id.clone();
    let tick = |ms: i64| Op::TriggerTick {
        name: "t".into(),
        id: id.clone(),
        scheduled_ms: ms,
        fired: true,
    };
    f.store.transact(ACCOUNT, &[tick(120_000)]).unwrap();
    for stale in [120_000, 60_000] {
        assert!(matches!(
            f.store.transact(ACCOUNT, &[tick(stale)]),
            Err(StoreError::Conflict)
        ));
    }
    let wrong_id = Op::TriggerTick {
        name: "t".into(),
        id: "other".into(),
        scheduled_ms: 180_000,
        fired: true,
    };
    assert!(matches!(
        f.store.transact(ACCOUNT, &[wrong_id]),
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        f.store.triggers(ACCOUNT).unwrap()[0].last_tick_ms,
        Some(120_000)
    );
}
