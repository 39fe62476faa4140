//! Workflow records (DESIGN.md "The control service"): one row per workflow and one per step,
//! written in the same transactions as the state they drive.

use serde::{Deserialize, Serialize};

/// What a workflow does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowKind {
    CreateFunction,
    UpdateCode,
    UpdateConfiguration,
    DeleteFunction,
    /// Put or delete a provisioned concurrency config (`qualifier`).
    Provision,
}

/// A step: a message to the module that owns the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// Re-verify the code package and store it by hash (code store).
    StoreCode,
    /// Make sure the function's runtime is prepared (runtimes).
    PrepareRuntime,
    /// Put the extracted package into the node caches (agents).
    WarmCache,
    /// Make the new configuration routable and wait until routers acknowledged it (router).
    PublishRoute,
    /// Stop instances of a deleted function and drop unreferenced code (agents, code store).
    Cleanup,
    /// Make agents hold the provisioned instances a config asks for (agents).
    Provision,
}

impl StepName {
    pub const ALL: [StepName; 6] = [
        StepName::StoreCode,
        StepName::PrepareRuntime,
        StepName::WarmCache,
        StepName::PublishRoute,
        StepName::Cleanup,
        StepName::Provision,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::StoreCode => "store_code",
            StepName::PrepareRuntime => "prepare_runtime",
            StepName::WarmCache => "warm_cache",
            StepName::PublishRoute => "publish_route",
            StepName::Cleanup => "cleanup",
            StepName::Provision => "provision",
        }
    }

    pub fn parse(s: &str) -> Option<StepName> {
        StepName::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// The queue topic that carries this step's commands.
    pub fn topic(self) -> String {
        format!("workflow.step.{}", self.as_str())
    }
}

impl WorkflowKind {
    /// The steps of a workflow of this kind, in order.
    pub fn steps(self) -> &'static [StepName] {
        use StepName::*;
        match self {
            WorkflowKind::CreateFunction | WorkflowKind::UpdateCode => {
                &[StoreCode, PrepareRuntime, WarmCache, PublishRoute]
            }
            WorkflowKind::UpdateConfiguration => &[PrepareRuntime, WarmCache, PublishRoute],
            WorkflowKind::DeleteFunction => &[PublishRoute, Cleanup],
            WorkflowKind::Provision => &[Provision],
        }
    }
}

/// Where a workflow or step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// One workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    pub id: String,
    pub tenant: String,
    pub function: String,
    pub kind: WorkflowKind,
    pub status: Status,
    /// Index into `kind.steps()` of the step under way (== len when finished).
    pub current: usize,
    /// `$LATEST` RevisionId this workflow brings into service (empty for deletes).
    pub revision_id: String,
    /// Published versions created with this workflow (`Publish: true`).
    pub versions: Vec<String>,
    /// Code package (hex SHA-256) the workflow deploys.
    pub code_sha256: String,
    /// The qualifier a provisioned concurrency workflow applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    pub error: Option<String>,
    /// Times a failed workflow was retried from its failed step.
    #[serde(default)]
    pub retries: u32,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl WorkflowRecord {
    pub fn current_step(&self) -> Option<StepName> {
        self.kind.steps().get(self.current).copied()
    }
}

/// One step of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub workflow_id: String,
    pub step: StepName,
    pub status: Status,
    pub attempts: u32,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub error: Option<String>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
