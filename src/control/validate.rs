//! Cheap validation of management input, with Lambda's error wording.

use crate::api::ApiError;
use crate::runtimes;
use base64::Engine;
use std::collections::BTreeMap;

/// Environment variable names the platform sets; user configuration cannot override them.
pub const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Largest total size of a function's environment (keys and values), as Lambda.
const MAX_ENV_BYTES: usize = 4096;

fn constraint(value: impl std::fmt::Display, field: &str, rule: &str) -> ApiError {
    ApiError::invalid_parameter(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"
    ))
}

pub fn memory_size(v: Option<i64>, default: u32) -> Result<u32, ApiError> {
    match v {
        None => Ok(default),
        Some(m) if m < 128 => Err(constraint(
            m,
            "memorySize",
            "Member must have value greater than or equal to 128",
        )),
        Some(m) if m > 10240 => Err(constraint(
            m,
            "memorySize",
            "Member must have value less than or equal to 10240",
        )),
        Some(m) => Ok(m as u32),
    }
}

pub fn timeout(v: Option<i64>, default: u32) -> Result<u32, ApiError> {
    match v {
        None => Ok(default),
        Some(t) if t < 1 => Err(constraint(
            t,
            "timeout",
            "Member must have value greater than or equal to 1",
        )),
        Some(t) if t > 900 => Err(constraint(
            t,
            "timeout",
            "Member must have value less than or equal to 900",
        )),
        Some(t) => Ok(t as u32),
    }
}

pub fn runtime(v: Option<&str>) -> Result<String, ApiError> {
    let rt = v.ok_or_else(|| {
        ApiError::invalid_parameter("Runtime is required for .zip deployment packages.")
    })?;
    if !runtimes::is_supported(rt) {
        return Err(ApiError::invalid_parameter(format!(
            "Value {rt} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            runtimes::SUPPORTED.join(", ")
        )));
    }
    Ok(rt.to_string())
}

pub fn handler(v: Option<&str>, runtime: &str) -> Result<String, ApiError> {
    match v {
        None if runtime.starts_with("provided") => Ok(String::new()),
        None => Err(ApiError::invalid_parameter(format!(
            "Handler is required for runtime {runtime}."
        ))),
        Some(h) if h.len() > 128 || h.is_empty() || h.chars().any(char::is_whitespace) => {
            Err(constraint(
                h,
                "handler",
                "Member must satisfy regular expression pattern: [^\\s]+ and have length at most 128",
            ))
        }
        Some(h) => Ok(h.to_string()),
    }
}

pub fn description(v: Option<&str>) -> Result<String, ApiError> {
    let d = v.unwrap_or("");
    if d.chars().count() > 256 {
        return Err(constraint(
            "...",
            "description",
            "Member must have length less than or equal to 256",
        ));
    }
    Ok(d.to_string())
}

pub fn environment(vars: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let reserved: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|k| RESERVED_ENV.contains(k))
        .collect();
    if !reserved.is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have \
             provided contains reserved keys that are currently not supported for modification. Reserved keys used \
             in this request: {}",
            reserved.join(", ")
        )));
    }
    for key in vars.keys() {
        let mut bytes = key.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
        if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(constraint(
                key,
                "environment.variables",
                "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+",
            ));
        }
    }
    let size: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ENV_BYTES {
        return Err(ApiError::invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have \
             provided exceeded the 4KB limit. String measured: {size} bytes"
        )));
    }
    Ok(())
}

/// Refuses what hearth does not run yet, clearly.
pub fn unsupported(
    package_type: Option<&str>,
    architectures: Option<&[String]>,
    layers: Option<&[String]>,
) -> Result<(), ApiError> {
    if package_type.is_some_and(|p| p != "Zip") {
        return Err(ApiError::invalid_parameter(
            "PackageType Image is not supported by hearth; deploy a .zip package.",
        ));
    }
    if let Some(archs) = architectures
        && (archs.iter().any(|a| a != "x86_64") || archs.len() > 1)
    {
        return Err(ApiError::invalid_parameter(
            "Only the x86_64 architecture is supported by hearth.",
        ));
    }
    if layers.is_some_and(|l| !l.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "Layers are not supported by hearth yet.",
        ));
    }
    Ok(())
}

/// Lambda's bounds of `VpcConfig`: subnets, security groups, and the length of each id.
const MAX_SUBNETS: usize = 16;
const MAX_SECURITY_GROUPS: usize = 5;
const MAX_VPC_ID_LEN: usize = 1024;

