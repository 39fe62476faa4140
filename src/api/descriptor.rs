//! The immutable *version descriptor* the router hands the agent with each invoke
//! (DESIGN.md "Router to agent protocol"). Instances are keyed by it.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything an agent needs to run one version of a function, without reading metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionDescriptor {
    /// Unqualified function ARN.
    pub function_arn: String,
    pub function_name: String,
    /// `$LATEST` or a version number.
    pub version: String,
    /// Hex SHA-256 of the code zip.
    pub code_sha256: String,
    pub runtime: String,
    pub handler: String,
    pub memory_mb: u32,
    pub timeout_secs: u32,
    pub environment: BTreeMap<String, String>,
    /// RevisionId of the configuration this descriptor was made from: a new one on every change.
    pub revision_id: String,
    /// Network access through the tenant's egress proxy (`VpcConfig` with subnets).
    #[serde(default)]
    pub egress: bool,
}

impl VersionDescriptor {
    /// The key instances are pooled by: distinct for any change of code or configuration.
    pub fn pool_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.function_arn, self.version, self.revision_id
        )
    }

    /// Base64 JSON, the form of the `x-hearth-version` header.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).expect("descriptor serializes");
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// Parses the `x-hearth-version` header.
    pub fn from_header(value: &str) -> Result<Self, String> {
        let json = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|e| format!("x-hearth-version: bad base64: {e}"))?;
        serde_json::from_slice(&json).map_err(|e| format!("x-hearth-version: bad JSON: {e}"))
    }
}

#[cfg(test)]
impl VersionDescriptor {
    /// A `provided` descriptor of function `f` at `version` for unit tests.
    pub(crate) fn for_tests(version: &str) -> VersionDescriptor {
        VersionDescriptor {
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            function_name: "f".into(),
            version: version.into(),
            code_sha256: "a".repeat(64),
            runtime: "provided".into(),
            handler: "h".into(),
            memory_mb: 128,
            timeout_secs: 3,
            environment: BTreeMap::new(),
            revision_id: "r".into(),
            egress: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let d = VersionDescriptor {
            environment: BTreeMap::from([("A".into(), "1".into())]),
            egress: true,
            ..VersionDescriptor::for_tests("$LATEST")
        };
        assert_eq!(VersionDescriptor::from_header(&d.to_header()).unwrap(), d);
        assert!(VersionDescriptor::from_header("!!").is_err());
        // Records from before `egress` existed still load (without egress).
        let mut old = serde_json::to_value(&d).unwrap();
        old.as_object_mut().unwrap().remove("egress");
        let old: VersionDescriptor = serde_json::from_value(old).unwrap();
        assert!(!old.egress);
    }
}
