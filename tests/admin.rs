//! Admin port, metrics, configuration files and `check-config`.

mod common;

use common::{BIN, Hearth, example, repo};
use std::process::Command;

#[test]
fn healthz_and_metrics() {
    let h = Hearth::start();
    assert_eq!(h.get_admin("/healthz").status, 200);
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    h.invoke("echo", "{}");
    h.invoke("echo", "{}");
    h.invoke("nope", "{}");
    let m = h.get_admin("/metrics").text();
    for needle in [
        "hearth_router_invocations_total{outcome=\"success\"} 2",
        "hearth_router_invocations_total{outcome=\"client_error\"} 1",
        "hearth_agent_cold_starts_total 1",
        "hearth_agent_cold_start_duration_seconds_count 1",
        "hearth_agent_cold_start_step_seconds_count{step=\"capacity\"} 1",
        "hearth_agent_cold_start_step_seconds_count{step=\"code\"} 1",
        "hearth_agent_cold_start_step_seconds_count{step=\"sandbox\"} 1",
        "hearth_agent_cold_start_step_seconds_count{step=\"runtime_init\"} 1",
        "hearth_router_invoke_duration_seconds_bucket",
        "hearth_agent_instances 1",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in\n{m}");
    }
    assert_eq!(h.get_admin("/nope").status, 404);
}

#[test]
fn every_example_config_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = Command::new(BIN)
                .arg("check-config")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn check_config_reports_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "account_id = \"1\"\nregion = \"?\"\n[agent]\nidle_timeout_secs = 0\npids_max = 1\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "account_id",
        "region",
        "agent.idle_timeout_secs",
        "agent.pids_max",
    ] {
        assert!(err.contains(key), "{key} missing from: {err}");
    }
    std::fs::write(&bad, "[agent]\nidle_timeout = 3\n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("idle_timeout"));
}

#[test]
fn serve_refuses_a_bad_config_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("HEARTH_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HEARTH_LISTEN"));
}

#[test]
fn idle_instances_are_stopped_after_the_keep_alive_window() {
    let h = Hearth::start_with("[agent]\nidle_timeout_secs = 1\n");
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    let first = h.invoke("echo", "{}");
    assert!(!h.sandbox_pids().is_empty());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !h.sandbox_pids().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "idle instance was not stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let next = h.invoke("echo", "{}");
    assert_eq!(next.header("x-hearth-cold-start"), Some("true"));
    assert_ne!(
        next.header("x-hearth-instance"),
        first.header("x-hearth-instance")
    );
}

#[test]
fn reuse_instances_off_makes_every_invoke_cold_and_memory_time_is_counted() {
    let h = Hearth::start_with("[agent]\nreuse_instances = false\n");
    h.deploy(
        "echo",
        "provided",
        "",
        &example("echo-sh"),
        &["--memory", "256"],
    );
    for _ in 0..3 {
        let r = h.invoke("echo", "{}");
        assert_eq!(r.header("x-hearth-cold-start"), Some("true"));
        let delay: u64 = r
            .header("x-hearth-start-delay-us")
            .unwrap()
            .parse()
            .unwrap();
        assert!(delay > 0);
    }
    let m = h.get_admin("/metrics").text();
    assert!(m.contains("hearth_agent_cold_starts_total 3"), "{m}");
    assert!(
        m.contains("hearth_agent_start_delay_seconds_count 3"),
        "{m}"
    );

    let warm = Hearth::start();
    warm.deploy(
        "echo",
        "provided",
        "",
        &example("echo-sh"),
        &["--memory", "256"],
    );
    warm.invoke("echo", "{}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = warm.invoke("echo", "{}");
    assert_eq!(r.header("x-hearth-cold-start"), Some("false"));
    let m = warm.get_admin("/metrics").text();
    let line = m
        .lines()
        .find(|l| l.starts_with("hearth_agent_idle_memory_mb_seconds_total"))
        .unwrap();
    let value: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    // ~0.3 s idle × 256 MB.
    assert!(value > 256.0 * 0.2 && value < 256.0 * 5.0, "{line}");
}
