//! Control service: the Lambda management API over the metadata store and code store, made
//! asynchronous by the workflow engine ([`workflow`]): create answers `State: Pending`, updates
//! answer `LastUpdateStatus: InProgress`, and the engine's steps bring them into service.

mod action;
pub mod client;
mod functions;
pub mod http_client;
pub mod internal;
pub mod provisioned;
pub mod routes;
pub mod server;
pub mod steps;
mod validate;
pub mod workflow;

mod aliases;
mod concurrency;
mod event_invoke;
pub mod limits;
mod policy;
mod resource_action;
mod resources;
mod tags;
mod triggers;
mod urls;

pub use action::{Action, decode_segment, is_management_path, query_param};
/// Pure parsers of untrusted management input, one per operation (fuzzed).
pub mod parse {
    pub use super::aliases::{parse_create_alias, parse_update_alias};
    pub use super::concurrency::parse_put_concurrency;
    pub use super::event_invoke::parse_event_invoke_config;
    pub use super::limits::parse_put_limits;
    pub use super::policy::parse_add_permission;
    pub use super::resource_action::query_params;
    pub use super::resources::parse_json;
    pub use super::tags::{parse_tag_resource, parse_untag_keys};
    pub use super::triggers::parse_create_trigger;
    pub use super::urls::{parse_create_url, parse_update_url};
}
pub use aliases::is_alias_name;
pub use client::ControlClient;
pub use resource_action::{Page, ResourceAction};
pub use triggers::TriggerAction;
pub use validate::RESERVED_ENV;

use crate::api::ApiError;
use crate::codestore::{LocalCodeStore, ZipLimits};
use crate::config::Config;
use crate::queue::outbox::Relay;
use crate::store::workflow::{StepName, WorkflowKind, WorkflowRecord};
use crate::store::{Committed, MetadataStore, Op, StoreError, StoredVersion};
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
    /// Publishes the outbox after commits.
    relay: Relay,
    /// Routers' acknowledgements of change-feed revisions.
    acks: Arc<routes::RouteAcks>,
}

impl Control {
    pub fn new(
        cfg: &Config,
        store: Arc<dyn MetadataStore>,
        code: LocalCodeStore,
        relay: Relay,
    ) -> Result<Self, StoreError> {
        let rev = store.revision()?;
        Ok(Control {
            store,
            code,
            zip_limits: cfg.zip_limits(),
            region: cfg.region.clone(),
            account: cfg.account_id.clone(),
            revision: watch::Sender::new(rev),
            relay,
            acks: Arc::default(),
        })
    }

    /// The immutable descriptor agents run a stored version by.
    pub fn descriptor(&self, v: &StoredVersion) -> crate::api::VersionDescriptor {
        let c = &v.config;
        crate::api::VersionDescriptor {
            function_arn: crate::api::names::function_arn(
                &self.region,
                &self.account,
                &c.function_name,
            ),
            function_name: c.function_name.clone(),
            version: c.version.clone(),
            code_sha256: v.code_sha256_hex.clone(),
            runtime: c.runtime.clone(),
            handler: c.handler.clone(),
            memory_mb: c.memory_size,
            timeout_secs: c.timeout,
            environment: c
                .environment
                .as_ref()
                .map(|e| e.variables.clone())
                .unwrap_or_default(),
            revision_id: c.revision_id.clone(),
            egress: c.vpc_config.egress(),
        }
    }

    /// Where routers acknowledge the revisions they have applied.
    pub fn route_acks(&self) -> &Arc<routes::RouteAcks> {
        &self.acks
    }

