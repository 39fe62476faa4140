//! SQLite backend of [`ResourceStore`]: one `function_resources` table, written through
//! [`SqliteStore::write`] so every edit bumps the change-feed revision in its transaction.

use super::{SqliteStore, db};
use crate::store::StoreError;
use crate::store::resources::{Edit, EditError, EditFn, FunctionView, ResourceStore, kind};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS function_resources (
    tenant TEXT NOT NULL, function TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (tenant, function, kind, key));
";

fn get(
    conn: &Connection,
    tenant: &str,
    function: &str,
    kind: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT json FROM function_resources WHERE tenant = ?1 AND function = ?2 AND kind = ?3 AND key = ?4",
        params![tenant, function, kind, key],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)
}

fn strings(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(db)?;
    let rows = stmt.query_map(args, |r| r.get(0)).map_err(db)?;
    rows.map(|r| r.map_err(db)).collect()
}

fn view(
    tx: &Transaction,
    tenant: &str,
    function: &str,
) -> Result<Option<FunctionView>, StoreError> {
    let exists = tx
        .query_row(
            "SELECT 1 FROM functions WHERE tenant = ?1 AND name = ?2",
            params![tenant, function],
            |_| Ok(()),
        )
        .optional()
        .map_err(db)?;
    if exists.is_none() {
        return Ok(None);
    }
    let versions = strings(
        tx,
        "SELECT version FROM versions WHERE tenant = ?1 AND name = ?2 AND num > 0 ORDER BY num",
        params![tenant, function],
    )?;
    let aliases = strings(
        tx,
        "SELECT key FROM function_resources WHERE tenant = ?1 AND function = ?2 AND kind = ?3 ORDER BY key",
        params![tenant, function, kind::ALIAS],
    )?;
    Ok(Some(FunctionView { versions, aliases }))
}

