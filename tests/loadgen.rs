//! `hearth loadgen` as a real binary: the open loop shows a server stall that the closed
//! loop hides; `loadgen invoke` and a small trace replay against a real `hearth serve`.

mod common;

use common::{BIN, Hearth, example, repo};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An HTTP/1.1 + h2c server on 127.0.0.1:0 answering `{}`; every request that arrives
/// during `[first request + stall_after, +1 s)` is held for one second.
struct StallServer {
    addr: SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
}

impl StallServer {
    fn start(stall_after: Option<Duration>) -> StallServer {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let first: Arc<Mutex<Option<Instant>>> = Arc::default();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let first = first.clone();
                let svc = hyper::service::service_fn(move |_req| {
                    let now = Instant::now();
                    let t0 = *first.lock().unwrap().get_or_insert(now);
                    let stall = stall_after.is_some_and(|s| {
                        let since = now - t0;
                        since >= s && since < s + Duration::from_secs(1)
                    });
                    async move {
                        if stall {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"{}")),
                        ))
                    }
                });
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        StallServer { addr, rt: Some(rt) }
    }

    fn url(&self) -> String {
        format!("http://{}/ping", self.addr)
    }
}

impl Drop for StallServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `hearth loadgen ARGS --json FILE --quiet` and returns the report.
fn loadgen(args: &[&str], env: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut cmd = Command::new(BIN);
    cmd.arg("loadgen")
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--quiet");
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 0, or 2 when no request succeeded (the report says why).
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "loadgen {args:?}: {}\n{stdout}\n{stderr}",
        out.status
    );
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    println!("{stdout}");
    serde_json::from_str(&text).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{v} is not an unsigned number"))
}

fn assert_common_keys(r: &Value) {
    for k in [
        "mode",
        "target",
        "duration_s",
        "requests",
        "achieved_rate",
        "errors",
        "cold_starts",
        "latency_us",
    ] {
        assert!(r.get(k).is_some(), "report lacks {k}: {r}");
    }
    for k in ["p50", "p90", "p99", "p99_9", "max", "mean"] {
        assert!(r["latency_us"][k].is_number(), "latency_us lacks {k}: {r}");
    }
    assert!(r["errors"].is_object());
    let errors: u64 = r["errors"].as_object().unwrap().values().map(u).sum();
    assert_eq!(u(&r["ok"]) + errors, u(&r["requests"]), "{r}");
}

#[test]
fn open_loop_shows_a_stall_that_closed_loop_hides() {
    let stalled = StallServer::start(Some(Duration::from_millis(1500)));
    let open = loadgen(
        &[
            "http",
            "--url",
            &stalled.url(),
            "--rate",
            "1000",
            "--duration",
            "4",
        ],
        &[],
    );
    assert_common_keys(&open);
    assert_eq!(open["mode"], "open-loop");
    assert_eq!(u(&open["requests"]), 4000, "{open}");
    assert_eq!(u(&open["ok"]), 4000, "{open}");
    let open_p99 = u(&open["latency_us"]["p99"]);
    assert!(
        open_p99 >= 500_000,
        "open-loop p99 {open_p99} µs hides the stall: {open}"
    );

    let stalled = StallServer::start(Some(Duration::from_millis(1500)));
    let closed = loadgen(
        &[
            "http",
            "--url",
            &stalled.url(),
            "--concurrency",
            "4",
            "--duration",
            "4",
        ],
        &[],
    );
    assert_common_keys(&closed);
    assert_eq!(closed["mode"], "closed-loop");
    let closed_p99 = u(&closed["latency_us"]["p99"]);
    // The same stall held only the few requests in flight: the closed loop waited with them.
    assert!(u(&closed["latency_us"]["max"]) >= 900_000, "{closed}");
    assert!(
        open_p99 > 10 * closed_p99,
        "open p99 {open_p99} µs vs closed p99 {closed_p99} µs"
    );
}

