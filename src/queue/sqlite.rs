//! SQLite backend of [`Queue`] (`<data>/queue.sqlite`): one connection behind a mutex, WAL with
//! `synchronous = FULL`, every call one `BEGIN IMMEDIATE` transaction, so a message is on disk
//! before `publish` returns and two pullers (threads or processes) never lease the same message.
//!
//! Per consumer, `consumers.floor` is the highest sequence below which every message is acked or
//! termed; `deliveries` holds one row per message above the floor that was delivered, nakked or
//! settled out of order (state 0 = pending, 1 = acked, 2 = termed; `visible_ms` = end of the
//! lease or nak delay). Rows at or below the floor are deleted as the floor advances.

mod ops;
#[cfg(test)]
mod tests;

use super::clock::duration_ms;
use super::{
    Clock, ConsumerConfig, Message, Queue, QueueConfig, QueueError, Result, SystemClock,
    check_consumer, check_topic,
};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    topic TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
    published_ms INTEGER NOT NULL, dedup_id TEXT,
    origin_topic TEXT, origin_seq INTEGER, origin_consumer TEXT, origin_deliveries INTEGER,
    PRIMARY KEY (topic, seq));
CREATE TABLE IF NOT EXISTS consumers (
    topic TEXT NOT NULL, consumer TEXT NOT NULL, floor INTEGER NOT NULL,
    PRIMARY KEY (topic, consumer)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
    topic TEXT NOT NULL, consumer TEXT NOT NULL, seq INTEGER NOT NULL,
    state INTEGER NOT NULL, deliveries INTEGER NOT NULL, visible_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, consumer, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup (
    topic TEXT NOT NULL, dedup_id TEXT NOT NULL, seq INTEGER NOT NULL, published_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, dedup_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_age ON dedup (topic, published_ms);
";

/// How long a call waits for another process holding the database's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite queue.
pub struct SqliteQueue {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    watches: Mutex<HashMap<String, watch::Sender<u64>>>,
}

pub(crate) fn db(e: impl std::fmt::Display) -> QueueError {
    QueueError::Backend(e.to_string())
}

impl SqliteQueue {
    /// Opens (creating if needed) the queue at `path` with default settings and the system clock.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, QueueConfig::default(), Arc::new(SystemClock))
    }

    /// Opens the queue at `path` with `config` and `clock`.
    pub fn open_with(path: &Path, config: QueueConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(SqliteQueue {
            conn: Mutex::new(conn),
            clock,
            config,
            watches: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `f` in one immediate (write-locked) transaction with the current time.
    fn write<T>(&self, f: impl FnOnce(&Transaction, u64) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&tx, self.clock.now_ms())?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// Tells subscribers of `topic` that messages may be available.
    fn poke(&self, topic: &str) {
        let watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = watches.get(topic) {
            w.send_modify(|v| *v += 1);
        }
    }

    /// Runs `f` on message `seq` of `consumer` unless the consumer's floor has passed it
    /// (then it is settled and nothing changes); fails if the topic does not hold `seq`.
    fn on_live(
        &self,
        (topic, consumer, seq): (&str, &str, u64),
        f: impl FnOnce(&Transaction, u64, u64) -> Result<()>,
    ) -> Result<()> {
        check_names(topic, consumer)?;
        self.write(|tx, now| {
            let floor = ops::ensure_consumer(tx, topic, consumer)?;
            if seq <= floor {
                return Ok(());
            }
            ops::require_message(tx, topic, seq)?;
            f(tx, now, floor)
        })
    }

    /// Acks or terms one message, then advances the consumer's floor.
    fn settle(&self, topic: &str, consumer: &str, seq: u64, state: ops::State) -> Result<()> {
        self.on_live((topic, consumer, seq), |tx, _now, floor| {
            ops::set_done(tx, (topic, consumer, seq), state)?;
            ops::advance_floor(tx, topic, consumer, floor)
        })
    }

    /// Leases up to `max` candidates, dead-lettering those over the limit; returns the leased
    /// messages and whether anything was dead-lettered.
    fn pull_in(
        &self,
        tx: &Transaction,
        now: u64,
        (topic, consumer): (&str, &str),
        max: usize,
        config: &ConsumerConfig,
    ) -> Result<(Vec<Message>, bool)> {
        let floor = ops::ensure_consumer(tx, topic, consumer)?;
        let mut out = Vec::new();
        let mut dead = false;
        loop {
            let want = max - out.len();
            let batch = ops::candidates(tx, topic, consumer, floor, now, want)?;
            let full = batch.len() == want;
            for mut m in batch {
                if config.max_deliveries > 0 && m.deliveries >= config.max_deliveries {
                    let dlq = config.dead_letter_for(topic);
                    ops::dead_letter(tx, &dlq, consumer, &m, now)?;
                    dead = true;
                } else {
                    m.deliveries += 1;
                    let until = now.saturating_add(duration_ms(config.lease));
                    ops::lease(tx, consumer, &m, until)?;
                    out.push(m);
                }
            }
            if !full || out.len() == max {
                break;
            }
        }
        ops::advance_floor(tx, topic, consumer, floor)?;
        Ok((out, dead))
    }
}

fn check_names(topic: &str, consumer: &str) -> Result<()> {
    check_topic(topic)?;
    check_consumer(consumer)
}

impl Queue for SqliteQueue {
    fn publish(&self, topic: &str, payload: &[u8], dedup_id: Option<&str>) -> Result<u64> {
        check_topic(topic)?;
        let window = duration_ms(self.config.dedup_window);
        let new = ops::NewMessage {
            topic,
            payload,
            dedup_id,
            origin: None,
        };
        let (seq, stored) = self.write(|tx, now| ops::publish(tx, &new, now, window))?;
        if stored {
            self.poke(topic);
        }
        Ok(seq)
    }

    fn pull(
        &self,
        topic: &str,
        consumer: &str,
        max: usize,
        config: &ConsumerConfig,
    ) -> Result<Vec<Message>> {
        check_names(topic, consumer)?;
        let dlq = config.dead_letter_for(topic);
        check_topic(&dlq)?;
        if dlq == topic {
            return Err(QueueError::Invalid(format!(
                "{topic:?} is its own dead-letter topic"
            )));
        }
        if max == 0 {
            return Ok(Vec::new());
        }
        let names = (topic, consumer);
        let (out, dead) = self.write(|tx, now| self.pull_in(tx, now, names, max, config))?;
        if dead {
            self.poke(&dlq);
        }
        Ok(out)
    }

    fn ack(&self, topic: &str, consumer: &str, seq: u64) -> Result<()> {
        self.settle(topic, consumer, seq, ops::State::Acked)
    }

    fn term(&self, topic: &str, consumer: &str, seq: u64) -> Result<()> {
        self.settle(topic, consumer, seq, ops::State::Termed)
    }

    fn nak(&self, topic: &str, consumer: &str, seq: u64, delay: Duration) -> Result<()> {
        self.on_live((topic, consumer, seq), |tx, now, _floor| {
            let visible = now.saturating_add(duration_ms(delay));
            ops::nak(tx, (topic, consumer, seq), visible)
        })?;
        if delay.is_zero() {
            self.poke(topic);
        }
        Ok(())
    }

    fn in_progress(&self, topic: &str, consumer: &str, seq: u64, extend: Duration) -> Result<()> {
        self.on_live((topic, consumer, seq), |tx, now, _floor| {
            let until = now.saturating_add(duration_ms(extend));
            ops::extend(tx, (topic, consumer, seq), until)
        })
    }

    fn pending(&self, topic: &str, consumer: &str) -> Result<u64> {
        check_names(topic, consumer)?;
        self.write(|tx, _now| {
            let floor = ops::ensure_consumer(tx, topic, consumer)?;
            ops::pending(tx, topic, consumer, floor)
        })
    }

    fn trim(&self, topic: &str) -> Result<u64> {
        check_topic(topic)?;
        let window = duration_ms(self.config.dedup_window);
        let max_age = self.config.max_age.map(duration_ms);
        self.write(|tx, now| ops::trim(tx, topic, now, window, max_age))
    }

    fn read(&self, topic: &str, after: u64, max: usize) -> Result<Vec<Message>> {
        check_topic(topic)?;
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        ops::read(&conn, topic, after, max)
    }

    fn subscribe(&self, topic: &str) -> watch::Receiver<u64> {
        let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        let w = watches
            .entry(topic.to_owned())
            .or_insert_with(|| watch::Sender::new(0));
        w.subscribe()
    }
}
