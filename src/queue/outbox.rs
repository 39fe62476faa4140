//! The transactional outbox (DESIGN.md "Queue"): a state change in the metadata store and the
//! messages it causes commit in one transaction, as rows of an `outbox` table in the *metadata*
//! database; a [`Relay`] publishes the rows to the [`Queue`] in id order and deletes them. So the
//! queue never has to share the metadata database, and nothing is published for a transaction
//! that rolls back.
//!
//! Delivery is at least once and, within the queue's dedup window, exactly once: each row is
//! published with its own dedup id or `outbox-<id>`, and deleted only after the publish, so a
//! crash in between republishes the row and the queue drops the duplicate. (A relay that stays
//! down for longer than the dedup window after such a crash publishes a duplicate.)
//!
//! Order: SQLite commits one writer at a time, so ids are visible in commit order. A backend with
//! concurrent writers (PostgreSQL) must not rely on a sequence for this (DESIGN.md "Change feed").

use super::{Queue, QueueError, Result};
use rusqlite::{Connection, Transaction, params};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// `AUTOINCREMENT` so an id is never reused after the rows are deleted: a reused id would give
/// a new message the dedup id of an old one.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
    dedup_id TEXT);
";

/// Rows published per batch; each batch is deleted with one statement.
const BATCH: usize = 256;

/// How long a write waits for the metadata store's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the outbox table (call from the metadata store's schema setup).
pub fn create_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// Adds a message to the outbox inside the caller's transaction; returns the row id. The message
/// is published only if `tx` commits.
pub fn enqueue(
    tx: &Transaction,
    topic: &str,
    payload: &[u8],
    dedup_id: Option<&str>,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO outbox (topic, payload, dedup_id) VALUES (?1, ?2, ?3)",
        params![topic, payload, dedup_id],
    )?;
    Ok(tx.last_insert_rowid())
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id (commit order).
    pub id: i64,
    /// Topic to publish to.
    pub topic: String,
    /// Message payload.
    pub payload: Vec<u8>,
    /// Dedup id given at enqueue.
    pub dedup_id: Option<String>,
}

impl OutboxRow {
    /// The dedup id the row is published with: its own, or `outbox-<id>`.
    pub fn publish_dedup_id(&self) -> String {
        match &self.dedup_id {
            Some(d) => d.clone(),
            None => format!("outbox-{}", self.id),
        }
    }
}

fn outbox_err(e: impl std::fmt::Display) -> QueueError {
    QueueError::Outbox(e.to_string())
}

/// Publishes outbox rows to the queue. Cheap to clone; clones share the connection and the
/// wake-up, so one clone can [`Relay::run`] while others [`Relay::notify`].
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    queue: Arc<dyn Queue>,
    wake: Notify,
    tick: Duration,
}

impl Relay {
    /// A relay reading the outbox of the metadata database at `meta_db` (its own connection;
    /// creates the table if missing) that publishes to `queue`, and looks for rows at least
    /// every `tick` even without a [`Relay::notify`].
    pub fn open(meta_db: &Path, queue: Arc<dyn Queue>, tick: Duration) -> Result<Self> {
        let conn = Connection::open(meta_db).map_err(outbox_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(outbox_err)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(outbox_err)?;
        create_table(&conn).map_err(outbox_err)?;
        let inner = Inner {
            conn: Mutex::new(conn),
            queue,
            wake: Notify::new(),
            tick,
        };
        Ok(Relay {
            inner: Arc::new(inner),
        })
    }

    /// Wakes the running relay (call after committing a transaction that enqueued rows). A
    /// notify while the relay is busy is remembered, not lost.
    pub fn notify(&self) {
        self.inner.wake.notify_one();
    }

    /// Up to `limit` rows, oldest first.
    pub fn fetch(&self, limit: usize) -> Result<Vec<OutboxRow>> {
        let conn = self.inner.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached("SELECT id, topic, payload, dedup_id FROM outbox ORDER BY id LIMIT ?1")
            .map_err(outbox_err)?;
        let rows = stmt
            .query_map(params![limit as i64], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    topic: r.get(1)?,
                    payload: r.get(2)?,
                    dedup_id: r.get(3)?,
                })
            })
            .map_err(outbox_err)?;
        rows.map(|r| r.map_err(outbox_err)).collect()
    }

    /// Publishes one row (idempotent within the dedup window); returns its queue sequence.
    pub fn publish_row(&self, row: &OutboxRow) -> Result<u64> {
        let dedup = row.publish_dedup_id();
        self.inner
            .queue
            .publish(&row.topic, &row.payload, Some(&dedup))
    }

    /// Deletes every row up to and including `id` (all of them published).
    pub fn delete_through(&self, id: i64) -> Result<()> {
        let conn = self.inner.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute("DELETE FROM outbox WHERE id <= ?1", params![id])
            .map_err(outbox_err)?;
        Ok(())
    }

    /// Publishes one batch in id order and deletes what was published; stops at the first
    /// failed publish so order is kept. Returns how many rows were relayed.
    pub fn relay_once(&self) -> Result<usize> {
        let rows = self.fetch(BATCH)?;
        let mut last = None;
        let mut failed = None;
        for row in &rows {
            match self.publish_row(row) {
                Ok(_) => last = Some(row.id),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(id) = last {
            self.delete_through(id)?;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(rows.len()),
        }
    }

    /// Relays until the outbox is empty; returns how many rows were relayed.
    pub fn drain(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.relay_once()?;
            total += n;
            if n < BATCH {
                return Ok(total);
            }
        }
    }

    /// Relays on every notify and every tick until `shutdown` resolves. Errors are logged and
    /// retried on the next tick; rows stay in the outbox until published.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.drain()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "outbox relay failed; retrying"),
                Err(e) => tracing::warn!(error = %e, "outbox relay task failed; retrying"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(self.inner.tick) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
