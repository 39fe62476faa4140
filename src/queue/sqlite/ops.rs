//! The SQL of [`super::SqliteQueue`], one small function per statement group, each run inside the
//! caller's transaction.

use super::db;
use crate::queue::{Message, Origin, QueueError, Result};
use rusqlite::{OptionalExtension, Row, Transaction, params};

/// A consumer's settlement of one message (`deliveries.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Acked = 1,
    Termed = 2,
}

/// What [`publish`] stores.
pub(super) struct NewMessage<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub dedup_id: Option<&'a str>,
    pub origin: Option<Origin>,
}

/// Stores a message unless its dedup id was seen within `window_ms`; returns its sequence
/// and whether it was stored.
pub(super) fn publish(
    tx: &Transaction,
    m: &NewMessage,
    now: u64,
    window_ms: u64,
) -> Result<(u64, bool)> {
    if let Some(id) = m.dedup_id
        && let Some(seq) = dedup_hit(tx, m.topic, id, now.saturating_sub(window_ms))?
    {
        return Ok((seq, false));
    }
    let seq: i64 = tx
        .query_row(
            "INSERT INTO topics (topic, last_seq) VALUES (?1, 1)
             ON CONFLICT (topic) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
            params![m.topic],
            |r| r.get(0),
        )
        .map_err(db)?;
    let o = m.origin.as_ref();
    tx.execute(
        "INSERT INTO messages (topic, seq, payload, published_ms, dedup_id,
             origin_topic, origin_seq, origin_consumer, origin_deliveries)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            m.topic,
            seq,
            m.payload,
            now as i64,
            m.dedup_id,
            o.map(|o| &o.topic),
            o.map(|o| o.seq as i64),
            o.map(|o| &o.consumer),
            o.map(|o| o.deliveries),
        ],
    )
    .map_err(db)?;
    if let Some(id) = m.dedup_id {
        tx.execute(
            "INSERT OR REPLACE INTO dedup (topic, dedup_id, seq, published_ms) VALUES (?1, ?2, ?3, ?4)",
            params![m.topic, id, seq, now as i64],
        )
        .map_err(db)?;
    }
    Ok((seq as u64, true))
}

/// The sequence of a message published with dedup id `id` after `cutoff_ms`.
fn dedup_hit(tx: &Transaction, topic: &str, id: &str, cutoff_ms: u64) -> Result<Option<u64>> {
    tx.query_row(
        "SELECT seq FROM dedup WHERE topic = ?1 AND dedup_id = ?2 AND published_ms > ?3",
        params![topic, id, cutoff_ms as i64],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|s| s.map(|s| s as u64))
    .map_err(db)
}

/// Creates the consumer on first use, starting at the oldest stored message; returns its floor.
pub(super) fn ensure_consumer(tx: &Transaction, topic: &str, consumer: &str) -> Result<u64> {
    tx.execute(
        "INSERT OR IGNORE INTO consumers (topic, consumer, floor) VALUES (?1, ?2, COALESCE(
             (SELECT MIN(seq) FROM messages WHERE topic = ?1) - 1,
             (SELECT last_seq FROM topics WHERE topic = ?1),
             0))",
        params![topic, consumer],
    )
    .map_err(db)?;
    tx.query_row(
        "SELECT floor FROM consumers WHERE topic = ?1 AND consumer = ?2",
        params![topic, consumer],
        |r| r.get::<_, i64>(0),
    )
    .map(|f| f as u64)
    .map_err(db)
}

/// Fails with `NoMessage` unless `topic` holds `seq`.
pub(super) fn require_message(tx: &Transaction, topic: &str, seq: u64) -> Result<()> {
    let found = tx
        .query_row(
            "SELECT 1 FROM messages WHERE topic = ?1 AND seq = ?2",
            params![topic, seq as i64],
            |_| Ok(()),
        )
        .optional()
        .map_err(db)?;
    found.ok_or_else(|| QueueError::NoMessage {
        topic: topic.to_owned(),
        seq,
    })
}

/// Up to `limit` messages above `floor` that `consumer` may receive now, oldest first, with
/// their delivery count so far.
pub(super) fn candidates(
    tx: &Transaction,
    topic: &str,
    consumer: &str,
    floor: u64,
    now: u64,
    limit: usize,
) -> Result<Vec<Message>> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT m.seq, m.payload, m.published_ms, m.dedup_id, m.origin_topic, m.origin_seq,
                    m.origin_consumer, m.origin_deliveries, COALESCE(d.deliveries, 0)
             FROM messages m LEFT JOIN deliveries d
                 ON d.topic = m.topic AND d.consumer = ?2 AND d.seq = m.seq
             WHERE m.topic = ?1 AND m.seq > ?3 AND (d.state IS NULL OR (d.state = 0 AND d.visible_ms <= ?4))
             ORDER BY m.seq LIMIT ?5",
        )
        .map_err(db)?;
    let args = params![topic, consumer, floor as i64, now as i64, limit as i64];
    let rows = stmt
        .query_map(args, |r| row_to_message(topic, r))
        .map_err(db)?;
    rows.map(|r| r.map_err(db)).collect()
}

