//! The client commands: each builds one Lambda API request and prints the answer.

use super::client::{Client, segment};
use super::{AdminCommand, Command, FnCommand, LimitsCommand, QueueCommand};
use base64::Engine;
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// Exit code of `invoke` when the function itself failed.
pub const EXIT_FUNCTION_ERROR: i32 = 3;

/// Runs `fn …` or `invoke`; returns the process exit code.
pub async fn run_client(cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Fn {
            endpoint,
            command: FnCommand::Logs { name, follow, tail },
            ..
        } => {
            let client = Client::new(&endpoint.endpoint)?;
            logs(&client, &name, follow, tail).await
        }
        Command::Fn {
            endpoint,
            no_wait,
            command,
        } => {
            let client = Client::new(&endpoint.endpoint)?;
            let settle = (!no_wait).then(|| changed_function(&command)).flatten();
            let mut out = run_fn(&client, command).await?;
            if let Some(name) = settle {
                out = wait_settled(&client, &name, out).await?;
            }
            if !out.is_null() {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Ok(0)
        }
        Command::Invoke {
            endpoint,
            function,
            payload,
            log_tail,
        } => {
            let client = Client::new(&endpoint.endpoint)?;
            invoke(&client, &function, payload.as_deref(), log_tail).await
        }
        Command::Queue {
            endpoint,
            command: QueueCommand::Read { name, max, after },
        } => {
            let client = Client::new(&endpoint.endpoint)?;
            let path = format!(
                "/hearth/v1/queues/{}/messages?max={max}&after={after}",
                segment(&name)
            );
            let out = client.json(Method::GET, &path, None).await?;
            for m in out["Messages"].as_array().into_iter().flatten() {
                println!("{m}");
            }
            Ok(0)
        }
        Command::Admin { admin, command } => {
            let client = Client::new(&admin)?;
            let out = match command {
                AdminCommand::Workflows { function, id } => {
                    let mut q = vec![];
                    q.extend(function.map(|f| format!("function={}", segment(&f))));
                    q.extend(id.map(|i| format!("id={}", segment(&i))));
                    client
                        .json(
                            Method::GET,
                            &format!("/admin/workflows?{}", q.join("&")),
                            None,
                        )
                        .await?
                }
                AdminCommand::Retry { id } => {
                    client
                        .json(
                            Method::POST,
                            &format!("/admin/workflows/{}/retry", segment(&id)),
                            None,
                        )
                        .await?
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        Command::Trigger { endpoint, command } => {
            let client = Client::new(&endpoint.endpoint)?;
            let out = super::trigger::run(&client, command).await?;
            if !out.is_null() {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Ok(0)
        }
        Command::Limits { endpoint, command } => {
            let client = Client::new(&endpoint.endpoint)?;
            let path = |f: &str| format!("/hearth/v1/functions/{}/limits", segment(f));
            let out = match command {
                LimitsCommand::Put { function, rate } => {
                    let body = json!({ "RatePerSec": rate });
                    client
                        .json(Method::PUT, &path(&function), Some(body))
                        .await?
                }
                LimitsCommand::Get { function } => {
                    client.json(Method::GET, &path(&function), None).await?
                }
                LimitsCommand::Delete { function } => {
                    client.json(Method::DELETE, &path(&function), None).await?
                }
            };
            if !out.is_null() {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Ok(0)
        }
        _ => anyhow::bail!("not a client command"),
    }
}

fn read_code(path: &Path) -> anyhow::Result<String> {
    let zip = if path.is_dir() {
        crate::codestore::zip_dir(path)?
    } else {
        std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(zip))
}

fn parse_env(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => anyhow::bail!("--env {p:?}: expected K=V"),
        })
        .collect()
}

fn qualified(path: String, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("{path}?Qualifier={}", segment(q)),
        None => path,
    }
}

/// `hearth fn logs`: the last `tail` bytes, then (with `follow`) whatever is written next.
async fn logs(c: &Client, name: &str, follow: bool, tail: usize) -> anyhow::Result<i32> {
    use std::io::Write;
    let base = format!("/hearth/v1/functions/{}/logs", segment(name));
    let mut query = format!("tail={tail}");
    loop {
        let reply = c
            .send(Method::GET, &format!("{base}?{query}"), &[], Bytes::new())
            .await?
            .ok()?;
        std::io::stdout().write_all(&reply.body)?;
        std::io::stdout().flush()?;
        if !follow {
            return Ok(0);
        }
        let cursor = reply
            .headers
            .get("x-hearth-log-cursor")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        query = format!("cursor={}", segment(cursor));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The function a command creates or updates asynchronously.
fn changed_function(cmd: &FnCommand) -> Option<String> {
    match cmd {
        FnCommand::Create { name, .. }
        | FnCommand::UpdateCode { name, .. }
        | FnCommand::UpdateConfig { name, .. } => Some(name.clone()),
        _ => None,
    }
}

/// Polls GetFunction until the function is no longer `Pending` / `InProgress` (as boto3's
/// `function_active_v2` and `function_updated_v2` waiters do), then returns `shown` with its
/// final state; a `Failed` function is an error naming the reason.
async fn wait_settled(c: &Client, name: &str, mut shown: Value) -> anyhow::Result<Value> {
    let path = format!("/2015-03-31/functions/{}", segment(name));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let cfg = c.json(Method::GET, &path, None).await?["Configuration"].clone();
        let (state, update) = (
            cfg["State"].as_str().unwrap_or(""),
            cfg["LastUpdateStatus"].as_str().unwrap_or(""),
        );
        if state == "Failed" || update == "Failed" {
            let reason = cfg["StateReason"]
                .as_str()
                .or(cfg["LastUpdateStatusReason"].as_str())
                .unwrap_or("unknown");
            anyhow::bail!("{name}: {state}/{update}: {reason}");
        }
        if state != "Pending" && update != "InProgress" {
            if let Some(obj) = shown.as_object_mut() {
                for key in [
                    "State",
                    "StateReason",
                    "StateReasonCode",
                    "LastUpdateStatus",
                    "LastUpdateStatusReason",
                ] {
                    match cfg.get(key) {
                        Some(v) => obj.insert(key.to_string(), v.clone()),
                        None => obj.remove(key),
                    };
                }
            }
            return Ok(shown);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{name}: still {state}/{update} after 300 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn run_fn(c: &Client, cmd: FnCommand) -> anyhow::Result<Value> {
    const F: &str = "/2015-03-31/functions";
    match cmd {
        FnCommand::Create {
            name,
            runtime,
            handler,
            code,
            memory,
            timeout,
            env,
            publish,
            egress,
        } => {
            let mut body = json!({
                "FunctionName": name, "Runtime": runtime, "Code": { "ZipFile": read_code(&code)? },
                "Publish": publish, "Environment": { "Variables": parse_env(&env)? },
            });
            if let Some(h) = handler {
                body["Handler"] = h.into();
            }
            if let Some(m) = memory {
                body["MemorySize"] = m.into();
            }
            if let Some(t) = timeout {
                body["Timeout"] = t.into();
            }
            if egress {
                body["VpcConfig"] = vpc_config(true);
            }
            c.json(Method::POST, F, Some(body)).await
        }
        FnCommand::List => c.json(Method::GET, &format!("{F}/"), None).await,
        FnCommand::Get { name, qualifier } => {
            c.json(
                Method::GET,
                &qualified(format!("{F}/{}", segment(&name)), qualifier.as_deref()),
                None,
            )
            .await
        }
        FnCommand::UpdateCode {
            name,
            code,
            publish,
        } => {
            let body = json!({ "ZipFile": read_code(&code)?, "Publish": publish });
            c.json(
                Method::PUT,
                &format!("{F}/{}/code", segment(&name)),
                Some(body),
            )
            .await
        }
        FnCommand::UpdateConfig {
            name,
            memory,
            timeout,
            handler,
            env,
            egress,
            no_egress,
        } => {
            let mut body = json!({});
            if egress || no_egress {
                body["VpcConfig"] = vpc_config(egress);
            }
            if let Some(m) = memory {
                body["MemorySize"] = m.into();
            }
            if let Some(t) = timeout {
                body["Timeout"] = t.into();
            }
            if let Some(h) = handler {
                body["Handler"] = h.into();
            }
            if !env.is_empty() {
                body["Environment"] = json!({ "Variables": parse_env(&env)? });
            }
            c.json(
                Method::PUT,
                &format!("{F}/{}/configuration", segment(&name)),
                Some(body),
            )
            .await
        }
        FnCommand::Publish { name, description } => {
            let body = description
                .map(|d| json!({ "Description": d }))
                .unwrap_or_else(|| json!({}));
            c.json(
                Method::POST,
                &format!("{F}/{}/versions", segment(&name)),
                Some(body),
            )
            .await
        }
        cmd @ (FnCommand::Alias { .. }
        | FnCommand::Concurrency { .. }
        | FnCommand::Provisioned { .. }
        | FnCommand::Url { .. }
        | FnCommand::Permission { .. }
        | FnCommand::Tag { .. }
        | FnCommand::Untag { .. }
        | FnCommand::Tags { .. }) => super::resources::run(c, cmd).await,
        FnCommand::Logs { .. } => anyhow::bail!("fn logs is handled before"),
        FnCommand::Delete { name, qualifier } => {
            c.json(
                Method::DELETE,
                &qualified(format!("{F}/{}", segment(&name)), qualifier.as_deref()),
                None,
            )
            .await
        }
    }
}

async fn invoke(
    c: &Client,
    function: &str,
    payload: Option<&str>,
    log_tail: bool,
) -> anyhow::Result<i32> {
    let payload = match payload {
        Some(p) if p.starts_with('@') => {
            std::fs::read(&p[1..]).map_err(|e| anyhow::anyhow!("{}: {e}", &p[1..]))?
        }
        Some(p) => p.as_bytes().to_vec(),
        None => b"{}".to_vec(),
    };
    let mut headers = vec![];
    if log_tail {
        headers.push(("x-amz-log-type", "Tail".to_string()));
    }
    let path = format!("/2015-03-31/functions/{}/invocations", segment(function));
    let reply = c
        .send(Method::POST, &path, &headers, Bytes::from(payload))
        .await?
        .ok()?;
    if let Some(tail) = reply
        .headers
        .get("x-amz-log-result")
        .and_then(|v| v.to_str().ok())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(tail)
            .unwrap_or_default();
        eprint!("{}", String::from_utf8_lossy(&decoded));
    }
    println!("{}", String::from_utf8_lossy(&reply.body));
    match reply.headers.get("x-amz-function-error") {
        Some(kind) => {
            eprintln!("function error: {}", kind.to_str().unwrap_or("Unhandled"));
            Ok(EXIT_FUNCTION_ERROR)
        }
        None => Ok(0),
    }
}

/// The `VpcConfig` that turns egress through the tenant's proxy on or off (hearth has no VPCs;
/// any subnet id means "egress on").
fn vpc_config(on: bool) -> Value {
    if on {
        json!({ "SubnetIds": ["hearth-egress"], "SecurityGroupIds": [] })
    } else {
        json!({ "SubnetIds": [], "SecurityGroupIds": [] })
    }
}
