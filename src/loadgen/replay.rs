//! `hearth loadgen trace`: replays the Azure Functions trace against hearth, one hearth
//! function per trace function, and reports cold-start rate (each function's first
//! invocation excluded), warm-instance memory-time (the agent's
//! `hearth_agent_idle_memory_mb_seconds_total`, read once every idle instance has expired)
//! and the start delay of each invocation (`x-hearth-start-delay-us`).

use super::arrivals::{Invocation, arrivals};
use super::engine::{self, Load, Plan};
use super::report;
use super::target::{Source, Target, Template};
use super::trace::{self, Limits, Selection};
use crate::cli::client::{Client, segment};
use crate::cli::loadgen::TraceArgs;
use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The agent's counter of idle seconds × memory, and its idle-instance gauge.
pub const IDLE_MEMORY_METRIC: &str = "hearth_agent_idle_memory_mb_seconds_total";
pub const IDLE_INSTANCES_METRIC: &str = "hearth_agent_idle_instances";

/// The keep-alive the trace's platform used (AWS Lambda's then, 10 minutes).
const KEEP_ALIVE_S: f64 = 600.0;

/// One replayed function.
struct Replayed {
    name: String,
    memory_mb: u32,
    timeout_s: u32,
}

/// Requests of a replay: one template per function, the payload per invocation.
struct TraceSource {
    templates: Vec<Template>,
    invocations: Vec<Invocation>,
}

impl Source for TraceSource {
    fn request(&self, i: u32) -> Request<Full<Bytes>> {
        let inv = &self.invocations[i as usize];
        let body = format!("{{\"sleep_ms\":{}}}", inv.sleep_ms);
        self.templates[inv.func as usize].build_with(Bytes::from(body))
    }

    fn h1_request(&self, i: u32) -> Bytes {
        let inv = &self.invocations[i as usize];
        let body = format!("{{\"sleep_ms\":{}}}", inv.sleep_ms);
        self.templates[inv.func as usize].h1_with(body.as_bytes())
    }

    fn is_first(&self, i: u32) -> bool {
        self.invocations[i as usize].first
    }
}

/// A valid Lambda function name for a trace key: `PREFIX` + key when it fits, else
/// `PREFIX` + 16 hex digits of its SHA-256.
pub fn function_name(prefix: &str, key: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if key.chars().all(ok) && prefix.len() + key.len() <= 64 {
        return format!("{prefix}{key}");
    }
    let hash = crate::codestore::sha256_hex(key.as_bytes());
    format!("{prefix}{}", &hash[..16])
}

/// The sum of every series of `name` in Prometheus/OpenMetrics text; `None` if absent.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = match rest.chars().next() {
            Some('{') => rest.rsplit_once('}').map(|(_, v)| v),
            Some(' ') => Some(rest),
            _ => None,
        };
        if let Some(v) = value.and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()) {
            sum = Some(sum.unwrap_or(0.0) + v);
        }
    }
    sum
}

