//! A function's resources beside its versions (aliases, reserved concurrency, URL configs,
//! event invoke configs, resource policies, tags): JSON documents keyed by
//! (tenant, function, kind, key). They live and die with the function: deleting the function
//! deletes them, and a version an alias routes to cannot be deleted.

use super::StoreError;
use crate::api::ApiError;

/// Resource kinds (the `kind` column) and what their `key` is.
pub mod kind {
    /// Key: the alias name.
    pub const ALIAS: &str = "alias";
    /// Key: empty (one per function).
    pub const CONCURRENCY: &str = "concurrency";
    /// Key: the alias qualifier, or `$LATEST` for the unqualified function.
    pub const URL: &str = "url";
    /// Key: the qualifier (`$LATEST`, a version or an alias).
    pub const EVENT_INVOKE: &str = "event-invoke";
    /// Key: the qualifier, or empty for the unqualified function.
    pub const POLICY: &str = "policy";
    /// Key: empty (one per function).
    pub const TAGS: &str = "tags";
    /// Key: the qualifier (a version or an alias).
    pub const PROVISIONED: &str = "provisioned";
    /// hearth's own per-function invocation limits (`{"RatePerSec": N}`); key: empty.
    pub const LIMITS: &str = "hearth-limits";
    /// Kinds keyed by a qualifier: deleted with the version or alias they name.
    pub const QUALIFIED: &[&str] = &[URL, EVENT_INVOKE, POLICY, PROVISIONED];
}

/// The function as an edit sees it, inside the edit's transaction.
#[derive(Debug, Clone, Default)]
pub struct FunctionView {
    /// Published version numbers.
    pub versions: Vec<String>,
    /// Alias names.
    pub aliases: Vec<String>,
}

impl FunctionView {
    /// Whether `q` names `$LATEST`, a published version or an alias of the function.
    pub fn has_qualifier(&self, q: &str) -> bool {
        q == "$LATEST"
            || self.versions.iter().any(|v| v == q)
            || self.aliases.iter().any(|a| a == q)
    }
}

/// What an edit does to its resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Store this JSON (create or replace).
    Put(String),
    /// Remove the resource (and, for an alias, what is keyed by its name).
    Delete,
}

/// Why an edit did not happen.
#[derive(Debug)]
pub enum EditError {
    /// The function does not exist.
    FunctionNotFound,
    /// The edit refused (its error is the answer).
    Rejected(ApiError),
    Store(StoreError),
}

/// An edit's decision: given the current JSON (if any) and the function, what to store.
pub type EditFn<'a> = dyn FnMut(Option<&str>, &FunctionView) -> Result<Edit, ApiError> + 'a;

/// Reads and edits a function's resources. Every edit is one transaction that bumps the
/// change-feed revision.
pub trait ResourceStore {
    fn resource(
        &self,
        tenant: &str,
        function: &str,
        kind: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Every resource of one kind of a function, by key.
    fn resources(
        &self,
        tenant: &str,
        function: &str,
        kind: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Every document of one kind across the tenant's functions, as (function, key, json).
    fn tenant_resources(
        &self,
        tenant: &str,
        kind: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Read-modify-write of one resource: `edit` sees the current JSON and the function and
    /// decides; returns the new change-feed revision.
    fn edit_resource(
        &self,
        tenant: &str,
        function: &str,
        kind: &str,
        key: &str,
        edit: &mut EditFn<'_>,
    ) -> Result<u64, EditError>;
}