/// `VpcConfig` of create/update: non-empty `SubnetIds` turn egress on, empty ones off.
pub fn vpc_config(
    v: Option<&crate::api::types::VpcConfig>,
) -> Result<crate::api::types::VpcConfigResponse, ApiError> {
    let Some(v) = v else {
        return Ok(Default::default());
    };
    for (ids, field, max) in [
        (&v.subnet_ids, "vpcConfig.subnetIds", MAX_SUBNETS),
        (
            &v.security_group_ids,
            "vpcConfig.securityGroupIds",
            MAX_SECURITY_GROUPS,
        ),
    ] {
        if ids.len() > max {
            return Err(constraint(
                format!("{ids:?}"),
                field,
                &format!("Member must have length less than or equal to {max}"),
            ));
        }
        if let Some(bad) = ids
            .iter()
            .find(|id| id.is_empty() || id.len() > MAX_VPC_ID_LEN)
        {
            return Err(constraint(
                bad,
                field,
                &format!("Member must have length between 1 and {MAX_VPC_ID_LEN}"),
            ));
        }
    }
    let on = !v.subnet_ids.is_empty();
    Ok(crate::api::types::VpcConfigResponse {
        subnet_ids: v.subnet_ids.clone(),
        security_group_ids: if on {
            v.security_group_ids.clone()
        } else {
            vec![]
        },
        vpc_id: if on {
            crate::api::types::EGRESS_VPC_ID.into()
        } else {
            String::new()
        },
    })
}

/// Decodes `ZipFile` (base64 in the JSON body).
pub fn zip_file(b64: Option<&str>, s3: bool, image: bool) -> Result<Vec<u8>, ApiError> {
    if image {
        return Err(ApiError::invalid_parameter(
            "ImageUri is not supported by hearth; deploy a .zip package.",
        ));
    }
    if s3 {
        return Err(ApiError::invalid_parameter(
            "S3 code locations are not supported by hearth; upload the package as ZipFile.",
        ));
    }
    let b64 = b64.ok_or_else(|| ApiError::invalid_parameter("Code.ZipFile is required."))?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| ApiError::invalid_parameter(format!("ZipFile is not valid base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpc_config_bounds() {
        let vpc = |subnets: usize, groups: usize| crate::api::types::VpcConfig {
            subnet_ids: vec!["subnet-1".into(); subnets],
            security_group_ids: vec!["sg-1".into(); groups],
            ipv6_allowed_for_dual_stack: None,
        };
        let on = vpc_config(Some(&vpc(2, 1))).unwrap();
        assert!(on.egress());
        assert_eq!(on.vpc_id, crate::api::types::EGRESS_VPC_ID);
        let off = vpc_config(Some(&vpc(0, 1))).unwrap();
        assert!(!off.egress() && off.vpc_id.is_empty() && off.security_group_ids.is_empty());
        assert!(vpc_config(Some(&vpc(17, 1))).is_err());
        assert!(vpc_config(Some(&vpc(1, 6))).is_err());
        let mut long = vpc(1, 0);
        long.subnet_ids[0] = "x".repeat(1025);
        assert!(vpc_config(Some(&long)).is_err());
        long.subnet_ids[0] = String::new();
        assert!(vpc_config(Some(&long)).is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(memory_size(None, 128).unwrap(), 128);
        assert!(
            memory_size(Some(127), 128)
                .unwrap_err()
                .message
                .contains("memorySize")
        );
        assert!(memory_size(Some(10241), 128).is_err());
        assert!(timeout(Some(0), 3).unwrap_err().message.contains("timeout"));
        assert!(timeout(Some(901), 3).is_err());
        assert_eq!(timeout(Some(900), 3).unwrap(), 900);
    }

    #[test]
    fn env_rules() {
        let m = |k: &str| BTreeMap::from([(k.to_string(), "v".to_string())]);
        assert!(
            environment(&m("AWS_REGION"))
                .unwrap_err()
                .message
                .contains("AWS_REGION")
        );
        assert!(environment(&m("1BAD")).is_err());
        assert!(environment(&m("GOOD_1")).is_ok());
        assert!(environment(&BTreeMap::from([("BIG".to_string(), "x".repeat(5000))])).is_err());
    }

    #[test]
    fn runtimes_listed() {
        let e = runtime(Some("nodejs20.x")).unwrap_err();
        assert!(e.message.contains("python3.11") && e.message.contains("provided.al2023"));
    }
}
