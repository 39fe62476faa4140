//! Client commands for a function's resources: `fn alias`, `fn concurrency`, `fn url`,
//! `fn permission`, `fn tag`/`untag`/`tags`. Each builds one Lambda API request.

use super::FnCommand;
use super::client::{Client, segment};
use clap::Subcommand;
use http::Method;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// CreateAlias: NAME points at VERSION (optionally shifting a weight to another version).
    Create {
        function: String,
        name: String,
        /// `$LATEST` or a published version.
        #[arg(long)]
        version: String,
        #[arg(long)]
        description: Option<String>,
        /// Route a share of invokes to another published version: VERSION=WEIGHT (0.0–1.0).
        #[arg(long, value_name = "VERSION=WEIGHT")]
        weight: Option<String>,
    },
    /// GetAlias.
    Get { function: String, name: String },
    /// UpdateAlias: only the options given change (`--weight none` removes the routing).
    Update {
        function: String,
        name: String,
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_name = "VERSION=WEIGHT|none")]
        weight: Option<String>,
        /// Fail with PreconditionFailed unless the alias still has this RevisionId.
        #[arg(long)]
        revision_id: Option<String>,
    },
    /// DeleteAlias.
    Delete { function: String, name: String },
    /// ListAliases (optionally only those pointing at VERSION).
    List {
        function: String,
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConcurrencyCommand {
    /// PutFunctionConcurrency: reserve N concurrent executions (0 throttles every invoke).
    Put { function: String, reserved: u32 },
    /// GetFunctionConcurrency.
    Get { function: String },
    /// DeleteFunctionConcurrency.
    Delete { function: String },
}

#[derive(Debug, Subcommand)]
pub enum ProvisionedCommand {
    /// PutProvisionedConcurrencyConfig: keep N instances of a version or alias initialized.
    Put {
        function: String,
        #[arg(long)]
        qualifier: String,
        instances: u32,
    },
    /// GetProvisionedConcurrencyConfig.
    Get {
        function: String,
        #[arg(long)]
        qualifier: String,
    },
    /// DeleteProvisionedConcurrencyConfig.
    Delete {
        function: String,
        #[arg(long)]
        qualifier: String,
    },
    /// ListProvisionedConcurrencyConfigs.
    List { function: String },
}

#[derive(Debug, Subcommand)]
pub enum UrlCommand {
    /// CreateFunctionUrlConfig.
    Create {
        function: String,
        /// An alias (function URLs name the function or one of its aliases).
        #[arg(long)]
        qualifier: Option<String>,
        /// NONE or AWS_IAM.
        #[arg(long, default_value = "NONE")]
        auth_type: String,
        /// BUFFERED or RESPONSE_STREAM.
        #[arg(long)]
        invoke_mode: Option<String>,
        /// CORS allowed origin (repeatable).
        #[arg(long = "cors-origin", value_name = "ORIGIN")]
        cors_origins: Vec<String>,
    },
    /// GetFunctionUrlConfig.
    Get {
        function: String,
        #[arg(long)]
        qualifier: Option<String>,
    },
    /// DeleteFunctionUrlConfig.
    Delete {
        function: String,
        #[arg(long)]
        qualifier: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PermissionCommand {
    /// AddPermission: a statement SID allowing PRINCIPAL to call ACTION.
    Add {
        function: String,
        sid: String,
        #[arg(long)]
        principal: String,
        #[arg(long, default_value = "lambda:InvokeFunction")]
        action: String,
        #[arg(long)]
        source_arn: Option<String>,
        #[arg(long)]
        source_account: Option<String>,
        /// NONE or AWS_IAM (for lambda:InvokeFunctionUrl).
        #[arg(long)]
        function_url_auth_type: Option<String>,
        #[arg(long)]
        qualifier: Option<String>,
    },
    /// RemovePermission.
    Remove {
        function: String,
        sid: String,
        #[arg(long)]
        qualifier: Option<String>,
    },
    /// GetPolicy (the policy document is printed as JSON).
    Policy {
        function: String,
        #[arg(long)]
        qualifier: Option<String>,
    },
}

fn with_qualifier(path: String, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("{path}?Qualifier={}", segment(q)),
        None => path,
    }
}

/// `VERSION=WEIGHT` as a RoutingConfig (`none` is an empty one).
fn routing(weight: &str) -> anyhow::Result<Value> {
    if weight == "none" {
        return Ok(json!({ "AdditionalVersionWeights": {} }));
    }
    let (version, w) = weight
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--weight {weight:?}: expected VERSION=WEIGHT"))?;
    let w: f64 = w
        .parse()
        .map_err(|_| anyhow::anyhow!("--weight {weight:?}: the weight is not a number"))?;
    Ok(json!({ "AdditionalVersionWeights": { version: w } }))
}

/// Sets `body[key]` when `value` is given.
fn set(body: &mut Value, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        body[key] = v.into();
    }
}

/// The function's ARN (tags are addressed by ARN): as given, or from GetFunction.
async fn function_arn(c: &Client, function: &str) -> anyhow::Result<String> {
    if function.starts_with("arn:") {
        return Ok(function.to_string());
    }
    let path = format!("/2015-03-31/functions/{}", segment(function));
    let got = c.json(Method::GET, &path, None).await?;
    got["Configuration"]["FunctionArn"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("GetFunction returned no FunctionArn"))
}

fn parse_tags(pairs: &[String]) -> anyhow::Result<Value> {
    let mut tags = serde_json::Map::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("tag {p:?}: expected K=V"))?;
        tags.insert(k.to_string(), v.into());
    }
    Ok(Value::Object(tags))
}

