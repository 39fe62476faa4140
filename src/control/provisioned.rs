//! Provisioned concurrency: Put/Get/Delete/ListProvisionedConcurrencyConfigs. A put or delete
//! stores the config and starts a workflow whose `provision` step makes the agents hold the
//! instances (started with `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`); the status
//! goes from `IN_PROGRESS` to `READY` (or `FAILED`) when it ends. On a weighted alias the
//! instances are split across its versions by weight.

use super::resources::{constraint, parse_json, required};
use super::workflow::{new_workflow, start_ops};
use super::{Control, Reply, store_err};
use crate::api::{ApiError, VersionDescriptor};
use crate::store::Op;
use crate::store::resources::kind::PROVISIONED;
use crate::store::workflow::{WorkflowKind, WorkflowRecord};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most provisioned instances one config may ask for.
pub const MAX_PROVISIONED: i64 = 10_000;

/// PutProvisionedConcurrencyConfig body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutProvisionedRequest {
    pub provisioned_concurrent_executions: Option<i64>,
}

/// A stored provisioned concurrency config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedConfig {
    pub requested_provisioned_concurrent_executions: u32,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub last_modified: String,
    /// The workflow that last changed it (its status is this workflow's outcome).
    #[serde(default)]
    pub workflow: String,
}

/// Parses and validates a PutProvisionedConcurrencyConfig body (pure).
pub fn parse_put_provisioned(body: &[u8]) -> Result<u32, ApiError> {
    let req: PutProvisionedRequest = parse_json(body)?;
    let n = required(
        req.provisioned_concurrent_executions,
        "provisionedConcurrentExecutions",
    )?;
    if !(1..=MAX_PROVISIONED).contains(&n) {
        let rule = format!("Member must have value between 1 and {MAX_PROVISIONED}");
        return Err(constraint(n, "provisionedConcurrentExecutions", &rule));
    }
    Ok(n as u32)
}

/// The agents' key for one config.
pub fn config_key(function: &str, qualifier: &str) -> String {
    format!("{function}:{qualifier}")
}

/// Splits `n` instances between a primary and an additional version of weight `w`.
pub fn split(n: u32, w: f64) -> (u32, u32) {
    let extra = (n as f64 * w).round() as u32;
    (n - extra.min(n), extra.min(n))
}

impl Control {
    fn provisioned_qualifier(
        &self,
        name: &str,
        qualifier: Option<String>,
    ) -> Result<String, ApiError> {
        let q = qualifier.ok_or_else(|| {
            ApiError::invalid_parameter("Qualifier is required: a version number or an alias name.")
        })?;
        if q == "$LATEST" {
            return Err(ApiError::invalid_parameter(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
            ));
        }
        if q.bytes().all(|b| b.is_ascii_digit()) {
            self.lookup(name, Some(&q))?;
        } else {
            self.alias(name, &q)?;
        }
        Ok(q)
    }

    /// Whether `name:q` has a provisioned concurrency config.
    pub(super) fn has_provisioned(&self, name: &str, q: &str) -> Result<bool, ApiError> {
        Ok(self.provisioned_doc(name, q)?.is_some())
    }

    fn provisioned_doc(&self, name: &str, q: &str) -> Result<Option<ProvisionedConfig>, ApiError> {
        self.resource::<ProvisionedConfig>(name, PROVISIONED, q)
    }

    fn shown(&self, name: &str, q: &str, c: &ProvisionedConfig) -> serde_json::Value {
        let ready = if c.status == "READY" {
            c.requested_provisioned_concurrent_executions
        } else {
            0
        };
        let mut v = serde_json::json!({
            "RequestedProvisionedConcurrentExecutions": c.requested_provisioned_concurrent_executions,
            "AvailableProvisionedConcurrentExecutions": ready,
            "AllocatedProvisionedConcurrentExecutions": ready,
            "Status": c.status,
            "LastModified": c.last_modified,
            "FunctionArn": self.arn(name, Some(q)),
        });
        if let Some(r) = &c.status_reason {
            v["StatusReason"] = r.clone().into();
        }
        v
    }

