//! Metadata store: functions and their versions, with the change feed (DESIGN.md
//! "Change feed"). The embedded backend is SQLite ([`sqlite::SqliteStore`]).

pub mod resources;
pub mod sqlite;
pub mod triggers;
mod txn;
pub mod workflow;

use crate::api::types::FunctionConfiguration;
pub use resources::{Edit, EditError, EditFn, FunctionView, ResourceStore};
use std::sync::Arc;
pub use triggers::{TriggerRow, TriggerStore};
use workflow::{StepRecord, WorkflowRecord};

/// One stored version (`$LATEST` or a number) of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    pub config: FunctionConfiguration,
    /// Hex SHA-256 of the code zip (the code store's key).
    pub code_sha256_hex: String,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("metadata store: {0}")]
    Backend(String),
}

/// Builds a published version's record from `$LATEST` and the new version number.
pub type MakeVersion = Arc<dyn Fn(&StoredVersion, u64) -> StoredVersion + Send + Sync>;

/// One write of an atomic [`MetadataStore::transact`].
#[derive(Clone)]
pub enum Op {
    /// A new function and its `$LATEST`; `Conflict` if the name is taken.
    CreateFunction(StoredVersion),
    /// Replaces the reported record of an existing version.
    PutVersion(StoredVersion),
    /// Publishes `$LATEST` as the next version (or reuses the newest if nothing changed); the
    /// version is recorded in workflow `workflow` when given (inserted earlier in the same
    /// transaction or before). With `route`, the version is made routable at once (its code
    /// is already in service).
    Publish {
        name: String,
        make: MakeVersion,
        workflow: Option<String>,
        route: bool,
    },
    /// Sets (or, with `None`, removes) what the router serves for `name:version`. A record equal
    /// to the current one (same RevisionId) changes nothing and bumps no revision.
    Route {
        name: String,
        version: String,
        record: Option<StoredVersion>,
    },
    /// Deletes a whole function: versions, routes, the timer triggers that target it.
    DeleteFunction { name: String },
    /// Deletes one published version and its route.
    DeleteVersion { name: String, version: String },
    /// Inserts or replaces a workflow record.
    PutWorkflow(WorkflowRecord),
    /// Inserts or replaces a step record.
    PutStep(StepRecord),
    /// Stores (or with `None` removes) a function resource document (no revision bump).
    PutResource {
        name: String,
        kind: String,
        key: String,
        json: Option<String>,
    },
    /// Creates a timer trigger (`Conflict` if the name is taken) or, with `json` `None`,
    /// deletes it and its tick records (`NotFound` if absent).
    PutTrigger {
        name: String,
        id: String,
        json: Option<String>,
    },
    /// Records a tick of trigger `name` (creation `id`) at `scheduled_ms`: `Conflict` if that
    /// tick was recorded already (another scheduler fired it), `NotFound` if the trigger is gone.
    /// `fired` false records a missed tick that was skipped.
    TriggerTick {
        name: String,
        id: String,
        scheduled_ms: i64,
        fired: bool,
    },
    /// Appends a message to the outbox (published to the queue by the relay after commit).
    Outbox {
        topic: String,
        payload: Vec<u8>,
        dedup_id: String,
    },
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::CreateFunction(v) => write!(f, "CreateFunction({})", v.config.function_name),
            Op::PutVersion(v) => write!(
                f,
                "PutVersion({}:{})",
                v.config.function_name, v.config.version
            ),
            Op::Publish { name, .. } => write!(f, "Publish({name})"),
            Op::Route {
                name,
                version,
                record,
            } => {
                write!(f, "Route({name}:{version}, {})", record.is_some())
            }
            Op::DeleteFunction { name } => write!(f, "DeleteFunction({name})"),
            Op::DeleteVersion { name, version } => write!(f, "DeleteVersion({name}:{version})"),
            Op::PutWorkflow(w) => write!(f, "PutWorkflow({})", w.id),
            Op::PutStep(s) => write!(f, "PutStep({}:{:?})", s.workflow_id, s.step),
            Op::PutResource {
                name, kind, key, ..
            } => write!(f, "PutResource({name}, {kind}, {key})"),
            Op::PutTrigger { name, json, .. } => {
                write!(f, "PutTrigger({name}, {})", json.is_some())
            }
            Op::TriggerTick {
                name, scheduled_ms, ..
            } => write!(f, "TriggerTick({name}, {scheduled_ms})"),
            Op::Outbox {
                topic, dedup_id, ..
            } => write!(f, "Outbox({topic}, {dedup_id})"),
        }
    }
}