/// Runs a resource command (`fn alias|concurrency|url|permission|tag|untag|tags`).
pub async fn run(c: &Client, cmd: FnCommand) -> anyhow::Result<Value> {
    match cmd {
        FnCommand::Alias { command } => alias(c, command).await,
        FnCommand::Concurrency { command } => concurrency(c, command).await,
        FnCommand::Provisioned { command } => provisioned(c, command).await,
        FnCommand::Url { command } => url(c, command).await,
        FnCommand::Permission { command } => permission(c, command).await,
        FnCommand::Tag { function, tags } => {
            let arn = function_arn(c, &function).await?;
            let body = json!({ "Tags": parse_tags(&tags)? });
            let path = format!("/2017-03-31/tags/{}", segment(&arn));
            c.json(Method::POST, &path, Some(body)).await
        }
        FnCommand::Untag { function, keys } => {
            let arn = function_arn(c, &function).await?;
            let query: Vec<String> = keys
                .iter()
                .map(|k| format!("tagKeys={}", segment(k)))
                .collect();
            let path = format!("/2017-03-31/tags/{}?{}", segment(&arn), query.join("&"));
            c.json(Method::DELETE, &path, None).await
        }
        FnCommand::Tags { function } => {
            let arn = function_arn(c, &function).await?;
            c.json(
                Method::GET,
                &format!("/2017-03-31/tags/{}", segment(&arn)),
                None,
            )
            .await
        }
        _ => anyhow::bail!("not a resource command"),
    }
}

async fn alias(c: &Client, cmd: AliasCommand) -> anyhow::Result<Value> {
    let base = |f: &str| format!("/2015-03-31/functions/{}/aliases", segment(f));
    match cmd {
        AliasCommand::Create {
            function,
            name,
            version,
            description,
            weight,
        } => {
            let mut body = json!({ "Name": name, "FunctionVersion": version });
            set(&mut body, "Description", description);
            set(
                &mut body,
                "RoutingConfig",
                weight.as_deref().map(routing).transpose()?,
            );
            c.json(Method::POST, &base(&function), Some(body)).await
        }
        AliasCommand::Get { function, name } => {
            c.json(
                Method::GET,
                &format!("{}/{}", base(&function), segment(&name)),
                None,
            )
            .await
        }
        AliasCommand::Update {
            function,
            name,
            version,
            description,
            weight,
            revision_id,
        } => {
            let mut body = json!({});
            set(&mut body, "FunctionVersion", version);
            set(&mut body, "Description", description);
            set(&mut body, "RevisionId", revision_id);
            set(
                &mut body,
                "RoutingConfig",
                weight.as_deref().map(routing).transpose()?,
            );
            let path = format!("{}/{}", base(&function), segment(&name));
            c.json(Method::PUT, &path, Some(body)).await
        }
        AliasCommand::Delete { function, name } => {
            let path = format!("{}/{}", base(&function), segment(&name));
            c.json(Method::DELETE, &path, None).await
        }
        AliasCommand::List { function, version } => {
            let path = match version {
                Some(v) => format!("{}?FunctionVersion={}", base(&function), segment(&v)),
                None => base(&function),
            };
            c.json(Method::GET, &path, None).await
        }
    }
}