    /// Commits ops in one transaction, then wakes the outbox relay and publishes the new
    /// change-feed revision.
    pub async fn commit(&self, tenant: &str, ops: Vec<Op>) -> Result<Committed, StoreError> {
        let store = self.store.clone();
        let tenant = tenant.to_string();
        let done = tokio::task::spawn_blocking(move || store.transact(&tenant, &ops))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))??;
        if done.outbox {
            self.relay.notify();
        }
        if let Some(rev) = done.revision {
            self.committed(rev);
        }
        Ok(done)
    }

    /// The publish-route step: make the workflow's `$LATEST` revision and versions routable,
    /// then wait until every router has applied that change-feed revision.
    pub async fn publish_route(
        &self,
        w: &WorkflowRecord,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        let mut ops = Vec::new();
        let latest = self
            .store
            .get(&w.tenant, &w.function, "$LATEST")
            .map_err(|e| e.to_string())?;
        if w.kind != WorkflowKind::DeleteFunction {
            let latest = latest.ok_or("the function was deleted")?;
            if latest.config.revision_id == w.revision_id {
                ops.push(route_op(&latest));
            }
            for v in &w.versions {
                if let Some(rec) = self
                    .store
                    .get(&w.tenant, &w.function, v)
                    .map_err(|e| e.to_string())?
                {
                    ops.push(route_op(&rec));
                }
            }
        }
        let done = self
            .commit(&w.tenant, ops)
            .await
            .map_err(|e| e.to_string())?;
        let rev = match done.revision {
            Some(rev) => rev,
            None => self.store.revision().map_err(|e| e.to_string())?,
        };
        self.committed(rev);
        if self.acks.wait_all(rev, timeout).await {
            Ok(())
        } else {
            Err(format!(
                "routers did not acknowledge revision {rev} in time"
            ))
        }
    }

    /// Ops that record a finished workflow on the function: `Active` / `Successful`.
    pub fn finish_ops(&self, w: &WorkflowRecord) -> Vec<Op> {
        if w.kind == WorkflowKind::Provision {
            return self.provisioned_status_ops(w, "READY", None);
        }
        self.state_ops(w, |c| {
            c.state = "Active".into();
            c.state_reason = None;
            c.state_reason_code = None;
            c.last_update_status = "Successful".into();
            c.last_update_status_reason = None;
            c.last_update_status_reason_code = None;
        })
    }

    /// Ops that record a failed workflow: `Failed` with the step's reason.
    pub fn fail_ops(&self, w: &WorkflowRecord, step: StepName, error: &str) -> Vec<Op> {
        let code = match step {
            StepName::StoreCode => "InvalidZipFile",
            StepName::PrepareRuntime => "InvalidRuntime",
            _ => "InternalError",
        };
        if w.kind == WorkflowKind::Provision {
            return self.provisioned_status_ops(w, "FAILED", Some(error));
        }
        let creating = w.kind == WorkflowKind::CreateFunction;
        self.state_ops(w, |c| {
            if creating {
                c.state = "Failed".into();
                c.state_reason = Some(error.to_string());
                c.state_reason_code = Some(code.into());
            }
            c.last_update_status = "Failed".into();
            c.last_update_status_reason = Some(error.to_string());
            c.last_update_status_reason_code = Some(code.into());
        })
    }

    /// Rewrites the reported state of the workflow's `$LATEST` (if still the workflow's
    /// revision) and of its versions; a deleted function has nothing to update.
    fn state_ops(
        &self,
        w: &WorkflowRecord,
        f: impl Fn(&mut crate::api::types::FunctionConfiguration),
    ) -> Vec<Op> {
        let mut ops = Vec::new();
        if w.kind == WorkflowKind::DeleteFunction {
            return ops;
        }
        let names = std::iter::once("$LATEST".to_string()).chain(w.versions.iter().cloned());
        for v in names {
            let Ok(Some(mut rec)) = self.store.get(&w.tenant, &w.function, &v) else {
                continue;
            };
            if v == "$LATEST" && rec.config.revision_id != w.revision_id {
                continue;
            }
            f(&mut rec.config);
            ops.push(Op::PutVersion(rec));
        }
        ops
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

    /// Serves one management request. `base_url` (the public base URL) is used
    /// for `Code.Location` and `FunctionUrl`.
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
            Action::UpdateConfiguration { name } => self.update_configuration(&name, body).await,
            Action::Delete { name, qualifier } => self.delete(&name, qualifier.as_deref()).await,
            Action::Publish { name } => self.publish(&name, body).await,
            Action::ListVersions { name } => self.list_versions(&name),
            Action::Resource(r) => self.handle_resource(r, body, base_url),
            Action::PutProvisioned { name, qualifier } => {
                self.put_provisioned(&name, qualifier, &body).await
            }
            Action::GetProvisioned { name, qualifier } => self.get_provisioned(&name, qualifier),
            Action::DeleteProvisioned { name, qualifier } => {
                self.delete_provisioned(&name, qualifier).await
            }
            Action::ListProvisioned { name } => self.list_provisioned(&name),
            Action::Trigger(t) => self.handle_trigger(t, &body).await,
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

fn route_op(v: &StoredVersion) -> Op {
    Op::Route {
        name: v.config.function_name.clone(),
        version: v.config.version.clone(),
        record: Some(v.clone()),
    }
}

fn store_err(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "metadata store");
    ApiError::service(e.to_string())
}
