//! Metadata store: functions and their versions, with the change feed (DESIGN.md
//! "Change feed"). The embedded backend is SQLite ([`sqlite::SqliteStore`]).

pub mod resources;
pub mod sqlite;

use crate::api::types::FunctionConfiguration;
pub use resources::{Edit, EditError, EditFn, FunctionView, ResourceStore};

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

/// The metadata store seam. Every write bumps the change-feed revision in its transaction
/// and returns the new revision.
/// A function's other resources (aliases, URLs, policies, …) are in [`ResourceStore`].
pub trait MetadataStore: ResourceStore + Send + Sync {
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
}
