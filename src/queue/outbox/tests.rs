use super::{Relay, create_table, enqueue};
use crate::queue::sqlite::SqliteQueue;
use crate::queue::{ConsumerConfig, ManualClock, Message, Queue, QueueConfig, pull_wait};
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