pub fn run(a: TraceArgs) -> anyhow::Result<i32> {
    if !a.compress.is_finite() || a.compress <= 0.0 || a.compress > 1e6 {
        bail!("--compress {}: expected a factor > 0", a.compress);
    }
    if a.concurrency_limit == 0 || a.concurrency_limit > 100_000 {
        bail!(
            "--concurrency-limit {}: expected 1..=100000",
            a.concurrency_limit
        );
    }
    if !a
        .prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || a.prefix.len() > 40
    {
        bail!(
            "--prefix {:?}: letters, digits, - and _ (at most 40)",
            a.prefix
        );
    }
    let sel = Selection {
        functions: a.functions,
        minutes: a.minutes,
    };
    let (trace, paths) = trace::load(&a.traces, &Limits::default(), sel)?;
    if !a.quiet {
        eprintln!(
            "hearth loadgen: reading {}, {}, {}",
            paths[0].display(),
            paths[1].display(),
            paths[2].display()
        );
    }
    let invocations = arrivals(&trace.functions, a.seed, a.compress);
    if invocations.is_empty() {
        bail!("no invocations in the chosen functions and minutes");
    }
    if invocations.len() > u32::MAX as usize {
        bail!("{} invocations: too many for one replay", invocations.len());
    }
    let functions: Vec<Replayed> = trace
        .functions
        .iter()
        .map(|f| Replayed {
            name: function_name(&a.prefix, &f.key()),
            memory_mb: f.memory_mb.unwrap_or(128.0).round().clamp(128.0, 10240.0) as u32,
            timeout_s: f
                .durations
                .map_or(10.0, |p| (p[6] / a.compress / 1000.0).ceil() + 10.0)
                .clamp(10.0, 900.0) as u32,
        })
        .collect();
    let missing = trace
        .functions
        .iter()
        .filter(|f| f.durations.is_none())
        .count();
    let missing_mem = trace
        .functions
        .iter()
        .filter(|f| f.memory_mb.is_none())
        .count();
    eprintln!(
        "hearth loadgen: {} functions, {} invocations over {:.1} s; compress {}: the server's keep-alive should be 600/{} = {:.3} s (agent.idle_timeout_secs)",
        functions.len(),
        invocations.len(),
        invocations.last().map_or(0.0, |i| i.at.as_secs_f64()),
        a.compress,
        a.compress,
        KEEP_ALIVE_S / a.compress
    );
    if missing + missing_mem > 0 {
        eprintln!(
            "hearth loadgen: {missing} functions without durations (sleep 0), {missing_mem} without memory (128 MB)"
        );
    }
    let mgmt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let endpoint = Client::new(&a.endpoint)?;
    let admin = Client::new(&a.admin)?;
    if a.create {
        let bootstrap = a
            .bootstrap
            .as_deref()
            .context("--create needs --bootstrap PATH")?;
        let zip = bootstrap_zip(bootstrap)?;
        mgmt.block_on(create_all(&endpoint, &functions, &zip))?;
    }
    let before = mgmt
        .block_on(read_metric(&admin, IDLE_MEMORY_METRIC))
        .unwrap_or(None);

    let (target, base_path) = Target::parse(&a.endpoint)?;
    if target.tls {
        anyhow::bail!(
            "--endpoint {}: trace replay speaks plain http://",
            a.endpoint
        );
    }
    let base_path = base_path.trim_end_matches('/');
    let headers = [("content-type".to_string(), "application/json".to_string())];
    let templates = functions
        .iter()
        .map(|f| {
            let path = format!(
                "{base_path}/2015-03-31/functions/{}/invocations",
                segment(&f.name)
            );
            Template::new(&target, &path, Method::POST, &headers, Bytes::new(), false)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let max_timeout = functions.iter().map(|f| f.timeout_s).max().unwrap_or(10);
    let schedule: Vec<(Duration, u32)> = invocations
        .iter()
        .enumerate()
        .map(|(i, v)| (v.at, i as u32))
        .collect();
    let end = schedule.last().map_or(Duration::ZERO, |s| s.0);
    let count = invocations.len();
    let plan = Plan {
        source: Arc::new(TraceSource {
            templates,
            invocations,
        }),
        addr: target.addr,
        wire: super::client::Wire::H1,
        timeout: Duration::from_secs(u64::from(max_timeout) + 60),
        workers: a.concurrency_limit,
        load: Load::Open {
            schedule: Box::new(schedule.into_iter()),
            measure_from: Duration::ZERO,
            end,
        },
        progress: !a.quiet,
    };
    let out = engine::execute(plan)?;

    let wait = Duration::from_secs_f64(2.0 * KEEP_ALIVE_S / a.compress + 30.0);
    let (memory, status) = if before.is_none() {
        (None, "unavailable")
    } else {
        if !a.quiet {
            eprintln!(
                "hearth loadgen: waiting up to {:.0} s for every idle instance to expire",
                wait.as_secs_f64()
            );
        }
        let drained = mgmt.block_on(wait_idle(&admin, wait));
        let after = mgmt.block_on(read_metric(&admin, IDLE_MEMORY_METRIC))?;
        let value = after.zip(before).map(|(a, b)| report::round3(a - b));
        (value, if drained { "complete" } else { "incomplete" })
    };

    let s = &out.stats;
    let rate = if s.responses_excl_first > 0 {
        s.cold_starts_excl_first as f64 / s.responses_excl_first as f64
    } else {
        0.0
    };
    let d = report::latency(&s.start_delay);
    let mut r = report::base("trace", &a.endpoint, &out);
    r.insert("functions".into(), functions.len().into());
    r.insert("invocations".into(), count.into());
    r.insert(
        "minutes".into(),
        trace.functions.first().map_or(0, |f| f.counts.len()).into(),
    );
    r.insert("cold_start_rate_excl_first".into(), rate.into());
    r.insert(
        "cold_starts_excl_first".into(),
        s.cold_starts_excl_first.into(),
    );
    r.insert("warm_memory_mb_s".into(), memory.into());
    r.insert("warm_memory_status".into(), status.into());
    r.insert(
        "start_delay_us".into(),
        json!({"p50": d["p50"], "p99": d["p99"], "p99_9": d["p99_9"], "samples": s.start_delay.len()}),
    );
    r.insert("compress".into(), a.compress.into());
    r.insert("seed".into(), a.seed.into());
    r.insert("concurrency_limit".into(), a.concurrency_limit.into());
    super::finish(Value::Object(r), a.json.as_deref(), s.ok)
}

/// A zip holding `bootstrap` (mode 0755) with the given file's contents.
fn bootstrap_zip(path: &std::path::Path) -> anyhow::Result<String> {
    use base64::Engine;
    use std::io::Write;
    let code = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    w.start_file("bootstrap", opts)?;
    w.write_all(&code)?;
    w.finish()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf.into_inner()))
}

