//! Timer triggers (hearth resources, not a function's: a trigger names its target function)
//! and the ticks they fired. A tick record is unique per (trigger, scheduled time) and is
//! written in the same transaction as the tick's outbox message, so a tick fires once however
//! many schedulers race for it (`Op::TriggerTick` fails with `Conflict` for the losers).

use super::StoreError;
use super::txn::db;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS triggers (
    tenant TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (tenant, name));
CREATE TABLE IF NOT EXISTS trigger_ticks (
    tenant TEXT NOT NULL, trigger TEXT NOT NULL, scheduled_ms INTEGER NOT NULL,
    fired INTEGER NOT NULL,
    PRIMARY KEY (tenant, trigger, scheduled_ms));
";

/// How long tick records are kept behind a trigger's newest one (the newest is always kept,
/// so a scheduler only ever tries ticks after it; older ones cannot be raced for).
pub const TICK_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// A stored trigger and its newest tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRow {
    pub name: String,
    /// Unique per creation (a trigger deleted and created again under the same name differs).
    pub id: String,
    pub json: String,
    /// Scheduled time of the newest tick recorded (fired or skipped), ms since the epoch.
    pub last_tick_ms: Option<i64>,
}

/// Reads triggers. Writes are [`super::Op::PutTrigger`] and [`super::Op::TriggerTick`].
pub trait TriggerStore {
    /// Every trigger of the tenant, by name.
    fn triggers(&self, tenant: &str) -> Result<Vec<TriggerRow>, StoreError>;
}

/// Creates (`Conflict` if the name is taken) or, with `json` `None`, deletes a trigger and its
/// tick records (`NotFound` if absent).
pub fn put(
    tx: &Transaction,
    tenant: &str,
    name: &str,
    id: &str,
    json: Option<&str>,
) -> Result<(), StoreError> {
    let Some(json) = json else {
        tx.execute(
            "DELETE FROM trigger_ticks WHERE tenant = ?1 AND trigger = ?2",
            params![tenant, name],
        )
        .map_err(db)?;
        let n = tx
            .execute(
                "DELETE FROM triggers WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
            )
            .map_err(db)?;
        return if n == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        };
    };
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO triggers (tenant, name, id, json) VALUES (?1, ?2, ?3, ?4)",
            params![tenant, name, id, json],
        )
        .map_err(db)?;
    if n == 0 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// Deletes every trigger that targets function `function` (any qualifier) and their tick
/// records: part of deleting the function, in its transaction.
pub fn delete_for_function(
    tx: &Transaction,
    tenant: &str,
    function: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM trigger_ticks WHERE tenant = ?1 AND trigger IN \
         (SELECT name FROM triggers WHERE tenant = ?1 AND json_extract(json, '$.FunctionName') = ?2)",
        params![tenant, function],
    )
    .map_err(db)?;
    tx.execute(
        "DELETE FROM triggers WHERE tenant = ?1 AND json_extract(json, '$.FunctionName') = ?2",
        params![tenant, function],
    )
    .map_err(db)?;
    Ok(())
}

/// Records a tick of trigger `name` (creation `id`): `Conflict` if that (trigger, time) or a
/// later tick was recorded already, `NotFound` if the trigger is gone or was re-created since.
pub fn tick(
    tx: &Transaction,
    tenant: &str,
    name: &str,
    id: &str,
    scheduled_ms: i64,
    fired: bool,
) -> Result<(), StoreError> {
    let current: Option<String> = tx
        .query_row(
            "SELECT id FROM triggers WHERE tenant = ?1 AND name = ?2",
            params![tenant, name],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    if current.as_deref() != Some(id) {
        return Err(StoreError::NotFound);
    }
    // Ticks are recorded in order: a scheduler with a stale view that tries a tick at or
    // before the newest recorded one lost the race for it (or it was passed over).
    let newest: Option<i64> = tx
        .query_row(
            "SELECT MAX(scheduled_ms) FROM trigger_ticks WHERE tenant = ?1 AND trigger = ?2",
            params![tenant, name],
            |r| r.get(0),
        )
        .map_err(db)?;
    if newest.is_some_and(|n| n >= scheduled_ms) {
        return Err(StoreError::Conflict);
    }
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO trigger_ticks (tenant, trigger, scheduled_ms, fired) VALUES (?1, ?2, ?3, ?4)",
            params![tenant, name, scheduled_ms, fired],
        )
        .map_err(db)?;
    if n == 0 {
        return Err(StoreError::Conflict);
    }
    tx.execute(
        "DELETE FROM trigger_ticks WHERE tenant = ?1 AND trigger = ?2 AND scheduled_ms < ?3",
        params![tenant, name, scheduled_ms - TICK_RETENTION_MS],
    )
    .map_err(db)?;
    Ok(())
}

/// Every trigger of `tenant` with its newest tick, by name.
pub fn list(conn: &Connection, tenant: &str) -> Result<Vec<TriggerRow>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT t.name, t.id, t.json, \
             (SELECT MAX(scheduled_ms) FROM trigger_ticks k WHERE k.tenant = t.tenant AND k.trigger = t.name) \
             FROM triggers t WHERE t.tenant = ?1 ORDER BY t.name",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![tenant], |r| {
            Ok(TriggerRow {
                name: r.get(0)?,
                id: r.get(1)?,
                json: r.get(2)?,
                last_tick_ms: r.get(3)?,
            })
        })
        .map_err(db)?;
    rows.map(|r| r.map_err(db)).collect()
}