#[test]
fn http2_and_request_options() {
    let server = StallServer::start(None);
    let r = loadgen(
        &[
            "http",
            "--url",
            &server.url(),
            "--http2",
            "--rate",
            "200",
            "--duration",
            "1",
            "--connections",
            "3",
            "--method",
            "PUT",
            "--body",
            "{\"x\":1}",
            "-H",
            "X-Test: 1",
        ],
        &[],
    );
    assert_common_keys(&r);
    assert_eq!((u(&r["requests"]), u(&r["ok"])), (200, 200), "{r}");
    assert_eq!(r["http2"], true);
    assert_eq!(u(&r["connections"]), 3);
    // A server that holds every request for a second: each one times out.
    let held = StallServer::start(Some(Duration::ZERO));
    let r = loadgen(
        &[
            "http",
            "--url",
            &held.url(),
            "--rate",
            "20",
            "--duration",
            "0.5",
            "--timeout",
            "0.3",
        ],
        &[],
    );
    assert_eq!(u(&r["requests"]), 10, "{r}");
    assert_eq!(u(&r["errors"]["timeout"]), 10, "{r}");
    // Nothing listens: every request is a connect error, and the exit code says so.
    let dead = format!("http://{}/", server.addr);
    drop(server);
    let out = Command::new(BIN)
        .args([
            "loadgen",
            "http",
            "--url",
            &dead,
            "--rate",
            "50",
            "--duration",
            "1",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("connect 50"));
}

#[test]
fn invoke_against_hearth_serve() {
    let h = Hearth::start();
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    let r = loadgen(
        &[
            "invoke",
            "--function",
            "echo",
            "--payload",
            "{\"a\":1}",
            "--rate",
            "20",
            "--duration",
            "2",
        ],
        &[("HEARTH_ENDPOINT", &h.endpoint)],
    );
    assert_common_keys(&r);
    assert_eq!(r["mode"], "open-loop");
    assert_eq!(r["command"], "invoke");
    assert_eq!(u(&r["requests"]), 40, "{r}");
    assert_eq!(u(&r["ok"]), 40, "{r}\n{}", h.log());
    assert!(u(&r["cold_starts"]) >= 1, "{r}");
    assert!(
        r["target"]
            .as_str()
            .unwrap()
            .ends_with("/2015-03-31/functions/echo/invocations")
    );
}

/// `loadgen invoke` over TLS against `hearth serve` with a dev certificate: HTTP/3 (one QUIC
/// connection per thread, many streams) trusting the certificate, and h2 and HTTP/1.1 over TLS
/// with `--insecure`; every request answered.
#[test]
fn invoke_over_http3_and_tls() {
    let h = Hearth::start_with("[tls]\nlisten = \"127.0.0.1:0\"\ndev = true\n");
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    let ready: Value =
        serde_json::from_str(&std::fs::read_to_string(h.dir.path().join("ready.json")).unwrap())
            .unwrap();
    let port = ready["tls_listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap();
    let endpoint = format!("https://127.0.0.1:{port}");
    let ca = h.data_dir().join("tls/dev-cert.pem");
    let ca = ca.to_str().unwrap();
    for (flags, protocol) in [
        (vec!["--http3", "--ca-cert", ca], "h3"),
        (vec!["--http2", "--insecure"], "h2-tls"),
        (vec!["--ca-cert", ca], "h1-tls"),
    ] {
        let mut args = vec![
            "invoke",
            "--endpoint",
            &endpoint,
            "--function",
            "echo",
            "--concurrency",
            "8",
            "--duration",
            "1",
        ];
        args.extend(&flags);
        let r = loadgen(&args, &[]);
        assert_common_keys(&r);
        assert_eq!(r["mode"], "closed-loop");
        assert_eq!(r["protocol"], protocol);
        assert!(u(&r["ok"]) > 0, "{r}\n{}", h.log());
        assert_eq!(u(&r["ok"]), u(&r["requests"]), "{r}\n{}", h.log());
    }
    // Refused up front: h3 needs https://, https:// needs a trust choice.
    for args in [
        vec![
            "invoke",
            "--endpoint",
            &h.endpoint,
            "--function",
            "echo",
            "--rate",
            "1",
            "--http3",
        ],
        vec![
            "invoke",
            "--endpoint",
            &endpoint,
            "--function",
            "echo",
            "--rate",
            "1",
            "--http3",
        ],
    ] {
        let out = Command::new(BIN)
            .arg("loadgen")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--http3 needs an https:// URL") || err.contains("--ca-cert"),
            "{err}"
        );
    }
}

/// A bash bootstrap that answers `{}` after sleeping the event's `sleep_ms`.
const SLEEP_BOOTSTRAP: &str = r#"#!/usr/bin/bash
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
ev=$(mktemp /tmp/ev.XXXXXX)
hd=$(mktemp /tmp/hd.XXXXXX)
while true; do
  curl -sS --noproxy '*' -D "$hd" -o "$ev" "$api/next"
  id=$(tr -d '\r' < "$hd" | awk -F': ' 'tolower($1)=="lambda-runtime-aws-request-id" {print $2}')
  body=$(< "$ev")
  ms=0
  if [[ $body =~ \"sleep_ms\":\ *([0-9]+) ]]; then ms=${BASH_REMATCH[1]}; fi
  if (( ms > 0 )); then sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"; fi
  curl -sS --noproxy '*' -o /dev/null -X POST "$api/$id/response" -d '{}'
done
"#;

#[test]
fn trace_replay_accounts_for_every_invocation() {
    // Keep-alive scaled like the trace: 600 s / 60.
    let h = Hearth::start_with("[agent]\nidle_timeout_secs = 10\n");
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    std::fs::write(&bootstrap, SLEEP_BOOTSTRAP).unwrap();
    let traces = repo().join("tests/data/trace-sample");
    let r = loadgen(
        &[
            "trace",
            "--traces",
            traces.to_str().unwrap(),
            "--endpoint",
            &h.endpoint,
            "--admin",
            &h.admin,
            "--bootstrap",
            bootstrap.to_str().unwrap(),
            "--functions",
            "3",
            "--minutes",
            "2",
            "--compress",
            "60",
            "--seed",
            "7",
            "--create",
        ],
        &[],
    );
    assert_common_keys(&r);
    assert_eq!(r["mode"], "trace");
    assert_eq!(u(&r["functions"]), 3);
    // Functions 0, 1, 2 of the sample: 1 + 10 + (2 + 2) invocations in minutes 1-2.
    assert_eq!(u(&r["invocations"]), 15, "{r}");
    assert_eq!(u(&r["requests"]), 15, "{r}");
    assert_eq!(u(&r["ok"]), 15, "{r}\n{}", h.log());
    assert!(
        u(&r["cold_starts"]) >= 3,
        "every function starts cold once: {r}"
    );
    assert!(
        u(&r["cold_starts_excl_first"]) <= u(&r["cold_starts"]) - 3,
        "{r}"
    );
    let rate = r["cold_start_rate_excl_first"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&rate), "{r}");
    assert_eq!(r["compress"], 60.0);
    assert_eq!(u(&r["seed"]), 7);
    for k in ["p50", "p99", "p99_9"] {
        assert!(r["start_delay_us"][k].is_number(), "{r}");
    }
    // "unavailable" until the agent exports the idle memory-time counter.
    let status = r["warm_memory_status"].as_str().unwrap();
    assert!(["complete", "unavailable"].contains(&status), "{r}");
    if status == "complete" {
        assert!(r["warm_memory_mb_s"].as_f64().unwrap() >= 0.0, "{r}");
    }
    // The functions were created with the trace's memory (clamped to at least 128 MB).
    let f = h
        .request("GET", "/2015-03-31/functions/trace-0", &[], b"")
        .json();
    assert_eq!(f["Configuration"]["MemorySize"], 189);
    assert_eq!(f["Configuration"]["Runtime"], "provided");
}
