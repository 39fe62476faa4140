use super::{Relay, create_table, enqueue};
use crate::queue::sqlite::SqliteQueue;
use crate::queue::{
    ConsumerConfig, ManualClock, Message, Queue, QueueConfig, QueueError, Result, pull_wait,
};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const T: &str = "workflow";
const C: &str = "engine";

struct Fixture {
    _dir: tempfile::TempDir,
    meta: Connection,
    meta_path: PathBuf,
    queue: Arc<dyn Queue>,
}

/// A metadata database (with a stand-in state table) and a queue in separate files.
fn setup() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta_path = dir.path().join("meta.sqlite");
    let meta = Connection::open(&meta_path).unwrap();
    meta.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE state (k TEXT PRIMARY KEY, v TEXT);",
    )
    .unwrap();
    create_table(&meta).unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let q = SqliteQueue::open_with(
        &dir.path().join("queue.sqlite"),
        QueueConfig::default(),
        clock,
    );
    Fixture {
        _dir: dir,
        meta,
        meta_path,
        queue: Arc::new(q.unwrap()),
    }
}

fn relay(meta_path: &Path, queue: &Arc<dyn Queue>) -> Relay {
    Relay::open(meta_path, queue.clone(), Duration::from_secs(3600)).unwrap()
}

/// Changes state and enqueues the message it causes in one transaction.
fn change(meta: &mut Connection, k: &str, commit: bool) {
    let tx = meta.transaction().unwrap();
    tx.execute("INSERT OR REPLACE INTO state (k, v) VALUES (?1, 'x')", [k])
        .unwrap();
    enqueue(&tx, T, k.as_bytes(), None).unwrap();
    if commit {
        tx.commit().unwrap();
    } // else dropped: rolled back
}

fn everything(q: &Arc<dyn Queue>) -> Vec<Message> {
    q.pull(T, C, 100, &ConsumerConfig::default()).unwrap()
}

fn payloads(ms: &[Message]) -> Vec<&[u8]> {
    ms.iter().map(|m| m.payload.as_slice()).collect()
}

#[test]
fn rolled_back_transaction_publishes_nothing() {
    let mut f = setup();
    change(&mut f.meta, "a", false);
    assert_eq!(relay(&f.meta_path, &f.queue).drain().unwrap(), 0);
    assert!(everything(&f.queue).is_empty());
}

#[test]
fn committed_rows_are_published_in_order_and_deleted() {
    let mut f = setup();
    for k in ["a", "b", "c"] {
        change(&mut f.meta, k, true);
    }
    let r = relay(&f.meta_path, &f.queue);
    assert_eq!(r.drain().unwrap(), 3);
    assert!(r.fetch(10).unwrap().is_empty());
    let got = everything(&f.queue);
    assert_eq!(payloads(&got), [b"a", b"b", b"c"]);
    assert_eq!(got[0].dedup_id.as_deref(), Some("outbox-1"));
}

#[test]
fn crash_between_publish_and_delete_publishes_once() {
    let mut f = setup();
    change(&mut f.meta, "a", true);
    change(&mut f.meta, "b", true);
    {
        let crashed = relay(&f.meta_path, &f.queue);
        let rows = crashed.fetch(10).unwrap();
        crashed.publish_row(&rows[0]).unwrap();
        crashed.publish_row(&rows[1]).unwrap();
    } // "crash": the rows were never deleted
    assert_eq!(relay(&f.meta_path, &f.queue).drain().unwrap(), 2);
    assert_eq!(payloads(&everything(&f.queue)), [b"a", b"b"]);
}

#[test]
fn ids_are_not_reused_after_delete() {
    let mut f = setup();
    let r = relay(&f.meta_path, &f.queue);
    change(&mut f.meta, "a", true);
    r.drain().unwrap();
    change(&mut f.meta, "b", true);
    r.drain().unwrap();
    assert_eq!(payloads(&everything(&f.queue)), [b"a", b"b"]);
}

#[test]
fn own_dedup_id_is_used() {
    let f = setup();
    let mut meta = f.meta;
    for _ in 0..2 {
        let tx = meta.transaction().unwrap();
        enqueue(&tx, T, b"step", Some("wf-1/step-2")).unwrap();
        tx.commit().unwrap();
    }
    relay(&f.meta_path, &f.queue).drain().unwrap();
    let got = everything(&f.queue);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].dedup_id.as_deref(), Some("wf-1/step-2"));
}

#[tokio::test]
async fn running_relay_publishes_on_notify() {
    let mut f = setup();
    let r = relay(&f.meta_path, &f.queue);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(r.clone().run(async {
        let _ = stopped.await;
    }));
    change(&mut f.meta, "a", true);
    r.notify();
    let cfg = ConsumerConfig::default();
    let got = pull_wait(&f.queue, T, C, 10, &cfg, Duration::from_secs(30)).await;
    assert_eq!(payloads(&got.unwrap()), [b"a"]);
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// A queue whose publishes to topic `down` fail, as a backend outage would.
struct Flaky(Arc<dyn Queue>);

impl Queue for Flaky {
    fn publish(&self, topic: &str, payload: &[u8], dedup_id: Option<&str>) -> Result<u64> {
        if topic == "down" {
            return Err(QueueError::Backend("unreachable".into()));
        }
        self.0.publish(topic, payload, dedup_id)
    }
    fn pull(&self, t: &str, c: &str, max: usize, cfg: &ConsumerConfig) -> Result<Vec<Message>> {
        self.0.pull(t, c, max, cfg)
    }
    fn ack(&self, t: &str, c: &str, seq: u64) -> Result<()> {
        self.0.ack(t, c, seq)
    }
    fn nak(&self, t: &str, c: &str, seq: u64, delay: Duration) -> Result<()> {
        self.0.nak(t, c, seq, delay)
    }
    fn in_progress(&self, t: &str, c: &str, seq: u64, extend: Duration) -> Result<()> {
        self.0.in_progress(t, c, seq, extend)
    }
    fn term(&self, t: &str, c: &str, seq: u64) -> Result<()> {
        self.0.term(t, c, seq)
    }
    fn pending(&self, t: &str, c: &str) -> Result<u64> {
        self.0.pending(t, c)
    }
    fn trim(&self, t: &str) -> Result<u64> {
        self.0.trim(t)
    }
    fn subscribe(&self, t: &str) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe(t)
    }
}

#[test]
fn failed_publish_stops_the_batch_and_keeps_order() {
    let mut f = setup();
    let flaky: Arc<dyn Queue> = Arc::new(Flaky(f.queue.clone()));
    let tx = f.meta.transaction().unwrap();
    for topic in [T, "down", T] {
        enqueue(&tx, topic, topic.as_bytes(), None).unwrap();
    }
    tx.commit().unwrap();
    let r = relay(&f.meta_path, &flaky);
    let err = r.relay_once().unwrap_err();
    assert!(err.retry_safe());
    let left: Vec<i64> = r.fetch(10).unwrap().iter().map(|row| row.id).collect();
    assert_eq!(
        left,
        [2, 3],
        "published row deleted, the rest kept in order"
    );
    assert_eq!(everything(&f.queue).len(), 1);
}
