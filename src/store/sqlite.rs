//! SQLite backend of [`MetadataStore`]: one connection behind a mutex (management calls are
//! rare and short; the invoke path reads through the router's cache).

use super::workflow::{StepRecord, WorkflowRecord};
use super::{Change, Committed, MetadataStore, Op, StoreError, StoredVersion, txn};
use crate::api::types::FunctionConfiguration;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::path::Path;
use std::sync::Mutex;

mod resources;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS functions (
    tenant TEXT NOT NULL, name TEXT NOT NULL, next_version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, name));
CREATE TABLE IF NOT EXISTS versions (
    tenant TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, num INTEGER NOT NULL,
    config TEXT NOT NULL, code_sha256 TEXT NOT NULL,
    PRIMARY KEY (tenant, name, version));
CREATE TABLE IF NOT EXISTS revision (id INTEGER PRIMARY KEY CHECK (id = 0), rev INTEGER NOT NULL);
INSERT OR IGNORE INTO revision (id, rev) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS changes (
    rev INTEGER PRIMARY KEY, tenant TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL);
";

/// SQLite metadata store (`<data>/meta.sqlite`).
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

use txn::db;

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        // The outbox relay writes the same file from its own connection.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        conn.execute_batch(txn::SCHEMA).map_err(db)?;
        crate::queue::outbox::create_table(&conn).map_err(db)?;
        conn.execute_batch(resources::SCHEMA).map_err(db)?;
        conn.execute_batch(super::triggers::SCHEMA).map_err(db)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in a write transaction that also records one change-feed entry.
    fn write<T>(
        &self,
        tenant: &str,
        key: &str,
        kind: &str,
        f: impl FnOnce(&Transaction) -> Result<T, StoreError>,
    ) -> Result<(T, u64), StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&tx)?;
        let rev = bump(&tx, tenant, kind, key)?;
        tx.commit().map_err(db)?;
        Ok((out, rev))
    }
}

/// Bumps the change-feed revision and records what changed (same transaction).
fn bump(tx: &Transaction, tenant: &str, kind: &str, key: &str) -> Result<u64, StoreError> {
    tx.execute("UPDATE revision SET rev = rev + 1 WHERE id = 0", [])
        .map_err(db)?;
    let rev: i64 = tx
        .query_row("SELECT rev FROM revision WHERE id = 0", [], |r| r.get(0))
        .map_err(db)?;
    tx.execute(
        "INSERT INTO changes (rev, tenant, kind, key) VALUES (?1, ?2, ?3, ?4)",
        params![rev, tenant, kind, key],
    )
    .map_err(db)?;
    Ok(rev as u64)
}

fn insert_version(
    tx: &Transaction,
    tenant: &str,
    num: u64,
    v: &StoredVersion,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(&v.config).map_err(db)?;
    tx.execute(
        "INSERT OR REPLACE INTO versions (tenant, name, version, num, config, code_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![tenant, v.config.function_name, v.config.version, num as i64, json, v.code_sha256_hex],
    )
    .map_err(db)?;
    Ok(())
}

fn row_to_version(config: String, sha: String) -> Result<StoredVersion, StoreError> {
    let config: FunctionConfiguration = serde_json::from_str(&config).map_err(db)?;
    Ok(StoredVersion {
        config,
        code_sha256_hex: sha,
    })
}

fn get_in(
    tx: &Connection,
    tenant: &str,
    name: &str,
    version: &str,
) -> Result<Option<StoredVersion>, StoreError> {
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT config, code_sha256 FROM versions WHERE tenant = ?1 AND name = ?2 AND version = ?3",
            params![tenant, name, version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)?;
    row.map(|(c, s)| row_to_version(c, s)).transpose()
}

fn query_versions(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<StoredVersion>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(db)?;
    let rows = stmt
        .query_map(args, |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?;
    rows.map(|r| r.map_err(db).and_then(|(c, s)| row_to_version(c, s)))
        .collect()
}

/// What makes two versions the same for PublishVersion: code and runtime-relevant settings.
fn same_content(a: &StoredVersion, b: &StoredVersion) -> bool {
    // The description is left out: PublishVersion's `Description` overrides it per version.
    let key = |v: &StoredVersion| {
        let c = &v.config;
        let code = v.code_sha256_hex.clone();
        (
            code,
            c.runtime.clone(),
            c.handler.clone(),
            c.memory_size,
            c.timeout,
            c.environment.clone(),
            c.role.clone(),
            c.vpc_config.clone(),
        )
    };
    key(a) == key(b)
}

/// Creates a function and its `$LATEST`; `Conflict` when the name is taken.
pub(super) fn create_in(
    tx: &Transaction,
    tenant: &str,
    latest: &StoredVersion,
) -> Result<(), StoreError> {
    let name = &latest.config.function_name;
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO functions (tenant, name) VALUES (?1, ?2)",
            params![tenant, name],
        )
        .map_err(db)?;
    if n == 0 {
        return Err(StoreError::Conflict);
    }
    insert_version(tx, tenant, 0, latest)
}

/// Replaces the record of an existing version.
pub(super) fn put_version_in(
    tx: &Transaction,
    tenant: &str,
    v: &StoredVersion,
) -> Result<(), StoreError> {
    let (name, version) = (&v.config.function_name, &v.config.version);
    if get_in(tx, tenant, name, version)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let num = version.parse::<u64>().unwrap_or(0);
    insert_version(tx, tenant, num, v)
}