/// Up to `limit` stored messages of `topic` above `after`, not leased (`deliveries` 0).
pub(super) fn read(
    conn: &rusqlite::Connection,
    topic: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<Message>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, payload, published_ms, dedup_id, origin_topic, origin_seq,
                    origin_consumer, origin_deliveries, 0
             FROM messages WHERE topic = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(db)?;
    let args = params![topic, after.min(i64::MAX as u64) as i64, limit as i64];
    let rows = stmt
        .query_map(args, |r| row_to_message(topic, r))
        .map_err(db)?;
    rows.map(|r| r.map_err(db)).collect()
}

fn row_to_message(topic: &str, r: &Row) -> rusqlite::Result<Message> {
    let origin_topic: Option<String> = r.get(4)?;
    let origin = match origin_topic {
        Some(t) => Some(Origin {
            topic: t,
            seq: r.get::<_, i64>(5)? as u64,
            consumer: r.get(6)?,
            deliveries: r.get(7)?,
        }),
        None => None,
    };
    Ok(Message {
        seq: r.get::<_, i64>(0)? as u64,
        topic: topic.to_owned(),
        payload: r.get(1)?,
        published_ms: r.get::<_, i64>(2)? as u64,
        dedup_id: r.get(3)?,
        origin,
        deliveries: r.get(8)?,
    })
}