/// CreateFunction for each (UpdateFunctionConfiguration and UpdateFunctionCode if it
/// exists), then waits until every one is Active.
async fn create_all(c: &Client, functions: &[Replayed], zip: &str) -> anyhow::Result<()> {
    const F: &str = "/2015-03-31/functions";
    let json_ct = [("content-type", "application/json".to_string())];
    for f in functions {
        let config = json!({"Runtime": "provided", "Handler": "bootstrap", "MemorySize": f.memory_mb, "Timeout": f.timeout_s});
        let mut create = config.clone();
        create["FunctionName"] = f.name.clone().into();
        create["Code"] = json!({"ZipFile": zip});
        let reply = c
            .send(Method::POST, F, &json_ct, Bytes::from(create.to_string()))
            .await?;
        if reply.status.as_u16() == 409 {
            let name = segment(&f.name);
            c.json(
                Method::PUT,
                &format!("{F}/{name}/configuration"),
                Some(config),
            )
            .await?;
            c.json(
                Method::PUT,
                &format!("{F}/{name}/code"),
                Some(json!({"ZipFile": zip})),
            )
            .await?;
        } else {
            reply.ok().with_context(|| format!("creating {}", f.name))?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for f in functions {
        loop {
            let v = c
                .json(Method::GET, &format!("{F}/{}", segment(&f.name)), None)
                .await?;
            let cfg = &v["Configuration"];
            let state = cfg["State"].as_str().unwrap_or("");
            let update = cfg["LastUpdateStatus"].as_str().unwrap_or("Successful");
            match (state, update) {
                ("Active", "Successful") => break,
                ("Failed", _) | (_, "Failed") => {
                    bail!("function {} failed: {}", f.name, cfg["StateReason"])
                }
                _ if Instant::now() > deadline => {
                    bail!("function {} not Active after 60 s", f.name)
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

async fn read_metric(admin: &Client, name: &str) -> anyhow::Result<Option<f64>> {
    let reply = admin
        .send(Method::GET, "/metrics", &[], Bytes::new())
        .await?
        .ok()?;
    Ok(metric(&String::from_utf8_lossy(&reply.body), name))
}

/// Waits until the agent has no idle instance (every idle tail has expired); false on
/// timeout.
async fn wait_idle(admin: &Client, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(idle)) = read_metric(admin, IDLE_INSTANCES_METRIC).await
            && idle == 0.0
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_lambda_rules() {
        assert_eq!(function_name("trace-", "42"), "trace-42");
        let long = "a".repeat(64) + "/" + &"b".repeat(64);
        let n = function_name("trace-", &long);
        assert_eq!(n.len(), 6 + 16);
        assert_ne!(
            n,
            function_name("trace-", &("c".repeat(64) + "/" + &"b".repeat(64)))
        );
    }

    #[test]
    fn reads_metrics_text() {
        let text = "# HELP x\n# TYPE hearth_agent_idle_instances gauge\nhearth_agent_idle_instances 3\n\
                    hearth_agent_idle_memory_mb_seconds_total{fn=\"a b\"} 10.5\n\
                    hearth_agent_idle_memory_mb_seconds_total{fn=\"c\"} 2\n\
                    hearth_agent_idle_instances_other 9\n# EOF\n";
        assert_eq!(metric(text, IDLE_INSTANCES_METRIC), Some(3.0));
        assert_eq!(metric(text, IDLE_MEMORY_METRIC), Some(12.5));
        assert_eq!(metric(text, "hearth_nothing"), None);
    }
}
