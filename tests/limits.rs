//! Admission limits (reserved and account concurrency, rate limits) and the metadata cache,
//! against a real server: 429 `TooManyRequestsException` with `Reason` and `Retry-After`,
//! permits held until the instance finishes (not until the client leaves), and warm invokes
//! served without store reads.

mod common;

use common::{Hearth, constant_bootstrap, example, write_bootstrap};
use std::io::Write;
use std::time::{Duration, Instant};

/// The value of one sample line (`name` including its labels), 0 when absent.
fn metric(h: &Hearth, name: &str) -> f64 {
    let m = h.get_admin("/metrics").text();
    m.lines()
        .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}

fn inflight(h: &Hearth, f: &str) -> f64 {
    metric(h, &format!("hearth_router_inflight{{function=\"{f}\"}}"))
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `provided` function that sleeps `secs` then answers `{}` (1769 MB: one whole vCPU, so
/// the sleep dominates).
fn deploy_sleeper(h: &Hearth, name: &str, secs: u32) {
    let dir = h.dir.path().join(name);
    write_bootstrap(&dir, &constant_bootstrap("{}", &format!("sleep {secs}")));
    h.deploy(
        name,
        "provided",
        "",
        &dir,
        &["--memory", "1769", "--timeout", "30"],
    );
}

/// Sends an invoke on a raw connection and hangs up after `after` without reading.
fn invoke_and_hang_up(endpoint: &str, name: &str, after: Duration) {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    s.write_all(req.as_bytes()).unwrap();
    std::thread::sleep(after);
    drop(s);
}

fn assert_throttled(r: &common::Resp, reason: &str) {
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.error_type(), "TooManyRequestsException");
    assert_eq!(r.json()["Reason"], reason, "{}", r.text());
    let retry: u32 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

fn put_concurrency(h: &Hearth, f: &str, n: &str) {
    let out = h.cli(&["fn", "concurrency", "put", f, n]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reserved_concurrency_zero_throttles_every_invoke() {
    let h = Hearth::start();
    h.deploy("f", "provided", "", &example("echo-sh"), &[]);
    assert_eq!(h.invoke("f", "{}").status, 200);
    put_concurrency(&h, "f", "0");
    let r = h.invoke("f", "{}");
    assert_throttled(&r, "ReservedFunctionConcurrentInvocationLimitExceeded");
    assert_eq!(
        metric(
            &h,
            "hearth_router_function_throttles_total{function=\"f\",outcome=\"ReservedFunctionConcurrentInvocationLimitExceeded\"}"
        ),
        1.0
    );
    // Deleting the reservation is seen by the very next invoke (exact invalidation).
    let out = h.cli(&["fn", "concurrency", "delete", "f"]);
    assert!(out.status.success());
    assert_eq!(h.invoke("f", "{}").status, 200);
}

#[test]
fn reserved_concurrency_caps_parallel_invokes_and_hangups_keep_their_permits() {
    let h = Hearth::start();
    deploy_sleeper(&h, "slow", 2);
    put_concurrency(&h, "slow", "2");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (admin, stop) = (h.admin.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut max = 0.0f64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let m = ureq::get(format!("{admin}/metrics"))
                    .call()
                    .unwrap()
                    .into_body()
                    .read_to_string()
                    .unwrap();
                let v = m
                    .lines()
                    .find(|l| l.starts_with("hearth_router_inflight{function=\"slow\"} "))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                    .unwrap_or(0.0);
                max = max.max(v);
                std::thread::sleep(Duration::from_millis(5));
            }
            max
        })
    };
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let mut hangups = Vec::new();
    for _ in 0..3 {
        let (endpoint, barrier) = (h.endpoint.clone(), barrier.clone());
        hangups.push(std::thread::spawn(move || {
            barrier.wait();
            invoke_and_hang_up(&endpoint, "slow", Duration::from_millis(200));
        }));
    }
    let mut callers = Vec::new();
    for _ in 0..5 {
        let (endpoint, barrier) = (h.endpoint.clone(), barrier.clone());
        callers.push(std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            barrier.wait();
            let r = agent
                .post(format!("{endpoint}/2015-03-31/functions/slow/invocations"))
                .send("{}")
                .unwrap();
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            (status, retry, r.into_body().read_to_string().unwrap())
        }));
    }
    for t in hangups {
        t.join().unwrap();
    }
    let answers: Vec<_> = callers.into_iter().map(|t| t.join().unwrap()).collect();
    let throttled = answers.iter().filter(|a| a.0 == 429).count();
    for (status, retry, body) in &answers {
        assert!(*status == 200 || *status == 429, "{status} {body}");
        if *status == 429 {
            assert!(*retry, "429 without Retry-After");
            assert!(
                body.contains("ReservedFunctionConcurrentInvocationLimitExceeded"),
                "{body}"
            );
        }
    }
    assert!(throttled >= 3, "8 at once, 2 reserved: {answers:?}");
    wait_for("in-flight back to 0", || inflight(&h, "slow") == 0.0);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let max = poller.join().unwrap();
    assert!(max <= 2.0, "at most 2 in flight, saw {max}");
    assert!(max >= 1.0, "the poller saw the invocations run");
    // Every outcome is counted, those of hung-up callers too.
    let counted = |outcome: &str| {
        metric(
            &h,
            &format!(
                "hearth_router_function_invocations_total{{function=\"slow\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    wait_for("8 outcomes counted", || {
        counted("success") + counted("throttled") == 8.0
    });

    // A client that hangs up does not free its permit: the instance finishing does.
    put_concurrency(&h, "slow", "1");
    let endpoint = h.endpoint.clone();
    let hung = std::thread::spawn(move || {
        invoke_and_hang_up(&endpoint, "slow", Duration::from_millis(100))
    });
    wait_for("the invocation admitted", || inflight(&h, "slow") == 1.0);
    hung.join().unwrap();
    let r = h.invoke("slow", "{}");
    assert_throttled(&r, "ReservedFunctionConcurrentInvocationLimitExceeded");
    wait_for("the hung-up invocation finished", || {
        inflight(&h, "slow") == 0.0
    });
    assert_eq!(h.invoke("slow", "{}").status, 200);
}