/// Publishes `$LATEST` as the next version number, or returns the newest when unchanged.
pub(super) fn publish_in(
    tx: &Transaction,
    tenant: &str,
    name: &str,
    make: &dyn Fn(&StoredVersion, u64) -> StoredVersion,
) -> Result<StoredVersion, StoreError> {
    let latest = get_in(tx, tenant, name, "$LATEST")?.ok_or(StoreError::NotFound)?;
    let newest = query_versions(
        tx,
        "SELECT config, code_sha256 FROM versions WHERE tenant = ?1 AND name = ?2 AND num > 0 ORDER BY num DESC LIMIT 1",
        params![tenant, name],
    )?;
    if let Some(newest) = newest.into_iter().next()
        && same_content(&newest, &latest)
    {
        return Ok(newest);
    }
    let num: i64 = tx
        .query_row(
            "SELECT next_version FROM functions WHERE tenant = ?1 AND name = ?2",
            params![tenant, name],
            |r| r.get(0),
        )
        .map_err(db)?;
    let num = num as u64;
    let version = make(&latest, num);
    insert_version(tx, tenant, num, &version)?;
    tx.execute(
        "UPDATE functions SET next_version = ?3 WHERE tenant = ?1 AND name = ?2",
        params![tenant, name, (num + 1) as i64],
    )
    .map_err(db)?;
    Ok(version)
}

/// Deletes a whole function or one published version; `NotFound` when absent.
pub(super) fn delete_in(
    tx: &Transaction,
    tenant: &str,
    name: &str,
    version: Option<&str>,
) -> Result<(), StoreError> {
    let n = match version {
        None => {
            resources::delete_function(tx, tenant, name)?;
            super::triggers::delete_for_function(tx, tenant, name)?;
            tx.execute(
                "DELETE FROM versions WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
            )
            .map_err(db)?;
            tx.execute(
                "DELETE FROM functions WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
            )
            .map_err(db)?
        }
        Some(v) => {
            resources::delete_version(tx, tenant, name, v)?;
            tx.execute(
                "DELETE FROM versions WHERE tenant = ?1 AND name = ?2 AND version = ?3 AND num > 0",
                params![tenant, name, v],
            )
            .map_err(db)?
        }
    };
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl MetadataStore for SqliteStore {
    fn create_function(&self, tenant: &str, latest: &StoredVersion) -> Result<u64, StoreError> {
        let name = &latest.config.function_name;
        Ok(self
            .write(tenant, name, "function", |tx| create_in(tx, tenant, latest))?
            .1)
    }

    fn put_latest(&self, tenant: &str, latest: &StoredVersion) -> Result<u64, StoreError> {
        let name = &latest.config.function_name;
        Ok(self
            .write(tenant, name, "function", |tx| {
                put_version_in(tx, tenant, latest)
            })?
            .1)
    }

    fn publish(
        &self,
        tenant: &str,
        name: &str,
        make: &dyn Fn(&StoredVersion, u64) -> StoredVersion,
    ) -> Result<(StoredVersion, u64), StoreError> {
        self.write(tenant, name, "version", |tx| {
            publish_in(tx, tenant, name, make)
        })
    }

    fn get(
        &self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        get_in(&conn, tenant, name, version)
    }

    fn list_latest(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        query_versions(
            &conn,
            "SELECT config, code_sha256 FROM versions WHERE tenant = ?1 AND version = '$LATEST' AND name > ?2 ORDER BY name LIMIT ?3",
            params![tenant, after.unwrap_or(""), limit as i64],
        )
    }

    fn list_versions(&self, tenant: &str, name: &str) -> Result<Vec<StoredVersion>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        query_versions(
            &conn,
            "SELECT config, code_sha256 FROM versions WHERE tenant = ?1 AND name = ?2 ORDER BY num",
            params![tenant, name],
        )
    }

    fn delete(&self, tenant: &str, name: &str, version: Option<&str>) -> Result<u64, StoreError> {
        Ok(self
            .write(tenant, name, "function", |tx| {
                delete_in(tx, tenant, name, version)
            })?
            .1)
    }

    fn revision(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row("SELECT rev FROM revision WHERE id = 0", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|r| r as u64)
        .map_err(db)
    }

    fn transact(&self, tenant: &str, ops: &[Op]) -> Result<Committed, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut out = Committed::default();
        let mut changed = Vec::new();
        for op in ops {
            if txn::apply(&tx, tenant, op, &mut out)? {
                changed.push(op);
            }
        }
        // One change-feed entry per function whose routable state changed, so routers drop
        // exactly those functions' cache entries.
        // (The kind is that of the function's first changed op.)
        let mut seen: Vec<&str> = Vec::new();
        for (kind, name) in changed.iter().filter_map(|op| op.change()) {
            if !seen.contains(&name) {
                seen.push(name);
                out.revision = Some(bump(&tx, tenant, kind, name)?);
            }
        }
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached(
                "SELECT rev, tenant, kind, key FROM changes WHERE rev > ?1 ORDER BY rev LIMIT ?2",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![after as i64, limit as i64], |r| {
                Ok(Change {
                    rev: r.get::<_, i64>(0)? as u64,
                    tenant: r.get(1)?,
                    kind: r.get(2)?,
                    key: r.get(3)?,
                })
            })
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    fn route(
        &self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        txn::get_route(&conn, tenant, name, version)
    }

    fn workflow(&self, id: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        txn::get_workflow(&conn, id)
    }

    fn workflows(
        &self,
        tenant: &str,
        function: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        txn::list_workflows(&conn, tenant, function, limit)
    }

    fn steps(&self, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        txn::list_steps(&conn, workflow_id)
    }
}

impl super::TriggerStore for SqliteStore {
    fn triggers(&self, tenant: &str) -> Result<Vec<super::TriggerRow>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        super::triggers::list(&conn, tenant)
    }
}
