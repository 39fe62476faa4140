use super::SqliteQueue;
use crate::queue::{
    ConsumerConfig, ManualClock, Message, Origin, Queue, QueueConfig, QueueError, pull_wait,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const T: &str = "invoke";
const C: &str = "workers";
const START_MS: u64 = 1_700_000_000_000;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn open_at(path: &Path, clock: &Arc<ManualClock>, config: QueueConfig) -> SqliteQueue {
    SqliteQueue::open_with(path, config, clock.clone()).unwrap()
}

fn setup() -> (tempfile::TempDir, Arc<ManualClock>, SqliteQueue) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let q = open_at(
        &dir.path().join("queue.sqlite"),
        &clock,
        QueueConfig::default(),
    );
    (dir, clock, q)
}

fn pull(q: &SqliteQueue, max: usize) -> Vec<Message> {
    q.pull(T, C, max, &ConsumerConfig::default()).unwrap()
}

fn seqs(ms: &[Message]) -> Vec<u64> {
    ms.iter().map(|m| m.seq).collect()
}

#[test]
fn publish_pull_ack() {
    let (_d, _c, q) = setup();
    for p in [b"a", b"b", b"c"] {
        q.publish(T, p, None).unwrap();
    }
    let first = pull(&q, 2);
    assert_eq!(seqs(&first), [1, 2]);
    assert_eq!(first[0].payload, b"a");
    assert_eq!((first[0].deliveries, first[0].published_ms), (1, START_MS));
    assert_eq!(first[0].topic, T);
    assert_eq!(seqs(&pull(&q, 10)), [3]);
    assert!(
        pull(&q, 10).is_empty(),
        "leased messages are not delivered twice"
    );
    assert_eq!(q.pending(T, C).unwrap(), 3);
    for s in 1..=3 {
        q.ack(T, C, s).unwrap();
    }
    q.ack(T, C, 2).unwrap(); // idempotent
    assert_eq!(q.pending(T, C).unwrap(), 0);
    assert!(pull(&q, 10).is_empty());
}

#[test]
fn lease_expiry_redelivers() {
    let (_d, clock, q) = setup();
    q.publish(T, b"x", None).unwrap();
    assert_eq!(pull(&q, 1)[0].deliveries, 1);
    clock.advance(secs(29));
    assert!(pull(&q, 1).is_empty());
    clock.advance(secs(1));
    let again = pull(&q, 1);
    assert_eq!((again[0].seq, again[0].deliveries), (1, 2));
}

#[test]
fn nak_with_delay() {
    let (_d, clock, q) = setup();
    q.publish(T, b"x", None).unwrap();
    pull(&q, 1);
    q.nak(T, C, 1, secs(10)).unwrap();
    clock.advance(secs(9));
    assert!(pull(&q, 1).is_empty());
    clock.advance(secs(1));
    assert_eq!(pull(&q, 1)[0].deliveries, 2);
    q.nak(T, C, 1, Duration::ZERO).unwrap();
    assert_eq!(
        pull(&q, 1)[0].deliveries,
        3,
        "nak without delay is visible at once"
    );
}

#[test]
fn in_progress_extends_the_lease() {
    let (_d, clock, q) = setup();
    q.publish(T, b"x", None).unwrap();
    pull(&q, 1);
    clock.advance(secs(20));
    q.in_progress(T, C, 1, secs(30)).unwrap();
    clock.advance(secs(29));
    assert!(
        pull(&q, 1).is_empty(),
        "lease now ends 30 s after in_progress"
    );
    clock.advance(secs(1));
    assert_eq!(pull(&q, 1)[0].deliveries, 2);
}

#[test]
fn in_progress_does_not_hide_undelivered_messages() {
    let (_d, _clock, q) = setup();
    q.publish(T, b"x", None).unwrap();
    q.in_progress(T, C, 1, secs(30)).unwrap();
    assert_eq!(seqs(&pull(&q, 1)), [1]);
}