/// Removes the resources keyed by a qualifier (a deleted version or alias).
fn delete_qualified(
    tx: &Transaction,
    tenant: &str,
    function: &str,
    qualifier: &str,
) -> Result<(), StoreError> {
    for k in kind::QUALIFIED {
        tx.execute(
            "DELETE FROM function_resources WHERE tenant = ?1 AND function = ?2 AND kind = ?3 AND key = ?4",
            params![tenant, function, k, qualifier],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// In a function delete's transaction: removes every resource of the function.
pub(super) fn delete_function(
    tx: &Transaction,
    tenant: &str,
    function: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM function_resources WHERE tenant = ?1 AND function = ?2",
        params![tenant, function],
    )
    .map_err(db)?;
    Ok(())
}

/// The aliases that route to `version` (as primary or additional version).
fn aliases_using(
    conn: &Connection,
    tenant: &str,
    function: &str,
    version: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = strings(
        conn,
        "SELECT json FROM function_resources WHERE tenant = ?1 AND function = ?2 AND kind = ?3 ORDER BY key",
        params![tenant, function, kind::ALIAS],
    )?;
    let mut using = vec![];
    for json in rows {
        let a: crate::api::types::AliasConfiguration = serde_json::from_str(&json).map_err(db)?;
        let additional = a
            .routing_config
            .is_some_and(|r| r.additional_version_weights.contains_key(version));
        if a.function_version == version || additional {
            using.push(a.name);
        }
    }
    Ok(using)
}

/// In a version delete's transaction: `Conflict` while an alias routes to the version;
/// otherwise removes the resources keyed by it.
pub(super) fn delete_version(
    tx: &Transaction,
    tenant: &str,
    function: &str,
    version: &str,
) -> Result<(), StoreError> {
    if !aliases_using(tx, tenant, function, version)?.is_empty() {
        return Err(StoreError::Conflict);
    }
    delete_qualified(tx, tenant, function, version)
}

impl ResourceStore for SqliteStore {
    fn resource(
        &self,
        tenant: &str,
        function: &str,
        kind: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        get(&conn, tenant, function, kind, key)
    }

    fn resources(
        &self,
        tenant: &str,
        function: &str,
        kind: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare("SELECT key, json FROM function_resources WHERE tenant = ?1 AND function = ?2 AND kind = ?3 ORDER BY key")
            .map_err(db)?;
        let rows = stmt
            .query_map(params![tenant, function, kind], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    fn tenant_resources(
        &self,
        tenant: &str,
        kind: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare("SELECT function, key, json FROM function_resources WHERE tenant = ?1 AND kind = ?2 ORDER BY function, key")
            .map_err(db)?;
        let rows = stmt
            .query_map(params![tenant, kind], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    fn edit_resource(
        &self,
        tenant: &str,
        function: &str,
        kind: &str,
        key: &str,
        edit: &mut EditFn<'_>,
    ) -> Result<u64, EditError> {
        let mut rejected = None;
        let result = self.write(tenant, function, kind, |tx| {
            let view = view(tx, tenant, function)?.ok_or(StoreError::NotFound)?;
            let current = get(tx, tenant, function, kind, key)?;
            match edit(current.as_deref(), &view) {
                Ok(Edit::Put(json)) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO function_resources (tenant, function, kind, key, json) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![tenant, function, kind, key, json],
                    )
                    .map_err(db)?;
                }
                Ok(Edit::Delete) => {
                    tx.execute(
                        "DELETE FROM function_resources WHERE tenant = ?1 AND function = ?2 AND kind = ?3 AND key = ?4",
                        params![tenant, function, kind, key],
                    )
                    .map_err(db)?;
                    if kind == kind::ALIAS {
                        delete_qualified(tx, tenant, function, key)?;
                    }
                }
                Err(e) => {
                    rejected = Some(e);
                    // Any error rolls the transaction back; `rejected` says which.
                    return Err(StoreError::Conflict);
                }
            }
            Ok(())
        });
        match (result, rejected) {
            (Ok(((), rev)), _) => Ok(rev),
            (Err(_), Some(e)) => Err(EditError::Rejected(e)),
            (Err(StoreError::NotFound), None) => Err(EditError::FunctionNotFound),
            (Err(e), None) => Err(EditError::Store(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiError;
    use crate::store::MetadataStore;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.sqlite")).unwrap();
        (dir, s)
    }

    #[test]
    fn edits_need_the_function_and_bump_the_revision() {
        let (_d, s) = store();
        let put = &mut |_: Option<&str>, _: &FunctionView| Ok(Edit::Put("{}".into()));
        assert!(matches!(
            s.edit_resource("t", "f", kind::TAGS, "", put),
            Err(EditError::FunctionNotFound)
        ));
        s.conn
            .lock()
            .unwrap()
            .execute("INSERT INTO functions (tenant, name) VALUES ('t', 'f')", [])
            .unwrap();
        let before = s.revision().unwrap();
        let rev = s.edit_resource("t", "f", kind::TAGS, "", put).unwrap();
        assert_eq!(rev, before + 1);
        assert_eq!(
            s.resource("t", "f", kind::TAGS, "").unwrap().as_deref(),
            Some("{}")
        );
        let refuse = &mut |_: Option<&str>, _: &FunctionView| Err(ApiError::conflict("no"));
        assert!(matches!(
            s.edit_resource("t", "f", kind::TAGS, "", refuse),
            Err(EditError::Rejected(_))
        ));
        assert_eq!(s.revision().unwrap(), rev, "a refused edit writes nothing");
        s.delete("t", "f", None).unwrap();
        assert!(s.resources("t", "f", kind::TAGS).unwrap().is_empty());
    }

    #[test]
    fn the_change_feed_names_what_changed() {
        let (_d, s) = store();
        for f in ["f", "g"] {
            s.conn
                .lock()
                .unwrap()
                .execute("INSERT INTO functions (tenant, name) VALUES ('t', ?1)", [f])
                .unwrap();
        }
        let before = s.revision().unwrap();
        let put =
            |n: &'static str| move |_: Option<&str>, _: &FunctionView| Ok(Edit::Put(n.to_string()));
        s.edit_resource(
            "t",
            "f",
            kind::CONCURRENCY,
            "",
            &mut put(r#"{"ReservedConcurrentExecutions":2}"#),
        )
        .unwrap();
        s.edit_resource(
            "t",
            "g",
            kind::CONCURRENCY,
            "",
            &mut put(r#"{"ReservedConcurrentExecutions":3}"#),
        )
        .unwrap();
        let changes = s.changes_after(before, 10).unwrap();
        let seen: Vec<_> = changes
            .iter()
            .map(|c| (c.rev - before, c.kind.as_str(), c.key.as_str()))
            .collect();
        assert_eq!(
            seen,
            [(1, kind::CONCURRENCY, "f"), (2, kind::CONCURRENCY, "g")]
        );
        assert_eq!(s.changes_after(before, 1).unwrap().len(), 1);
        let all = s.tenant_resources("t", kind::CONCURRENCY).unwrap();
        assert_eq!(all.len(), 2);
        assert!(
            s.tenant_resources("other", kind::CONCURRENCY)
                .unwrap()
                .is_empty()
        );
    }
}