    /// Stores the config (or its removal) with the workflow that applies it.
    async fn provision_workflow(
        &self,
        name: &str,
        q: &str,
        doc: Option<ProvisionedConfig>,
    ) -> Result<(), ApiError> {
        let mut wf = new_workflow(&self.account, name, WorkflowKind::Provision, "", "");
        wf.qualifier = Some(q.to_string());
        let json = doc
            .map(|mut d| {
                d.workflow = wf.id.clone();
                serde_json::to_string(&d)
            })
            .transpose()
            .map_err(|e| ApiError::service(e.to_string()))?;
        let mut ops = vec![Op::PutResource {
            name: name.into(),
            kind: PROVISIONED.into(),
            key: q.into(),
            json,
        }];
        ops.extend(start_ops(&wf));
        self.commit(&self.account, ops).await.map_err(store_err)?;
        Ok(())
    }

    pub(super) async fn put_provisioned(
        &self,
        name: &str,
        qualifier: Option<String>,
        body: &[u8],
    ) -> Result<Reply, ApiError> {
        let n = parse_put_provisioned(body)?;
        let q = self.provisioned_qualifier(name, qualifier)?;
        let doc = ProvisionedConfig {
            requested_provisioned_concurrent_executions: n,
            status: "IN_PROGRESS".into(),
            status_reason: None,
            last_modified: super::functions::now_last_modified(),
            workflow: String::new(),
        };
        self.provision_workflow(name, &q, Some(doc.clone())).await?;
        let mut shown = self.shown(name, &q, &doc);
        if let Some(o) = shown.as_object_mut() {
            o.remove("FunctionArn");
        }
        Reply::json(StatusCode::ACCEPTED, shown)
    }

    pub(super) fn get_provisioned(
        &self,
        name: &str,
        qualifier: Option<String>,
    ) -> Result<Reply, ApiError> {
        let q = self.provisioned_qualifier(name, qualifier)?;
        let doc = self.provisioned_doc(name, &q)?.ok_or_else(|| {
            ApiError::new_provisioned_not_found(&format!(
                "No Provisioned Concurrency Config found for this function: {}",
                self.arn(name, Some(&q))
            ))
        })?;
        let mut shown = self.shown(name, &q, &doc);
        if let Some(o) = shown.as_object_mut() {
            o.remove("FunctionArn");
        }
        Reply::json(StatusCode::OK, shown)
    }

    pub(super) async fn delete_provisioned(
        &self,
        name: &str,
        qualifier: Option<String>,
    ) -> Result<Reply, ApiError> {
        let q = self.provisioned_qualifier(name, qualifier)?;
        if self.provisioned_doc(name, &q)?.is_none() {
            return Err(ApiError::new_provisioned_not_found(&format!(
                "No Provisioned Concurrency Config found for this function: {}",
                self.arn(name, Some(&q))
            )));
        }
        self.provision_workflow(name, &q, None).await?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }

    pub(super) fn list_provisioned(&self, name: &str) -> Result<Reply, ApiError> {
        self.require_function(name)?;
        let configs: Vec<_> = self
            .resources_of::<ProvisionedConfig>(name, PROVISIONED)?
            .into_iter()
            .map(|(q, c)| self.shown(name, &q, &c))
            .collect();
        Reply::json(
            StatusCode::OK,
            serde_json::json!({ "ProvisionedConcurrencyConfigs": configs }),
        )
    }

    /// Ops recording a provisioning workflow's outcome on its config (if the config is still
    /// the one this workflow applied).
    pub(super) fn provisioned_status_ops(
        &self,
        w: &WorkflowRecord,
        status: &str,
        reason: Option<&str>,
    ) -> Vec<Op> {
        let Some(q) = w.qualifier.as_deref() else {
            return vec![];
        };
        let Ok(Some(mut doc)) = self.provisioned_doc(&w.function, q) else {
            return vec![];
        };
        if doc.workflow != w.id {
            return vec![];
        }
        doc.status = status.into();
        doc.status_reason = reason.map(str::to_string);
        let json = serde_json::to_string(&doc).ok();
        vec![Op::PutResource {
            name: w.function.clone(),
            kind: PROVISIONED.into(),
            key: q.into(),
            json,
        }]
    }

