//! SQLite implementation of [`Op`]s, each applied inside the caller's transaction, and the
//! tables they need beyond functions and versions: routes and workflow records.

use super::workflow::{StepName, StepRecord, WorkflowRecord};
use super::{Committed, Op, StoreError, StoredVersion};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS routes (
    tenant TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    config TEXT NOT NULL, code_sha256 TEXT NOT NULL,
    PRIMARY KEY (tenant, name, version));
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, function TEXT NOT NULL,
    created_ms INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS workflows_by_function ON workflows (tenant, function, created_ms);
CREATE TABLE IF NOT EXISTS workflow_steps (
    workflow_id TEXT NOT NULL, step TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (workflow_id, step));
";

pub fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(db)
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(db)
}

/// Applies one op; returns whether it changed routable state (bumps the revision).
pub fn apply(
    tx: &Transaction,
    tenant: &str,
    op: &Op,
    out: &mut Committed,
) -> Result<bool, StoreError> {
    match op {
        Op::CreateFunction(v) => super::sqlite::create_in(tx, tenant, v).map(|_| true),
        Op::PutVersion(v) => super::sqlite::put_version_in(tx, tenant, v).map(|_| true),
        Op::Publish {
            name,
            make,
            workflow,
            route: routable,
        } => {
            let v = super::sqlite::publish_in(tx, tenant, name, make.as_ref())?;
            if let Some(id) = workflow {
                record_version(tx, id, &v.config.version)?;
            }
            if *routable {
                route(tx, tenant, name, &v.config.version, Some(&v))?;
            }
            out.published.push(v);
            Ok(true)
        }
        Op::Route {
            name,
            version,
            record,
        } => route(tx, tenant, name, version, record.as_ref()),
        Op::DeleteFunction { name } => {
            tx.execute(
                "DELETE FROM routes WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
            )
            .map_err(db)?;
            super::sqlite::delete_in(tx, tenant, name, None).map(|_| true)
        }
        Op::DeleteVersion { name, version } => {
            tx.execute(
                "DELETE FROM routes WHERE tenant = ?1 AND name = ?2 AND version = ?3",
                params![tenant, name, version],
            )
            .map_err(db)?;
            super::sqlite::delete_in(tx, tenant, name, Some(version)).map(|_| true)
        }
        Op::PutWorkflow(w) => put_workflow(tx, w).map(|_| false),
        Op::PutStep(s) => put_step(tx, s).map(|_| false),
        Op::PutResource {
            name,
            kind,
            key,
            json: doc,
        } => {
            match doc {
                Some(j) => tx.execute(
                    "INSERT OR REPLACE INTO function_resources (tenant, function, kind, key, json) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![tenant, name, kind, key, j],
                ),
                None => tx.execute(
                    "DELETE FROM function_resources WHERE tenant = ?1 AND function = ?2 AND kind = ?3 AND key = ?4",
                    params![tenant, name, kind, key],
                ),
            }
            .map_err(db)?;
            Ok(false)
        }
        Op::PutTrigger { name, id, json } => {
            super::triggers::put(tx, tenant, name, id, json.as_deref()).map(|_| false)
        }
        Op::TriggerTick {
            name,
            id,
            scheduled_ms,
            fired,
        } => super::triggers::tick(tx, tenant, name, id, *scheduled_ms, *fired).map(|_| false),
        Op::Outbox {
            topic,
            payload,
            dedup_id,
        } => {
            crate::queue::outbox::enqueue(tx, topic, payload, Some(dedup_id)).map_err(db)?;
            out.outbox = true;
            Ok(false)
        }
    }
}

fn route(
    tx: &Transaction,
    tenant: &str,
    name: &str,
    version: &str,
    record: Option<&StoredVersion>,
) -> Result<bool, StoreError> {
    let Some(v) = record else {
        let n = tx
            .execute(
                "DELETE FROM routes WHERE tenant = ?1 AND name = ?2 AND version = ?3",
                params![tenant, name, version],
            )
            .map_err(db)?;
        return Ok(n > 0);
    };
    if get_route(tx, tenant, name, version)?
        .is_some_and(|cur| cur.config.revision_id == v.config.revision_id)
    {
        return Ok(false);
    }
    tx.execute(
        "INSERT OR REPLACE INTO routes (tenant, name, version, config, code_sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![tenant, name, version, json(&v.config)?, v.code_sha256_hex],
    )
    .map_err(db)?;
    Ok(true)
}

pub fn get_route(
    conn: &Connection,
    tenant: &str,
    name: &str,
    version: &str,
) -> Result<Option<StoredVersion>, StoreError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT config, code_sha256 FROM routes WHERE tenant = ?1 AND name = ?2 AND version = ?3",
            params![tenant, name, version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)?;
    row.map(|(c, sha)| {
        Ok(StoredVersion {
            config: parse(&c)?,
            code_sha256_hex: sha,
        })
    })
    .transpose()
}

fn record_version(tx: &Transaction, workflow_id: &str, version: &str) -> Result<(), StoreError> {
    let mut w = get_workflow(tx, workflow_id)?.ok_or(StoreError::NotFound)?;
    if !w.versions.iter().any(|v| v == version) {
        w.versions.push(version.to_string());
    }
    put_workflow(tx, &w)
}

fn put_workflow(tx: &Transaction, w: &WorkflowRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR REPLACE INTO workflows (id, tenant, function, created_ms, record) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![w.id, w.tenant, w.function, w.created_ms as i64, json(w)?],
    )
    .map_err(db)?;
    Ok(())
}

fn put_step(tx: &Transaction, s: &StepRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR REPLACE INTO workflow_steps (workflow_id, step, record) VALUES (?1, ?2, ?3)",
        params![s.workflow_id, s.step.as_str(), json(s)?],
    )
    .map_err(db)?;
    Ok(())
}

pub fn get_workflow(conn: &Connection, id: &str) -> Result<Option<WorkflowRecord>, StoreError> {
    let rec: Option<String> = conn
        .query_row(
            "SELECT record FROM workflows WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    rec.map(|r| parse(&r)).transpose()
}

pub fn list_workflows(
    conn: &Connection,
    tenant: &str,
    function: Option<&str>,
    limit: usize,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT record FROM workflows WHERE tenant = ?1 AND (?2 IS NULL OR function = ?2) \
             ORDER BY created_ms DESC, id LIMIT ?3",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![tenant, function, limit as i64], |r| {
            r.get::<_, String>(0)
        })
        .map_err(db)?;
    rows.map(|r| r.map_err(db).and_then(|s| parse(&s)))
        .collect()
}

pub fn list_steps(conn: &Connection, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT record FROM workflow_steps WHERE workflow_id = ?1")
        .map_err(db)?;
    let rows = stmt
        .query_map(params![workflow_id], |r| r.get::<_, String>(0))
        .map_err(db)?;
    let mut steps: Vec<StepRecord> = rows
        .map(|r| r.map_err(db).and_then(|s| parse(&s)))
        .collect::<Result<_, _>>()?;
    steps.sort_by_key(|s| StepName::ALL.iter().position(|n| *n == s.step));
    Ok(steps)
}
