//! Lambda management API JSON shapes (rest-json, PascalCase; blobs are base64 strings).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod resources;
pub use resources::*;

/// `FunctionConfiguration`, as returned by create, get, update and publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    pub function_name: String,
    /// Qualified with the version for published versions, unqualified for `$LATEST`.
    pub function_arn: String,
    pub runtime: String,
    pub role: String,
    pub handler: String,
    pub code_size: u64,
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    /// `2024-01-01T00:00:00.000+0000`.
    pub last_modified: String,
    /// Base64 SHA-256 of the zip.
    pub code_sha256: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentResponse>,
    pub revision_id: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason_code: Option<String>,
    pub last_update_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason_code: Option<String>,
    pub package_type: String,
    pub architectures: Vec<String>,
    pub ephemeral_storage: EphemeralStorage,
    pub tracing_config: TracingConfig,
    /// Subnets on means egress through the tenant's proxy (records without it load as off).
    #[serde(default)]
    pub vpc_config: VpcConfigResponse,
}

/// `VpcConfig` in FunctionConfiguration. hearth has no VPCs: non-empty `SubnetIds` turn on
/// egress through the tenant's proxy, and `VpcId` is [`EGRESS_VPC_ID`] then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VpcConfigResponse {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub vpc_id: String,
}

/// The `VpcId` a function with egress reports.
pub const EGRESS_VPC_ID: &str = "hearth-egress";

impl VpcConfigResponse {
    /// Whether the function reaches out through the egress proxy.
    pub fn egress(&self) -> bool {
        !self.subnet_ids.is_empty()
    }
}

/// `VpcConfig` in create/update requests.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcConfig {
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub ipv6_allowed_for_dual_stack: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentResponse {
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorage {
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TracingConfig {
    pub mode: String,
}

/// `Environment` in create/update requests.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// `Code` in CreateFunction.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCode {
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<String>,
    pub image_uri: Option<String>,
}

/// CreateFunction request body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionRequest {
    pub function_name: Option<String>,
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub code: Option<FunctionCode>,
    pub description: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    #[serde(default)]
    pub publish: bool,
    pub environment: Option<Environment>,
    pub package_type: Option<String>,
    pub architectures: Option<Vec<String>>,
    pub layers: Option<Vec<String>>,
    pub tags: Option<BTreeMap<String, String>>,
    pub vpc_config: Option<VpcConfig>,
}

/// UpdateFunctionCode request body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionCodeRequest {
    pub zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    pub image_uri: Option<String>,
    #[serde(default)]
    pub publish: bool,
    #[serde(default)]
    pub dry_run: bool,
    pub revision_id: Option<String>,
    pub architectures: Option<Vec<String>>,
}

/// UpdateFunctionConfiguration request body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionConfigurationRequest {
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    pub environment: Option<Environment>,
    pub revision_id: Option<String>,
    pub layers: Option<Vec<String>>,
    pub vpc_config: Option<VpcConfig>,
}

/// PublishVersion request body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishVersionRequest {
    pub code_sha256: Option<String>,
    pub description: Option<String>,
    pub revision_id: Option<String>,
}