/// One change-feed entry: what a committed write changed (`key` is the function name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub rev: u64,
    pub tenant: String,
    pub kind: String,
    pub key: String,
}

impl Op {
    /// The change-feed (kind, key) of an op that may change routable state: what it did, and
    /// the function it did it to.
    pub fn change(&self) -> Option<(&'static str, &str)> {
        match self {
            Op::CreateFunction(v) => Some(("create", &v.config.function_name)),
            Op::PutVersion(v) => Some(("version", &v.config.function_name)),
            Op::Publish { name, .. } => Some(("publish", name)),
            Op::Route { name, .. } => Some(("route", name)),
            Op::DeleteFunction { name } => Some(("delete", name)),
            Op::DeleteVersion { name, .. } => Some(("delete-version", name)),
            _ => None,
        }
    }
}

/// What a transaction did.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// The new change-feed revision, when routable state changed.
    pub revision: Option<u64>,
    /// Versions made by `Op::Publish`, in order.
    pub published: Vec<StoredVersion>,
    /// Whether any `Op::Outbox` was written (the relay should run).
    pub outbox: bool,
}

/// The metadata store seam. Every write bumps the change-feed revision in its transaction
/// and returns the new revision.
/// A function's other resources (aliases, URLs, policies, …) are in [`ResourceStore`].
pub trait MetadataStore: ResourceStore + TriggerStore + Send + Sync {
    /// Creates a function with its `$LATEST`; `Conflict` if the name is taken.
    fn create_function(&self, tenant: &str, latest: &StoredVersion) -> Result<u64, StoreError>;
    /// Replaces `$LATEST` of an existing function.
    fn put_latest(&self, tenant: &str, latest: &StoredVersion) -> Result<u64, StoreError>;
    /// Publishes `$LATEST` as the next version number, unless it equals the newest published
    /// version (then that one is returned). `make` turns `$LATEST` and the new number into the
    /// version's record.
    fn publish(
        &self,
        tenant: &str,
        name: &str,
        make: &dyn Fn(&StoredVersion, u64) -> StoredVersion,
    ) -> Result<(StoredVersion, u64), StoreError>;
    fn get(
        &self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredVersion>, StoreError>;
    /// `$LATEST` of each function, by name, after `after`, at most `limit`.
    fn list_latest(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, StoreError>;
    /// Every version of a function, `$LATEST` first, then by number.
    fn list_versions(&self, tenant: &str, name: &str) -> Result<Vec<StoredVersion>, StoreError>;
    /// Deletes a whole function (`version` None) or one published version.
    fn delete(&self, tenant: &str, name: &str, version: Option<&str>) -> Result<u64, StoreError>;
    /// Current change-feed revision.
    fn revision(&self) -> Result<u64, StoreError>;
    /// Change-feed entries with `rev > after`, oldest first, at most `limit`.
    fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError>;

    /// Applies every op in one transaction; nothing is written if one fails.
    fn transact(&self, tenant: &str, ops: &[Op]) -> Result<Committed, StoreError>;

    /// What the router serves for `name:version` (`None`: not routable, e.g. still Pending).
    fn route(
        &self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<StoredVersion>, StoreError>;

    fn workflow(&self, id: &str) -> Result<Option<WorkflowRecord>, StoreError>;

    /// Workflows, newest first, optionally of one function.
    fn workflows(
        &self,
        tenant: &str,
        function: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;

    /// The steps of a workflow that have a record, in step order.
    fn steps(&self, workflow_id: &str) -> Result<Vec<StepRecord>, StoreError>;
}
