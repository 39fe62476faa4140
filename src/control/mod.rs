//! Control service: the Lambda management API over the metadata store and code store.
//!
//! Until the workflow engine arrives (a later issue), create and update finish before they
//! answer and report `State: Active` / `LastUpdateStatus: Successful`.

mod action;
mod functions;
mod validate;

mod aliases;
mod concurrency;
mod event_invoke;
mod policy;
mod resource_action;
mod resources;
mod tags;
mod urls;

pub use action::{Action, decode_segment, is_management_path, query_param};
/// Pure parsers of untrusted management input, one per operation (fuzzed).
pub mod parse {
    pub use super::aliases::{parse_create_alias, parse_update_alias};
    pub use super::concurrency::parse_put_concurrency;
    pub use super::event_invoke::parse_event_invoke_config;
    pub use super::policy::parse_add_permission;
    pub use super::resource_action::query_params;
    pub use super::resources::parse_json;
    pub use super::tags::{parse_tag_resource, parse_untag_keys};
    pub use super::urls::{parse_create_url, parse_update_url};
}
pub use aliases::is_alias_name;
pub use resource_action::{Page, ResourceAction};
pub use validate::RESERVED_ENV;

use crate::api::ApiError;
use crate::codestore::{LocalCodeStore, ZipLimits};
use crate::config::Config;
use crate::store::{MetadataStore, StoreError};
use bytes::Bytes;
use http::StatusCode;
use std::sync::Arc;
use tokio::sync::watch;

/// A management answer: status and JSON body (empty for 204).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<serde_json::Value>,
}

impl Reply {
    fn json(status: StatusCode, body: impl serde::Serialize) -> Result<Reply, ApiError> {
        let body = serde_json::to_value(body).map_err(|e| ApiError::service(e.to_string()))?;
        Ok(Reply {
            status,
            body: Some(body),
        })
    }
    fn empty(status: StatusCode) -> Reply {
        Reply { status, body: None }
    }
}

/// The control service's state.
pub struct Control {
    store: Arc<dyn MetadataStore>,
    code: LocalCodeStore,
    zip_limits: ZipLimits,
    region: String,
    account: String,
    /// Change-feed revision, bumped after every committed write (in-process feed).
    revision: watch::Sender<u64>,
}

impl Control {
    pub fn new(
        cfg: &Config,
        store: Arc<dyn MetadataStore>,
        code: LocalCodeStore,
    ) -> Result<Self, StoreError> {
        let rev = store.revision()?;
        Ok(Control {
            store,
            code,
            zip_limits: cfg.zip_limits(),
            region: cfg.region.clone(),
            account: cfg.account_id.clone(),
            revision: watch::Sender::new(rev),
        })
    }

    /// Follows the change feed: the latest committed revision.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    pub fn code_store(&self) -> &LocalCodeStore {
        &self.code
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Serves one management request. `base_url` (scheme and host the client used) is used
    /// for `Code.Location`.
    pub async fn handle(
        &self,
        action: Action,
        body: Bytes,
        base_url: &str,
    ) -> Result<Reply, ApiError> {
        match action {
            Action::Create => self.create(body).await,
            Action::List { marker, max_items } => self.list(marker, max_items),
            Action::Get { name, qualifier } => self.get(&name, qualifier.as_deref(), base_url),
            Action::GetConfiguration { name, qualifier } => {
                self.get_configuration(&name, qualifier.as_deref())
            }
            Action::UpdateCode { name } => self.update_code(&name, body).await,
            Action::UpdateConfiguration { name } => self.update_configuration(&name, body),
            Action::Delete { name, qualifier } => self.delete(&name, qualifier.as_deref()),
            Action::Publish { name } => self.publish(&name, body),
            Action::ListVersions { name } => self.list_versions(&name),
            Action::Resource(r) => self.handle_resource(r, body, base_url),
        }
    }

    fn committed(&self, rev: u64) {
        self.revision.send_if_modified(|cur| {
            let newer = rev > *cur;
            if newer {
                *cur = rev;
            }
            newer
        });
    }
}

fn store_err(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "metadata store");
    ApiError::service(e.to_string())
}