/// Records a delivery of `m` (its `deliveries` already counts it), leased until `until_ms`.
pub(super) fn lease(tx: &Transaction, consumer: &str, m: &Message, until_ms: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO deliveries (topic, consumer, seq, state, deliveries, visible_ms)
         VALUES (?1, ?2, ?3, 0, ?4, ?5)
         ON CONFLICT (topic, consumer, seq) DO UPDATE
             SET deliveries = excluded.deliveries, visible_ms = excluded.visible_ms",
        params![
            m.topic,
            consumer,
            m.seq as i64,
            m.deliveries,
            until_ms as i64
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// Publishes `m` to `dlq` with its identity as origin, and terms it for `consumer`.
pub(super) fn dead_letter(
    tx: &Transaction,
    dlq: &str,
    consumer: &str,
    m: &Message,
    now: u64,
) -> Result<()> {
    let letter = NewMessage {
        topic: dlq,
        payload: &m.payload,
        dedup_id: None,
        origin: Some(Origin {
            topic: m.topic.clone(),
            seq: m.seq,
            consumer: consumer.to_owned(),
            deliveries: m.deliveries,
        }),
    };
    publish(tx, &letter, now, 0)?;
    set_done(tx, (&m.topic, consumer, m.seq), State::Termed)
}

/// Acks or terms one message (no change if it is settled already).
pub(super) fn set_done(tx: &Transaction, key: (&str, &str, u64), state: State) -> Result<()> {
    let (topic, consumer, seq) = key;
    tx.execute(
        "INSERT INTO deliveries (topic, consumer, seq, state, deliveries, visible_ms)
         VALUES (?1, ?2, ?3, ?4, 0, 0)
         ON CONFLICT (topic, consumer, seq) DO UPDATE SET state = excluded.state WHERE state = 0",
        params![topic, consumer, seq as i64, state as i64],
    )
    .map_err(db)?;
    Ok(())
}

/// Makes an unsettled message visible again at `visible_ms` (nak).
pub(super) fn nak(tx: &Transaction, key: (&str, &str, u64), visible_ms: u64) -> Result<()> {
    let (topic, consumer, seq) = key;
    tx.execute(
        "INSERT INTO deliveries (topic, consumer, seq, state, deliveries, visible_ms)
         VALUES (?1, ?2, ?3, 0, 0, ?4)
         ON CONFLICT (topic, consumer, seq) DO UPDATE SET visible_ms = excluded.visible_ms
             WHERE state = 0",
        params![topic, consumer, seq as i64, visible_ms as i64],
    )
    .map_err(db)?;
    Ok(())
}

/// Moves the lease end of a delivered, unsettled message to `until_ms`.
pub(super) fn extend(tx: &Transaction, key: (&str, &str, u64), until_ms: u64) -> Result<()> {
    let (topic, consumer, seq) = key;
    tx.execute(
        "UPDATE deliveries SET visible_ms = ?4
         WHERE topic = ?1 AND consumer = ?2 AND seq = ?3 AND state = 0 AND deliveries > 0",
        params![topic, consumer, seq as i64, until_ms as i64],
    )
    .map_err(db)?;
    Ok(())
}

/// The oldest message above `floor` that `consumer` has not settled.
fn first_unsettled(
    tx: &Transaction,
    topic: &str,
    consumer: &str,
    floor: u64,
) -> Result<Option<u64>> {
    tx.query_row(
        "SELECT m.seq FROM messages m LEFT JOIN deliveries d
             ON d.topic = m.topic AND d.consumer = ?2 AND d.seq = m.seq
         WHERE m.topic = ?1 AND m.seq > ?3 AND (d.state IS NULL OR d.state = 0)
         ORDER BY m.seq LIMIT 1",
        params![topic, consumer, floor as i64],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|s| s.map(|s| s as u64))
    .map_err(db)
}

fn last_seq(tx: &Transaction, topic: &str) -> Result<u64> {
    tx.query_row(
        "SELECT COALESCE((SELECT last_seq FROM topics WHERE topic = ?1), 0)",
        params![topic],
        |r| r.get::<_, i64>(0),
    )
    .map(|s| s as u64)
    .map_err(db)
}

/// Moves the consumer's floor past every settled message and forgets their delivery rows.
pub(super) fn advance_floor(
    tx: &Transaction,
    topic: &str,
    consumer: &str,
    floor: u64,
) -> Result<()> {
    let new = match first_unsettled(tx, topic, consumer, floor)? {
        Some(seq) => seq - 1,
        None => last_seq(tx, topic)?,
    };
    if new <= floor {
        return Ok(());
    }
    tx.execute(
        "UPDATE consumers SET floor = ?3 WHERE topic = ?1 AND consumer = ?2",
        params![topic, consumer, new as i64],
    )
    .map_err(db)?;
    tx.execute(
        "DELETE FROM deliveries WHERE topic = ?1 AND consumer = ?2 AND seq <= ?3",
        params![topic, consumer, new as i64],
    )
    .map_err(db)?;
    Ok(())
}

/// Messages above `floor` that `consumer` has not settled.
pub(super) fn pending(tx: &Transaction, topic: &str, consumer: &str, floor: u64) -> Result<u64> {
    tx.query_row(
        "SELECT COUNT(*) FROM messages m LEFT JOIN deliveries d
             ON d.topic = m.topic AND d.consumer = ?2 AND d.seq = m.seq
         WHERE m.topic = ?1 AND m.seq > ?3 AND (d.state IS NULL OR d.state = 0)",
        params![topic, consumer, floor as i64],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(db)
}

/// Removes messages below every consumer's floor, messages older than `max_age_ms`, and dedup
/// ids older than `window_ms`; returns how many messages were removed.
pub(super) fn trim(
    tx: &Transaction,
    topic: &str,
    now: u64,
    window_ms: u64,
    max_age_ms: Option<u64>,
) -> Result<u64> {
    let min_floor: Option<i64> = tx
        .query_row(
            "SELECT MIN(floor) FROM consumers WHERE topic = ?1",
            params![topic],
            |r| r.get(0),
        )
        .map_err(db)?;
    let mut removed = 0;
    if let Some(floor) = min_floor {
        removed += tx
            .execute(
                "DELETE FROM messages WHERE topic = ?1 AND seq <= ?2",
                params![topic, floor],
            )
            .map_err(db)?;
    }
    if let Some(age) = max_age_ms {
        removed += trim_older(tx, topic, now.saturating_sub(age))?;
    }
    tx.execute(
        "DELETE FROM dedup WHERE topic = ?1 AND published_ms <= ?2",
        params![topic, now.saturating_sub(window_ms) as i64],
    )
    .map_err(db)?;
    Ok(removed as u64)
}

/// Removes messages published before `cutoff_ms`, settled or not, and their delivery rows.
fn trim_older(tx: &Transaction, topic: &str, cutoff_ms: u64) -> Result<usize> {
    let n = tx
        .execute(
            "DELETE FROM messages WHERE topic = ?1 AND published_ms < ?2",
            params![topic, cutoff_ms as i64],
        )
        .map_err(db)?;
    if n > 0 {
        tx.execute(
            "DELETE FROM deliveries WHERE topic = ?1
                 AND seq NOT IN (SELECT seq FROM messages WHERE topic = ?1)",
            params![topic],
        )
        .map_err(db)?;
    }
    Ok(n)
}
