//! Function resource handlers: create, get, list, update code/configuration, publish, delete.

use super::workflow::{new_workflow, start_ops};
use super::{Control, Reply, store_err, validate};
use crate::api::ApiError;
use crate::api::names::function_arn;
use crate::api::types::*;
use crate::codestore;
use crate::store::resources::kind::TAGS;
use crate::store::workflow::WorkflowKind;
use crate::store::{MakeVersion, Op, StoreError, StoredVersion};
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;
use std::sync::Arc;

const LATEST: &str = "$LATEST";

fn parse_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_content(format!("Could not parse request body: {e}")))
}

/// `2024-01-01T00:00:00.000+0000`, as Lambda writes LastModified.
pub fn now_last_modified() -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn base64_sha(hex_sha: &str) -> String {
    let raw = hex::decode(hex_sha).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

impl Control {
    fn not_found(&self, name: &str, qualifier: Option<&str>) -> ApiError {
        let arn = function_arn(&self.region, &self.account, name);
        match qualifier {
            Some(q) => ApiError::not_found(format!("Function not found: {arn}:{q}")),
            None => ApiError::not_found(format!("Function not found: {arn}")),
        }
    }

    /// Reads one version; 404 when the function or the version does not exist.
    pub fn lookup(&self, name: &str, qualifier: Option<&str>) -> Result<StoredVersion, ApiError> {
        let alias_target;
        let version = match qualifier {
            // An alias names the version it points to (GetFunction, GetFunctionConfiguration).
            Some(q) if super::is_alias_name(q) => {
                alias_target = self.alias(name, q)?.function_version;
                alias_target.as_str()
            }
            q => q.unwrap_or(LATEST),
        };
        self.store
            .get(&self.account, name, version)
            .map_err(store_err)?
            .ok_or_else(|| self.not_found(name, qualifier))
    }

    /// Validates and stores a zip for `runtime`; returns (hex sha, size).
    async fn store_zip(&self, zip: Vec<u8>, runtime: &str) -> Result<(String, u64), ApiError> {
        let limits = self.zip_limits;
        let code = self.code.clone();
        let require_bootstrap = runtime.starts_with("provided");
        tokio::task::spawn_blocking(move || {
            if zip.len() as u64 > limits.max_zipped {
                return Err(ApiError::too_large(format!(
                    "Unzipped size must be smaller than {} bytes",
                    limits.max_unpacked
                )));
            }
            codestore::validate_zip(&zip, &limits, require_bootstrap).map_err(|e| {
                ApiError::invalid_parameter(format!("Could not unzip uploaded file: {e}"))
            })?;
            let sha = code
                .put(&zip)
                .map_err(|e| ApiError::service(format!("code store: {e}")))?;
            Ok((sha, zip.len() as u64))
        })
        .await
        .map_err(|e| ApiError::service(e.to_string()))?
    }

    pub(super) async fn create(&self, body: Bytes) -> Result<Reply, ApiError> {
        let req: CreateFunctionRequest = parse_body(&body)?;
        let name = req.function_name.clone().unwrap_or_default();
        if !crate::api::names::valid_name(&name) {
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: [a-zA-Z0-9-_]{{1,64}}"
            )));
        }
        validate::unsupported(
            req.package_type.as_deref(),
            req.architectures.as_deref(),
            req.layers.as_deref(),
        )?;
        let runtime = validate::runtime(req.runtime.as_deref())?;
        let handler = validate::handler(req.handler.as_deref(), &runtime)?;
        let memory = validate::memory_size(req.memory_size, 128)?;
        let timeout = validate::timeout(req.timeout, 3)?;
        let description = validate::description(req.description.as_deref())?;
        let env = req.environment.clone().unwrap_or_default().variables;
        validate::environment(&env)?;
        let vpc_config = validate::vpc_config(req.vpc_config.as_ref())?;
        let tags = req.tags.clone().unwrap_or_default();
        super::tags::validate_tags(&tags)?;
        let code = req.code.clone().unwrap_or_default();
        let zip = validate::zip_file(
            code.zip_file.as_deref(),
            code.s3_bucket.is_some(),
            code.image_uri.is_some(),
        )?;
        if self
            .store
            .get(&self.account, &name, LATEST)
            .map_err(store_err)?
            .is_some()
        {
            return Err(ApiError::conflict(format!(
                "Function already exist: {name}"
            )));
        }
        let (sha, size) = self.store_zip(zip, &runtime).await?;
        let role = req
            .role
            .clone()
            .unwrap_or_else(|| format!("arn:aws:iam::{}:role/hearth-default", self.account));
        let latest = StoredVersion {
            config: FunctionConfiguration {
                function_name: name.clone(),
                function_arn: function_arn(&self.region, &self.account, &name),
                runtime,
                role,
                handler,
                code_size: size,
                description,
                timeout,
                memory_size: memory,
                last_modified: now_last_modified(),
                code_sha256: base64_sha(&sha),
                version: LATEST.into(),
                environment: (!env.is_empty()).then_some(EnvironmentResponse { variables: env }),
                revision_id: new_revision(),
                state: "Pending".into(),
                state_reason: Some("The function is being created.".into()),
                state_reason_code: Some("Creating".into()),
                last_update_status: "InProgress".into(),
                last_update_status_reason: None,
                last_update_status_reason_code: None,
                package_type: "Zip".into(),
                architectures: vec!["x86_64".into()],
                ephemeral_storage: EphemeralStorage { size: 512 },
                tracing_config: TracingConfig {
                    mode: "PassThrough".into(),
                },
                vpc_config,
            },
            code_sha256_hex: sha,
        };
        let wf = new_workflow(
            &self.account,
            &name,
            WorkflowKind::CreateFunction,
            &latest.config.revision_id,
            &latest.code_sha256_hex,
        );
        let mut ops = vec![Op::CreateFunction(latest.clone())];
        if !tags.is_empty() {
            // Validated above; stored in the same transaction as the function.
            let json =
                serde_json::to_string(&tags).map_err(|e| ApiError::service(e.to_string()))?;
            ops.push(Op::PutResource {
                name: name.clone(),
                kind: TAGS.into(),
                key: String::new(),
                json: Some(json),
            });
        }
        ops.extend(start_ops(&wf));
        if req.publish {
            ops.push(self.publish_op(&name, None, Some(&wf.id)));
        }
        let done = self.commit(&self.account, ops).await.map_err(|e| match e {
            StoreError::Conflict => ApiError::conflict(format!("Function already exist: {name}")),
            e => store_err(e),
        })?;
        let shown = done.published.into_iter().next().unwrap_or(latest);
        Reply::json(StatusCode::CREATED, &shown.config)
    }

    pub(super) fn get(
        &self,
        name: &str,
        qualifier: Option<&str>,
        base_url: &str,
    ) -> Result<Reply, ApiError> {
        let v = self.lookup(name, qualifier)?;
        let location = format!("{base_url}/hearth/v1/code/{}.zip", v.code_sha256_hex);
        let mut body = serde_json::json!({
            "Configuration": v.config,
            "Code": { "RepositoryType": "S3", "Location": location },
            "Tags": self.function_tags(name)?,
        });
        if let Some(n) = self.reserved_concurrency(name)? {
            body["Concurrency"] = serde_json::json!({ "ReservedConcurrentExecutions": n });
        }
        Reply::json(StatusCode::OK, body)
    }

    pub(super) fn get_configuration(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Reply, ApiError> {
        Reply::json(StatusCode::OK, &self.lookup(name, qualifier)?.config)
    }

    pub(super) fn list(
        &self,
        marker: Option<String>,
        max_items: Option<String>,
    ) -> Result<Reply, ApiError> {
        let max = match max_items.as_deref().map(str::parse::<usize>) {
            None => 50,
            Some(Ok(n)) if (1..=10_000).contains(&n) => n,
            Some(_) => {
                return Err(ApiError::invalid_parameter(
                    "MaxItems must be an integer from 1 to 10000.",
                ));
            }
        };
        let mut items = self
            .store
            .list_latest(&self.account, marker.as_deref(), max + 1)
            .map_err(store_err)?;
        let next = (items.len() > max).then(|| {
            items.truncate(max);
            items.last().map(|v| v.config.function_name.clone())
        });
        let functions: Vec<_> = items.into_iter().map(|v| v.config).collect();
        let mut body = serde_json::json!({ "Functions": functions });
        if let Some(Some(m)) = next {
            body["NextMarker"] = m.into();
        }
        Reply::json(StatusCode::OK, body)
    }

    fn check_revision(current: &StoredVersion, expected: Option<&str>) -> Result<(), ApiError> {
        match expected {
            Some(r) if r != current.config.revision_id => Err(ApiError::precondition_failed(
                "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
            )),
            _ => Ok(()),
        }
    }

    /// Writes a changed `$LATEST` (new revision id and LastModified), publishing when asked.
    /// Refuses a change while the function is still being created or updated (as Lambda).
    fn check_idle(&self, latest: &StoredVersion) -> Result<(), ApiError> {
        let c = &latest.config;
        if c.state == "Pending" {
            return Err(ApiError::conflict(
                "The operation cannot be performed at this time. The function is currently in the following state: Pending",
            ));
        }
        if c.last_update_status == "InProgress" {
            return Err(ApiError::conflict(format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {}",
                c.function_arn
            )));
        }
        Ok(())
    }

    /// Writes a changed `$LATEST` (new RevisionId, `InProgress`) with the workflow that brings
    /// it into service, publishing a version in the same transaction when asked.
    async fn save_latest(
        &self,
        mut latest: StoredVersion,
        kind: WorkflowKind,
        publish: bool,
    ) -> Result<Reply, ApiError> {
        latest.config.revision_id = new_revision();
        latest.config.last_modified = now_last_modified();
        latest.config.last_update_status = "InProgress".into();
        latest.config.last_update_status_reason = Some("The function is being updated.".into());
        latest.config.last_update_status_reason_code = None;
        let name = latest.config.function_name.clone();
        let wf = new_workflow(
            &self.account,
            &name,
            kind,
            &latest.config.revision_id,
            &latest.code_sha256_hex,
        );
        let mut ops = vec![Op::PutVersion(latest.clone())];
        ops.extend(start_ops(&wf));
        if publish {
            ops.push(self.publish_op(&name, None, Some(&wf.id)));
        }
        let done = self.commit(&self.account, ops).await.map_err(|e| match e {
            StoreError::NotFound => self.not_found(&name, None),
            e => store_err(e),
        })?;
        let shown = done.published.into_iter().next().unwrap_or(latest);
        Reply::json(StatusCode::OK, &shown.config)
    }

    pub(super) async fn update_code(&self, name: &str, body: Bytes) -> Result<Reply, ApiError> {
        let req: UpdateFunctionCodeRequest = parse_body(&body)?;
        let mut latest = self.lookup(name, None)?;
        Self::check_revision(&latest, req.revision_id.as_deref())?;
        self.check_idle(&latest)?;
        validate::unsupported(None, req.architectures.as_deref(), None)?;
        let zip = validate::zip_file(
            req.zip_file.as_deref(),
            req.s3_bucket.is_some(),
            req.image_uri.is_some(),
        )?;
        if req.dry_run {
            let limits = self.zip_limits;
            let bootstrap = latest.config.runtime.starts_with("provided");
            codestore::validate_zip(&zip, &limits, bootstrap).map_err(|e| {
                ApiError::invalid_parameter(format!("Could not unzip uploaded file: {e}"))
            })?;
            return Reply::json(StatusCode::OK, &latest.config);
        }
        let (sha, size) = self.store_zip(zip, &latest.config.runtime).await?;
        latest.config.code_sha256 = base64_sha(&sha);
        latest.config.code_size = size;
        latest.code_sha256_hex = sha;
        self.save_latest(latest, WorkflowKind::UpdateCode, req.publish)
            .await
    }

    pub(super) async fn update_configuration(
        &self,
        name: &str,
        body: Bytes,
    ) -> Result<Reply, ApiError> {
        let req: UpdateFunctionConfigurationRequest = parse_body(&body)?;
        let mut latest = self.lookup(name, None)?;
        Self::check_revision(&latest, req.revision_id.as_deref())?;
        self.check_idle(&latest)?;
        validate::unsupported(None, None, req.layers.as_deref())?;
        let c = &mut latest.config;
        if let Some(rt) = req.runtime.as_deref() {
            c.runtime = validate::runtime(Some(rt))?;
        }
        if let Some(h) = req.handler.as_deref() {
            c.handler = validate::handler(Some(h), &c.runtime)?;
        }
        c.memory_size = validate::memory_size(req.memory_size, c.memory_size)?;
        c.timeout = validate::timeout(req.timeout, c.timeout)?;
        if let Some(d) = req.description.as_deref() {
            c.description = validate::description(Some(d))?;
        }
        if let Some(role) = req.role {
            c.role = role;
        }
        if let Some(env) = req.environment {
            validate::environment(&env.variables)?;
            c.environment = (!env.variables.is_empty()).then_some(EnvironmentResponse {
                variables: env.variables,
            });
        }
        if let Some(vpc) = req.vpc_config.as_ref() {
            c.vpc_config = validate::vpc_config(Some(vpc))?;
        }
        self.save_latest(latest, WorkflowKind::UpdateConfiguration, false)
            .await
    }

    /// The op that publishes `$LATEST` as the next version (or reuses the newest version when
    /// nothing changed), recorded in `workflow` when it is part of one.
    fn publish_op(&self, name: &str, description: Option<&str>, workflow: Option<&str>) -> Op {
        let route = workflow.is_none();
        let (region, account, fname) =
            (self.region.clone(), self.account.clone(), name.to_string());
        let description = description.map(str::to_string);
        let make: MakeVersion = Arc::new(move |latest: &StoredVersion, num: u64| {
            let mut v = latest.clone();
            v.config.version = num.to_string();
            v.config.function_arn = format!("{}:{num}", function_arn(&region, &account, &fname));
            v.config.revision_id = new_revision();
            v.config.last_modified = now_last_modified();
            if let Some(d) = &description {
                v.config.description = d.clone();
            }
            v
        });
        Op::Publish {
            name: name.to_string(),
            make,
            workflow: workflow.map(str::to_string),
            route,
        }
    }

    pub(super) async fn publish(&self, name: &str, body: Bytes) -> Result<Reply, ApiError> {
        let req: PublishVersionRequest = parse_body(&body)?;
        let latest = self.lookup(name, None)?;
        Self::check_revision(&latest, req.revision_id.as_deref())?;
        self.check_idle(&latest)?;
        if let Some(sha) = req.code_sha256.as_deref()
            && sha != latest.config.code_sha256
        {
            return Err(ApiError::invalid_parameter(format!(
                "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the current CodeSHA256.",
                latest.config.code_sha256
            )));
        }
        // `$LATEST` is in service, so its code is stored and verified: the version is
        // routable in the same transaction that creates it.
        let op = self.publish_op(name, req.description.as_deref(), None);
        let done = self
            .commit(&self.account, vec![op])
            .await
            .map_err(|e| match e {
                StoreError::NotFound => self.not_found(name, None),
                e => store_err(e),
            })?;
        let v = done
            .published
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::service("publish made no version"))?;
        Reply::json(StatusCode::CREATED, &v.config)
    }

    pub(super) fn list_versions(&self, name: &str) -> Result<Reply, ApiError> {
        let versions = self
            .store
            .list_versions(&self.account, name)
            .map_err(store_err)?;
        if versions.is_empty() {
            return Err(self.not_found(name, None));
        }
        let configs: Vec<_> = versions.into_iter().map(|v| v.config).collect();
        Reply::json(StatusCode::OK, serde_json::json!({ "Versions": configs }))
    }

    pub(super) async fn delete(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Reply, ApiError> {
        if qualifier == Some(LATEST) {
            return Err(ApiError::invalid_parameter(
                "$LATEST version cannot be deleted without deleting the function.",
            ));
        }
        let ops = match qualifier {
            Some(v) => {
                let mut ops = vec![Op::DeleteVersion {
                    name: name.to_string(),
                    version: v.to_string(),
                }];
                // Its provisioned concurrency config goes with it: let the agents release it.
                if self.has_provisioned(name, v)? {
                    let mut wf = new_workflow(&self.account, name, WorkflowKind::Provision, "", "");
                    wf.qualifier = Some(v.to_string());
                    ops.extend(start_ops(&wf));
                }
                ops
            }
            None => {
                let wf = new_workflow(&self.account, name, WorkflowKind::DeleteFunction, "", "");
                let mut ops = vec![Op::DeleteFunction {
                    name: name.to_string(),
                }];
                ops.extend(start_ops(&wf));
                ops
            }
        };
        self.commit(&self.account, ops).await.map_err(|e| match e {
            StoreError::NotFound => self.not_found(name, qualifier),
            StoreError::Conflict => self.version_in_use(name, qualifier.unwrap_or_default()),
            e => store_err(e),
        })?;
        Ok(Reply::empty(StatusCode::NO_CONTENT))
    }
}