async fn provisioned(c: &Client, cmd: ProvisionedCommand) -> anyhow::Result<Value> {
    let path = |f: &str, q: &str| {
        format!(
            "/2019-09-30/functions/{}/provisioned-concurrency?Qualifier={}",
            segment(f),
            segment(q)
        )
    };
    match cmd {
        ProvisionedCommand::Put {
            function,
            qualifier,
            instances,
        } => {
            let body = json!({ "ProvisionedConcurrentExecutions": instances });
            c.json(Method::PUT, &path(&function, &qualifier), Some(body))
                .await
        }
        ProvisionedCommand::Get {
            function,
            qualifier,
        } => {
            c.json(Method::GET, &path(&function, &qualifier), None)
                .await
        }
        ProvisionedCommand::Delete {
            function,
            qualifier,
        } => {
            c.json(Method::DELETE, &path(&function, &qualifier), None)
                .await
        }
        ProvisionedCommand::List { function } => {
            let p = format!(
                "/2019-09-30/functions/{}/provisioned-concurrency?List=ALL",
                segment(&function)
            );
            c.json(Method::GET, &p, None).await
        }
    }
}

async fn concurrency(c: &Client, cmd: ConcurrencyCommand) -> anyhow::Result<Value> {
    let path = |api: &str, f: &str| format!("/{api}/functions/{}/concurrency", segment(f));
    match cmd {
        ConcurrencyCommand::Put { function, reserved } => {
            let body = json!({ "ReservedConcurrentExecutions": reserved });
            c.json(Method::PUT, &path("2017-10-31", &function), Some(body))
                .await
        }
        ConcurrencyCommand::Get { function } => {
            c.json(Method::GET, &path("2019-09-30", &function), None)
                .await
        }
        ConcurrencyCommand::Delete { function } => {
            c.json(Method::DELETE, &path("2017-10-31", &function), None)
                .await
        }
    }
}

async fn url(c: &Client, cmd: UrlCommand) -> anyhow::Result<Value> {
    let path = |f: &str, q: Option<&str>| {
        with_qualifier(format!("/2021-10-31/functions/{}/url", segment(f)), q)
    };
    match cmd {
        UrlCommand::Create {
            function,
            qualifier,
            auth_type,
            invoke_mode,
            cors_origins,
        } => {
            let mut body = json!({ "AuthType": auth_type });
            set(&mut body, "InvokeMode", invoke_mode);
            if !cors_origins.is_empty() {
                body["Cors"] = json!({ "AllowOrigins": cors_origins });
            }
            c.json(
                Method::POST,
                &path(&function, qualifier.as_deref()),
                Some(body),
            )
            .await
        }
        UrlCommand::Get {
            function,
            qualifier,
        } => {
            c.json(Method::GET, &path(&function, qualifier.as_deref()), None)
                .await
        }
        UrlCommand::Delete {
            function,
            qualifier,
        } => {
            c.json(Method::DELETE, &path(&function, qualifier.as_deref()), None)
                .await
        }
    }
}

async fn permission(c: &Client, cmd: PermissionCommand) -> anyhow::Result<Value> {
    let base = |f: &str| format!("/2015-03-31/functions/{}/policy", segment(f));
    match cmd {
        PermissionCommand::Add {
            function,
            sid,
            principal,
            action,
            source_arn,
            source_account,
            function_url_auth_type,
            qualifier,
        } => {
            let mut body = json!({ "StatementId": sid, "Action": action, "Principal": principal });
            set(&mut body, "SourceArn", source_arn);
            set(&mut body, "SourceAccount", source_account);
            set(&mut body, "FunctionUrlAuthType", function_url_auth_type);
            let path = with_qualifier(base(&function), qualifier.as_deref());
            c.json(Method::POST, &path, Some(body)).await
        }
        PermissionCommand::Remove {
            function,
            sid,
            qualifier,
        } => {
            let path = with_qualifier(
                format!("{}/{}", base(&function), segment(&sid)),
                qualifier.as_deref(),
            );
            c.json(Method::DELETE, &path, None).await
        }
        PermissionCommand::Policy {
            function,
            qualifier,
        } => {
            let path = with_qualifier(base(&function), qualifier.as_deref());
            let mut got = c.json(Method::GET, &path, None).await?;
            // The policy is a JSON string: show it as JSON.
            if let Some(doc) = got["Policy"]
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
            {
                got["Policy"] = doc;
            }
            Ok(got)
        }
    }
}