#[test]
fn term_stops_delivery() {
    let (_d, clock, q) = setup();
    q.publish(T, b"x", None).unwrap();
    q.publish(T, b"y", None).unwrap();
    pull(&q, 1);
    q.term(T, C, 1).unwrap();
    q.nak(T, C, 1, Duration::ZERO).unwrap(); // no effect once termed
    clock.advance(secs(60));
    assert_eq!(seqs(&pull(&q, 10)), [2]);
    assert_eq!(q.pending(T, C).unwrap(), 1);
}

#[test]
fn max_deliveries_moves_to_the_dead_letter_topic() {
    let (_d, clock, q) = setup();
    let cfg = ConsumerConfig {
        max_deliveries: 2,
        ..ConsumerConfig::default()
    };
    q.publish(T, b"poison", Some("p-1")).unwrap();
    q.publish(T, b"fine", None).unwrap();
    let dlq_watch = q.subscribe("invoke.dlq");
    for want in [1, 2] {
        let got = q.pull(T, C, 1, &cfg).unwrap();
        assert_eq!((got[0].seq, got[0].deliveries), (1, want));
        clock.advance(secs(30));
    }
    let got = q.pull(T, C, 1, &cfg).unwrap();
    assert_eq!(
        seqs(&got),
        [2],
        "the poison message is skipped, the batch still filled"
    );
    assert_eq!(q.pending(T, C).unwrap(), 1);
    assert!(dlq_watch.has_changed().unwrap());

    let dead = q.pull("invoke.dlq", "ops", 10, &cfg).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload, b"poison");
    assert_eq!(dead[0].dedup_id, None);
    let origin = Origin {
        topic: T.into(),
        seq: 1,
        consumer: C.into(),
        deliveries: 2,
    };
    assert_eq!(dead[0].origin, Some(origin));
}

#[test]
fn nak_counts_toward_max_deliveries_and_custom_dead_letter_topic() {
    let (_d, _clock, q) = setup();
    let cfg = ConsumerConfig {
        max_deliveries: 1,
        dead_letter_topic: Some("graveyard".into()),
        ..ConsumerConfig::default()
    };
    q.publish(T, b"x", None).unwrap();
    q.pull(T, C, 1, &cfg).unwrap();
    q.nak(T, C, 1, Duration::ZERO).unwrap();
    assert!(q.pull(T, C, 1, &cfg).unwrap().is_empty());
    let dead = q
        .pull("graveyard", C, 1, &ConsumerConfig::default())
        .unwrap();
    assert_eq!(dead[0].origin.as_ref().map(|o| o.seq), Some(1));
}

#[test]
fn dedup_within_the_window() {
    let (_d, clock, q) = setup();
    assert_eq!(q.publish(T, b"one", Some("k")).unwrap(), 1);
    clock.advance(secs(119));
    assert_eq!(q.publish(T, b"two", Some("k")).unwrap(), 1, "duplicate");
    assert_eq!(q.publish("other", b"x", Some("k")).unwrap(), 1, "per topic");
    assert_eq!(
        q.pending(T, C).unwrap(),
        1,
        "nothing stored for the duplicate"
    );
    clock.advance(secs(1));
    assert_eq!(
        q.publish(T, b"three", Some("k")).unwrap(),
        2,
        "window passed"
    );
    let got = pull(&q, 10);
    assert_eq!(got[0].dedup_id.as_deref(), Some("k"));
    assert_eq!(got[1].payload, b"three");
}

#[test]
fn consumers_are_independent() {
    let (_d, _clock, q) = setup();
    q.publish(T, b"a", None).unwrap();
    q.publish(T, b"b", None).unwrap();
    let cfg = ConsumerConfig::default();
    let first = q.pull(T, "one", 10, &cfg).unwrap();
    for m in &first {
        q.ack(T, "one", m.seq).unwrap();
    }
    assert_eq!(seqs(&q.pull(T, "two", 10, &cfg).unwrap()), [1, 2]);
    assert_eq!(q.pending(T, "one").unwrap(), 0);
    assert_eq!(q.pending(T, "two").unwrap(), 2);
}

