//! Step side effects. Each is idempotent: running it twice leaves exactly what running it once
//! does (content-addressed code, ensure-style runtime and cache fills, route records compared by
//! RevisionId, instance retirement by function).

use super::Control;
use crate::agent::AgentClient;
use crate::store::workflow::{StepName, WorkflowRecord};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A step failed; `retryable` failures are tried again with backoff before the workflow fails.
#[derive(Debug, Clone)]
pub struct StepError {
    pub message: String,
    pub retryable: bool,
}

impl StepError {
    fn fatal(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: false,
        }
    }
    fn retry(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: true,
        }
    }
}

/// What the steps reach: the agent seam and the runtimes.
pub struct Steps {
    pub agent: Arc<dyn AgentClient>,
    pub runtimes_dir: PathBuf,
    pub python: PathBuf,
    /// How long route publication waits for routers.
    pub ack_timeout: Duration,
}

impl Steps {
    pub async fn run(
        &self,
        control: &Control,
        w: &WorkflowRecord,
        step: StepName,
    ) -> Result<(), StepError> {
        match step {
            StepName::StoreCode => verify_code(control, &w.code_sha256).await,
            StepName::PrepareRuntime => self.prepare_runtime(control, w).await,
            StepName::WarmCache => self
                .agent
                .prefetch(&w.code_sha256)
                .await
                .map_err(StepError::retry),
            StepName::PublishRoute => control
                .publish_route(w, self.ack_timeout)
                .await
                .map_err(StepError::retry),
            StepName::Provision => self.provision(control, w).await,
            StepName::Cleanup => {
                let arn = crate::api::names::function_arn(
                    control.region(),
                    control.account(),
                    &w.function,
                );
                self.agent.retire_function(&arn).await;
                Ok(())
            }
        }
    }

    /// Makes the agents hold what the config asks for (or release it), keyed by the config.
    async fn provision(&self, control: &Control, w: &WorkflowRecord) -> Result<(), StepError> {
        let q = w
            .qualifier
            .as_deref()
            .ok_or_else(|| StepError::fatal("no qualifier"))?;
        let targets = control
            .provision_targets(&w.function, q)
            .map_err(StepError::fatal)?;
        let wanted: usize = targets.iter().map(|(_, n)| n).sum();
        let key = super::provisioned::config_key(&w.function, q);
        let got = self
            .agent
            .provision(&key, targets)
            .await
            .map_err(StepError::retry)?;
        if got < wanted {
            return Err(StepError::retry(format!(
                "{got} of {wanted} provisioned instances are ready"
            )));
        }
        Ok(())
    }

    async fn prepare_runtime(
        &self,
        control: &Control,
        w: &WorkflowRecord,
    ) -> Result<(), StepError> {
        let latest = control
            .store()
            .get(&w.tenant, &w.function, "$LATEST")
            .map_err(|e| StepError::retry(e.to_string()))?
            .ok_or_else(|| StepError::fatal("the function was deleted"))?;
        let (dir, python, rt) = (
            self.runtimes_dir.clone(),
            self.python.clone(),
            latest.config.runtime,
        );
        tokio::task::spawn_blocking(move || crate::runtimes::ensure(&dir, &python, &rt))
            .await
            .map_err(|e| StepError::retry(e.to_string()))?
            .map_err(|e| StepError::retry(e.to_string()))
    }
}

/// The stored package is there and hashes to its name.
async fn verify_code(control: &Control, sha: &str) -> Result<(), StepError> {
    let (code, sha) = (control.code_store().clone(), sha.to_string());
    tokio::task::spawn_blocking(move || match code.get(&sha) {
        Ok(bytes) if crate::codestore::sha256_hex(&bytes) == sha => Ok(()),
        Ok(_) => Err(StepError::fatal(format!("code package {sha} is corrupt"))),
        Err(e) => Err(StepError::fatal(format!(
            "code package {sha} is missing: {e}"
        ))),
    })
    .await
    .map_err(|e| StepError::retry(e.to_string()))?
}
