//! `hearth loadgen`: the load-test harness.
//!
//! - **Open loop** (`--rate`): requests are scheduled by the clock ([`open_loop`]); latency
//!   runs from the scheduled time, so a stalled server shows in the percentiles.
//! - **Closed loop** (`--concurrency`): N workers, each one request at a time ([`closed_loop`]).
//! - **Trace replay** ([`replay`]): the Azure Functions trace ([`trace`]) against hearth,
//!   with cold-start rate, warm memory-time and start delay.
//!
//! The hot path ([`engine`], [`client`], [`h1`], [`h3`]): one current-thread runtime per core,
//! one connection per worker (the lean HTTP/1.1 client, hyper for h2c and for h1/h2 over TLS)
//! or with `--http3` one QUIC connection per thread shared by its workers, one histogram per
//! thread merged at the end ([`stats`]).

pub mod arrivals;
pub mod client;
mod closed_loop;
pub mod engine;
pub mod h1;
pub mod h3;
mod open_loop;
pub mod replay;
pub mod report;
pub mod stats;
pub mod target;
pub mod tls;
pub mod trace;

use crate::cli::LoadgenCommand;
use crate::cli::loadgen::LoadArgs;
use anyhow::{Context, bail};
use bytes::Bytes;
use client::Wire;
use engine::{Load, Plan};
use http::Method;
use std::sync::Arc;
use std::time::Duration;
use target::{Target, Template};

/// Connections of an open-loop run without `--connections`.
pub const DEFAULT_CONNECTIONS: usize = 64;

/// Runs a `loadgen` subcommand; returns the exit code (0, or 2 if no request succeeded).
pub fn run(cmd: LoadgenCommand) -> anyhow::Result<i32> {
    match cmd {
        LoadgenCommand::Http {
            url,
            method,
            body,
            headers,
            load,
        } => {
            let body = body.as_deref().map(target::read_body).transpose()?;
            let method = match method {
                Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .with_context(|| format!("--method {m:?}"))?,
                None if body.is_some() => Method::POST,
                None => Method::GET,
            };
            let headers = headers
                .iter()
                .map(|h| target::parse_header(h))
                .collect::<anyhow::Result<Vec<_>>>()?;
            run_load(
                "http",
                &url,
                method,
                &headers,
                body.unwrap_or_default(),
                &load,
            )
        }
        LoadgenCommand::Invoke {
            endpoint,
            function,
            payload,
            load,
        } => {
            let url = format!(
                "{}/2015-03-31/functions/{}/invocations",
                endpoint.trim_end_matches('/'),
                crate::cli::client::segment(&function)
            );
            let body = match payload {
                Some(p) => target::read_body(&p)?,
                None => Bytes::from_static(b"{}"),
            };
            let headers = [("content-type".to_string(), "application/json".to_string())];
            run_load("invoke", &url, Method::POST, &headers, body, &load)
        }
        LoadgenCommand::Trace(args) => replay::run(args),
    }
}

fn secs(name: &str, v: f64, allow_zero: bool) -> anyhow::Result<Duration> {
    if !v.is_finite() || v < 0.0 || (v == 0.0 && !allow_zero) || v > 1e7 {
        bail!("--{name} {v}: expected a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

/// `http` and `invoke`: one request template, open or closed loop, one report.
fn run_load(
    command: &str,
    url: &str,
    method: Method,
    headers: &[(String, String)],
    body: Bytes,
    a: &LoadArgs,
) -> anyhow::Result<i32> {
    let duration = secs("duration", a.duration, false)?;
    let warmup = secs("warmup", a.warmup, true)?;
    let timeout = secs("timeout", a.timeout, false)?;
    let (target, path) = Target::parse(url)?;
    let wire = wire(&target, a)?;
    let template = Template::new(&target, &path, method, headers, body, wire.absolute_uri())?;
    let (mode, workers, load) = match (a.mode.rate, a.mode.concurrency) {
        (Some(rate), None) => {
            if !rate.is_finite() || rate <= 0.0 || rate > 10_000_000.0 {
                bail!("--rate {rate}: expected requests per second (> 0)");
            }
            let end = warmup + duration;
            let schedule = Box::new(open_loop::fixed_rate(rate, end));
            let connections = a.connections.unwrap_or(DEFAULT_CONNECTIONS);
            let load = Load::Open {
                schedule,
                measure_from: warmup,
                end,
            };
            ("open-loop", connections, load)
        }
        (None, Some(n)) => {
            if a.connections.is_some_and(|c| c != n) {
                eprintln!(
                    "hearth loadgen: --concurrency uses one connection per worker; --connections is ignored"
                );
            }
            ("closed-loop", n, Load::Closed { warmup, duration })
        }
        _ => bail!("give exactly one of --rate and --concurrency"),
    };
    if workers == 0 || workers > 100_000 {
        bail!("connections/concurrency {workers}: expected 1..=100000");
    }
    let plan = Plan {
        source: Arc::new(template),
        addr: target.addr,
        wire: wire.clone(),
        timeout,
        workers,
        load,
        progress: !a.quiet,
    };
    let out = engine::execute(plan)?;
    let mut r = report::base(mode, url, &out);
    r.insert("command".into(), command.into());
    r.insert("rate".into(), a.mode.rate.into());
    r.insert("concurrency".into(), a.mode.concurrency.into());
    r.insert("connections".into(), workers.into());
    r.insert("http2".into(), a.http2.into());
    r.insert("http3".into(), a.http3.into());
    r.insert("protocol".into(), wire.label().into());
    r.insert("warmup_s".into(), a.warmup.into());
    finish(
        serde_json::Value::Object(r),
        a.json.as_deref(),
        out.stats.ok,
    )
}

/// The protocol from the URL's scheme and the flags.
fn wire(target: &Target, a: &LoadArgs) -> anyhow::Result<Wire> {
    if !target.tls {
        if a.http3 {
            bail!("--http3 needs an https:// URL");
        }
        if a.ca_cert.is_some() || a.insecure {
            bail!("--ca-cert and --insecure are for https:// URLs");
        }
        return Ok(if a.http2 { Wire::H2c } else { Wire::H1 });
    }
    let trust = tls::Trust::from_flags(a.ca_cert.as_deref(), a.insecure)?;
    if a.http3 {
        let config = tls::client_config(&trust, b"h3")?;
        return Ok(Wire::H3(Arc::new(h3::Setup::new(config, &target.host)?)));
    }
    let alpn: &[u8] = if a.http2 { b"h2" } else { b"http/1.1" };
    Ok(Wire::Tls {
        config: tls::client_config(&trust, alpn)?,
        name: tls::server_name(&target.host)?,
        http2: a.http2,
    })
}

/// Prints the report, writes the JSON file; exit code 2 if nothing succeeded.
pub(crate) fn finish(
    r: serde_json::Value,
    json: Option<&std::path::Path>,
    ok: u64,
) -> anyhow::Result<i32> {
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", report::render(&r));
    Ok(if ok == 0 { 2 } else { 0 })
}