#[test]
fn new_consumer_starts_at_oldest_stored_message() {
    let (_d, _clock, q) = setup();
    q.publish(T, b"a", None).unwrap();
    q.publish(T, b"b", None).unwrap();
    assert_eq!(q.trim(T).unwrap(), 0, "no consumer yet: nothing trimmed");
    for m in pull(&q, 10) {
        q.ack(T, C, m.seq).unwrap();
    }
    assert_eq!(q.trim(T).unwrap(), 2);
    q.publish(T, b"c", None).unwrap();
    let late = q.pull(T, "late", 10, &ConsumerConfig::default()).unwrap();
    assert_eq!(seqs(&late), [3]);
}

#[test]
fn trim_keeps_what_any_consumer_still_needs() {
    let (_d, _clock, q) = setup();
    for _ in 0..3 {
        q.publish(T, b"m", None).unwrap();
    }
    let cfg = ConsumerConfig::default();
    q.pull(T, "slow", 10, &cfg).unwrap();
    pull(&q, 10);
    q.ack(T, C, 2).unwrap();
    q.ack(T, C, 1).unwrap();
    q.ack(T, "slow", 1).unwrap();
    q.ack(T, "slow", 3).unwrap(); // out of order: floor stays at 1
    assert_eq!(q.trim(T).unwrap(), 1);
    assert_eq!(q.pending(T, "slow").unwrap(), 1);
    assert_eq!(q.pending(T, C).unwrap(), 1);
    assert_eq!(
        q.publish(T, b"m", None).unwrap(),
        4,
        "sequences are never reused"
    );
}

#[test]
fn trim_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MS));
    let config = QueueConfig {
        max_age: Some(secs(60)),
        ..QueueConfig::default()
    };
    let q = open_at(&dir.path().join("q.sqlite"), &clock, config);
    q.publish(T, b"old", None).unwrap();
    pull(&q, 1);
    clock.advance(secs(61));
    q.publish(T, b"new", None).unwrap();
    assert_eq!(q.trim(T).unwrap(), 1);
    clock.advance(secs(30));
    assert_eq!(seqs(&pull(&q, 10)), [2]);
}

#[test]
fn unacked_messages_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.sqlite");
    let clock = Arc::new(ManualClock::new(START_MS));
    {
        let q = open_at(&path, &clock, QueueConfig::default());
        for _ in 0..3 {
            q.publish(T, b"m", Some("d")).unwrap();
            q.publish(T, b"m", None).unwrap();
        }
        pull(&q, 10);
        q.ack(T, C, 1).unwrap();
        std::mem::forget(q); // never closed or checkpointed, as after a kill
    }
    let q = open_at(&path, &clock, QueueConfig::default());
    assert!(pull(&q, 10).is_empty(), "leases survive too");
    clock.advance(secs(30));
    let again = pull(&q, 10);
    assert_eq!(seqs(&again), [2, 3, 4]);
    assert!(again.iter().all(|m| m.deliveries == 2));
    assert_eq!(
        q.publish(T, b"m", Some("d")).unwrap(),
        1,
        "dedup ids survive"
    );
    assert_eq!(q.publish(T, b"m", None).unwrap(), 5);
}

#[test]
fn concurrent_pulls_never_lease_a_message_twice() {
    let (_d, _clock, q) = setup();
    for _ in 0..200 {
        q.publish(T, b"m", None).unwrap();
    }
    let q = Arc::new(q);
    let worker = |q: Arc<SqliteQueue>| {
        std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                let batch = pull(&q, 7);
                if batch.is_empty() {
                    return got;
                }
                for m in batch {
                    q.ack(T, C, m.seq).unwrap();
                    got.push(m.seq);
                }
            }
        })
    };
    let (a, b) = (worker(q.clone()), worker(q.clone()));
    let mut all = a.join().unwrap();
    all.extend(b.join().unwrap());
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "no message leased twice");
    assert_eq!(unique, (1..=200).collect());
}