    /// Re-applies every `READY` config to a fresh agent (a restart starts with no instances).
    pub async fn restore_provisioned(
        &self,
        agent: &dyn crate::agent::AgentClient,
    ) -> Result<usize, String> {
        let mut restored = 0;
        for f in self.all_functions()? {
            let name = &f.config.function_name;
            let configs = self
                .resources_of::<ProvisionedConfig>(name, PROVISIONED)
                .map_err(|e| e.message)?;
            for (q, _) in configs.into_iter().filter(|(_, c)| c.status == "READY") {
                let targets = self.provision_targets(name, &q)?;
                restored += agent.provision(&config_key(name, &q), targets).await?;
            }
        }
        Ok(restored)
    }

    /// `$LATEST` of every function of this tenant, read page by page.
    fn all_functions(&self) -> Result<Vec<crate::store::StoredVersion>, String> {
        let mut all = Vec::new();
        loop {
            let after = all
                .last()
                .map(|f: &crate::store::StoredVersion| f.config.function_name.clone());
            let page = self
                .store
                .list_latest(&self.account, after.as_deref(), 100)
                .map_err(|e| e.to_string())?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// Code packages (hex SHA-256) of every version of every function of this tenant whose
    /// zip is at most `max_bytes`: what an agent preloads when it starts serving the tenant.
    pub fn small_packages(&self, max_bytes: u64) -> Result<Vec<String>, String> {
        let mut out = std::collections::BTreeSet::new();
        for f in self.all_functions()? {
            let versions = self
                .store
                .list_versions(&self.account, &f.config.function_name);
            for v in versions.map_err(|e| e.to_string())? {
                if v.config.code_size <= max_bytes {
                    out.insert(v.code_sha256_hex);
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// What the provision step asks the agents for: (version, instances) per version of the
    /// config's qualifier; empty when the config was deleted.
    pub fn provision_targets(
        &self,
        function: &str,
        q: &str,
    ) -> Result<Vec<(Arc<VersionDescriptor>, usize)>, String> {
        let Some(doc) = self.provisioned_doc(function, q).map_err(|e| e.message)? else {
            return Ok(vec![]);
        };
        let n = doc.requested_provisioned_concurrent_executions;
        let version = |v: &str| -> Result<Arc<VersionDescriptor>, String> {
            let rec = self
                .store
                .route(&self.account, function, v)
                .map_err(|e| e.to_string())?;
            let rec = rec.ok_or_else(|| format!("version {v} of {function} is not in service"))?;
            Ok(Arc::new(self.descriptor(&rec)))
        };
        if q.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(vec![(version(q)?, n as usize)]);
        }
        let alias = self.alias(function, q).map_err(|e| e.message)?;
        let weights = alias
            .routing_config
            .unwrap_or_default()
            .additional_version_weights;
        let mut targets = vec![];
        match weights.into_iter().next() {
            Some((extra, w)) => {
                let (a, b) = split(n, w);
                targets.push((version(&alias.function_version)?, a as usize));
                targets.push((version(&extra)?, b as usize));
            }
            None => targets.push((version(&alias.function_version)?, n as usize)),
        }
        Ok(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_splits() {
        assert_eq!(
            parse_put_provisioned(br#"{"ProvisionedConcurrentExecutions": 3}"#).unwrap(),
            3
        );
        assert!(parse_put_provisioned(br#"{"ProvisionedConcurrentExecutions": 0}"#).is_err());
        assert!(parse_put_provisioned(br#"{"ProvisionedConcurrentExecutions": "3"}"#).is_err());
        assert!(parse_put_provisioned(b"{}").is_err());
        assert_eq!(split(10, 0.1), (9, 1));
        assert_eq!(split(4, 0.5), (2, 2));
        assert_eq!(split(3, 0.0), (3, 0));
        assert_eq!(split(3, 1.0), (0, 3));
    }
}