#[test]
fn account_concurrency_is_shared_by_unreserved_functions() {
    // Pool: 2 minus r's reservation of 1 = 1 for everything unreserved.
    let h = Hearth::start_with("[limits]\naccount_concurrency = 2\n");
    deploy_sleeper(&h, "slow", 2);
    h.deploy("quick", "provided", "", &example("echo-sh"), &[]);
    h.deploy("r", "provided", "", &example("echo-sh"), &[]);
    put_concurrency(&h, "r", "1");
    let endpoint = h.endpoint.clone();
    let held = std::thread::spawn(move || {
        invoke_and_hang_up(&endpoint, "slow", Duration::from_millis(100))
    });
    wait_for("slow admitted", || inflight(&h, "slow") == 1.0);
    held.join().unwrap();
    assert_throttled(
        &h.invoke("quick", "{}"),
        "ConcurrentInvocationLimitExceeded",
    );
    assert_eq!(
        h.invoke("r", "{}").status,
        200,
        "reserved: not from the pool"
    );
    wait_for("slow finished", || inflight(&h, "slow") == 0.0);
    assert_eq!(h.invoke("quick", "{}").status, 200);
}

#[test]
fn rate_limits_from_config_and_per_function_overrides() {
    let h = Hearth::start_with("[limits]\nfunction_rate_per_sec = 1\n");
    h.deploy("f", "provided", "", &example("echo-sh"), &[]);
    let throttled = (0..5)
        .map(|_| h.invoke("f", "{}"))
        .find(|r| r.status == 429)
        .expect("1 invoke/s: a burst is throttled");
    assert_throttled(&throttled, "FunctionInvocationRateLimitExceeded");
    let out = h.cli(&["limits", "put", "f", "--rate", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = h.cli(&["limits", "get", "f"]);
    let got: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["RatePerSec"], 1000);
    for _ in 0..5 {
        assert_eq!(h.invoke("f", "{}").status, 200);
    }
    let bad = h.request(
        "PUT",
        "/hearth/v1/functions/f/limits",
        &[],
        br#"{"RatePerSec": 0}"#,
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    let missing = h.cli(&["limits", "get", "nope"]);
    assert!(!missing.status.success());
    assert!(h.cli(&["limits", "delete", "f"]).status.success());
    let back = (0..5)
        .map(|_| h.invoke("f", "{}"))
        .find(|r| r.status == 429);
    assert!(back.is_some(), "the config default applies again");
}

#[test]
fn warm_invokes_read_nothing_from_the_store() {
    let h = Hearth::start();
    h.deploy("f", "provided", "", &example("echo-sh"), &[]);
    assert_eq!(h.invoke("f", "{}").status, 200);
    assert_eq!(h.invoke("nope", "{}").status, 404);
    let reads = metric(&h, "hearth_router_metadata_reads_total");
    let hits = metric(&h, "hearth_router_metadata_cache_total{result=\"hit\"}");
    assert!(reads > 0.0);
    for _ in 0..50 {
        assert_eq!(h.invoke("f", "{}").status, 200);
    }
    assert_eq!(h.invoke("nope", "{}").status, 404, "a negative entry");
    assert_eq!(
        metric(&h, "hearth_router_metadata_reads_total"),
        reads,
        "warm invokes are served from the cache"
    );
    assert!(metric(&h, "hearth_router_metadata_cache_total{result=\"hit\"}") >= hits + 150.0);
    let m = h.get_admin("/metrics").text();
    for phase in [
        "accept",
        "route",
        "authenticate",
        "resolve",
        "admit",
        "place",
        "forward",
        "respond",
    ] {
        assert!(
            m.contains(&format!(
                "hearth_router_phase_seconds_count{{phase=\"{phase}\"}}"
            )),
            "phase {phase} missing"
        );
    }
    assert!(
        m.contains(
            "hearth_router_function_invocations_total{function=\"f\",outcome=\"success\"} 51"
        ),
        "{m}"
    );
    assert!(m.contains("hearth_router_function_cold_starts_total{function=\"f\"} 1"));
    // A change is seen by the next invoke: only f's entries were dropped.
    put_concurrency(&h, "f", "0");
    assert_eq!(h.invoke("f", "{}").status, 429);
}