#[test]
fn errors_say_which_side() {
    let (_d, _clock, q) = setup();
    q.publish(T, b"m", None).unwrap();
    assert!(matches!(
        q.ack(T, C, 9),
        Err(QueueError::NoMessage { seq: 9, .. })
    ));
    assert!(matches!(
        q.publish("a b", b"", None),
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        q.pull(T, "a.b", 1, &ConsumerConfig::default()),
        Err(QueueError::Invalid(_))
    ));
    let own = ConsumerConfig {
        dead_letter_topic: Some(T.into()),
        ..ConsumerConfig::default()
    };
    assert!(matches!(q.pull(T, C, 1, &own), Err(QueueError::Invalid(_))));
    let e = q.ack(T, C, 9).unwrap_err();
    assert!(!e.retry_safe());
}

#[test]
fn subscribe_sees_publishes() {
    let (_d, _clock, q) = setup();
    let mut w = q.subscribe(T);
    assert!(!w.has_changed().unwrap());
    q.publish(T, b"m", Some("x")).unwrap();
    assert!(w.has_changed().unwrap());
    w.borrow_and_update();
    q.publish(T, b"m", Some("x")).unwrap();
    assert!(!w.has_changed().unwrap(), "a duplicate is not news");
}

#[tokio::test]
async fn pull_wait_wakes_on_publish() {
    let (_d, _clock, q) = setup();
    let q: Arc<dyn Queue> = Arc::new(q);
    let cfg = ConsumerConfig::default();
    let empty = pull_wait(&q, T, C, 10, &cfg, Duration::from_millis(20)).await;
    assert!(empty.unwrap().is_empty());
    let publisher = q.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        publisher.publish(T, b"late", None).unwrap();
    });
    let got = pull_wait(&q, T, C, 10, &cfg, secs(30)).await.unwrap();
    assert_eq!(got[0].payload, b"late");
}

#[test]
fn durable_settings() {
    let (_d, _clock, q) = setup();
    let conn = q.conn.lock().unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (mode.as_str(), sync),
        ("wal", 2),
        "WAL with synchronous = FULL"
    );
}

const CHILD_ENV: &str = "HEARTH_QUEUE_KILL_TEST_DB";

/// The publisher that `killed_publisher_loses_nothing` runs in a child process and kills.
#[test]
#[ignore = "child process of killed_publisher_loses_nothing"]
fn publisher_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let q = SqliteQueue::open(Path::new(&path)).unwrap();
    for i in 0u64.. {
        let seq = q.publish(T, format!("m{i}").as_bytes(), None).unwrap();
        println!("accepted {seq} m{i}");
    }
}

#[test]
fn killed_publisher_loses_nothing() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "queue::sqlite::tests::publisher_child"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let accepted: Vec<String> = lines
        .map(Result::unwrap)
        .filter_map(|l| l.strip_prefix("accepted ").map(str::to_owned))
        .take(50)
        .collect();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let q = SqliteQueue::open(&path).unwrap();
    let stored = pull(&q, 100_000);
    for line in &accepted {
        let (seq, payload) = line.split_once(' ').unwrap();
        let m = &stored[seq.parse::<usize>().unwrap() - 1];
        assert_eq!(m.payload, payload.as_bytes());
    }
    assert!(stored.len() >= accepted.len());
}

#[test]
fn read_is_non_destructive() {
    let (_dir, _clock, q) = setup();
    for i in 0..3u8 {
        q.publish(T, &[i], None).unwrap();
    }
    let all = q.read(T, 0, 10).unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(q.read(T, 1, 1).unwrap()[0].payload, [1]);
    // Reading leases nothing: a consumer still gets every message.
    assert_eq!(
        q.pull(T, C, 10, &ConsumerConfig::default()).unwrap().len(),
        3
    );
    assert_eq!(q.read(T, 0, 10).unwrap().len(), 3);
    assert!(q.read("a b", 0, 1).is_err());
}
