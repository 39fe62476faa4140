//! Provisioned concurrency: configs go IN_PROGRESS → READY once the agent really holds the
//! instances, which start with `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`, outlive
//! the keep-alive window, split across a weighted alias, survive restarts and a crash.

mod common;

use common::{Hearth, b64, constant_bootstrap, zip_of};
use serde_json::json;
use std::time::{Duration, Instant};

/// A function with versions 1 and 2 (environment V=1, V=2) and alias `live` → 1.
fn setup(h: &Hearth, name: &str) {
    let bootstrap = constant_bootstrap(
        r#"{\"init\":\"$AWS_LAMBDA_INITIALIZATION_TYPE\",\"v\":\"$V\"}"#,
        "",
    );
    let zip = zip_of(&[("bootstrap", 0o755, bootstrap.as_bytes())]);
    let body = json!({ "FunctionName": name, "Runtime": "provided", "Code": { "ZipFile": b64(&zip) },
                       "Environment": { "Variables": { "V": "1" } } });
    assert_eq!(h.create(body).status, 201);
    h.wait_settled(name);
    let publish = |expect: &str| {
        let r = h.request(
            "POST",
            &format!("/2015-03-31/functions/{name}/versions"),
            &[],
            b"{}",
        );
        assert_eq!(r.json()["Version"], expect, "{}", r.text());
    };
    publish("1");
    let cfg = json!({ "Environment": { "Variables": { "V": "2" } } }).to_string();
    h.request(
        "PUT",
        &format!("/2015-03-31/functions/{name}/configuration"),
        &[],
        cfg.as_bytes(),
    );
    h.wait_settled(name);
    publish("2");
    let alias = json!({ "Name": "live", "FunctionVersion": "1" }).to_string();
    let r = h.request(
        "POST",
        &format!("/2015-03-31/functions/{name}/aliases"),
        &[],
        alias.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

fn put(h: &Hearth, name: &str, q: &str, n: u32) -> serde_json::Value {
    let body = json!({ "ProvisionedConcurrentExecutions": n }).to_string();
    let path = format!("/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier={q}");
    let r = h.request("PUT", &path, &[], body.as_bytes());
    assert_eq!(r.status, 202, "{}", r.text());
    r.json()
}

fn wait_status(h: &Hearth, name: &str, q: &str, want: &str) -> serde_json::Value {
    let path = format!("/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier={q}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = h.request("GET", &path, &[], b"").json();
        if r["Status"] == want {
            return r;
        }
        assert!(Instant::now() < deadline, "{r}\n{}", h.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_instances(h: &Hearth, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.instance_count() != n {
        assert!(
            Instant::now() < deadline,
            "{} instances, want {n}",
            h.instance_count()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn provisioned_instances_really_run_and_outlive_keep_alive() {
    let h = Hearth::start_with("[agent]\nidle_timeout_secs = 1\n");
    setup(&h, "pc");
    let r = put(&h, "pc", "1", 2);
    assert_eq!(
        (
            r["Status"].as_str(),
            r["RequestedProvisionedConcurrentExecutions"].as_u64()
        ),
        (Some("IN_PROGRESS"), Some(2))
    );
    let ready = wait_status(&h, "pc", "1", "READY");
    assert_eq!(ready["AllocatedProvisionedConcurrentExecutions"], 2);
    assert_eq!(h.instance_count(), 2, "two instances before any invoke");
    let cli = h.cli(&["fn", "provisioned", "get", "pc", "--qualifier", "1"]);
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains("READY"),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let cli = h.cli(&["fn", "provisioned", "list", "pc"]);
    assert!(String::from_utf8_lossy(&cli.stdout).contains("function:pc:1"));
    let inv = h.invoke("pc:1", "{}");
    assert_eq!(inv.header("x-hearth-cold-start"), Some("false"));
    assert_eq!(inv.json()["init"], "provisioned-concurrency");
    assert_eq!(inv.json()["v"], "1");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        h.instance_count(),
        2,
        "provisioned instances outlive the keep-alive window"
    );
    // $LATEST is on demand.
    assert_eq!(h.invoke("pc", "{}").json()["init"], "on-demand");
    // Refusals.
    let bad = h.request(
        "PUT",
        "/2019-09-30/functions/pc/provisioned-concurrency?Qualifier=$LATEST",
        &[],
        br#"{"ProvisionedConcurrentExecutions":1}"#,
    );
    assert_eq!(bad.status, 400);
    let missing = h.request(
        "PUT",
        "/2019-09-30/functions/pc/provisioned-concurrency?Qualifier=9",
        &[],
        br#"{"ProvisionedConcurrentExecutions":1}"#,
    );
    assert_eq!(missing.status, 404);
    let list = h
        .request(
            "GET",
            "/2019-09-30/functions/pc/provisioned-concurrency?List=ALL",
            &[],
            b"",
        )
        .json();
    assert_eq!(
        list["ProvisionedConcurrencyConfigs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Delete: the instances go back to ordinary keep-alive and stop.
    let del = h.request(
        "DELETE",
        "/2019-09-30/functions/pc/provisioned-concurrency?Qualifier=1",
        &[],
        b"",
    );
    assert_eq!(del.status, 204);
    wait_instances(&h, 0);
    let gone = h.request(
        "GET",
        "/2019-09-30/functions/pc/provisioned-concurrency?Qualifier=1",
        &[],
        b"",
    );
    assert_eq!(
        (gone.status, gone.error_type()),
        (404, "ProvisionedConcurrencyConfigNotFoundException")
    );
}

#[test]
fn weighted_alias_splits_instances_and_a_restart_restores_them() {
    let mut h = Hearth::start_with("[agent]\nidle_timeout_secs = 1\n");
    setup(&h, "split");
    let routing =
        json!({ "RoutingConfig": { "AdditionalVersionWeights": { "2": 0.5 } } }).to_string();
    let r = h.request(
        "PUT",
        "/2015-03-31/functions/split/aliases/live",
        &[],
        routing.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    put(&h, "split", "live", 4);
    wait_status(&h, "split", "live", "READY");
    assert_eq!(h.instance_count(), 4);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        let r = h.invoke("split:live", "{}");
        assert_eq!(
            r.header("x-hearth-cold-start"),
            Some("false"),
            "both versions have warm instances"
        );
        seen.insert(r.json()["v"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    h.restart();
    wait_instances(&h, 4);
    assert_eq!(
        h.invoke("split:live", "{}").header("x-hearth-cold-start"),
        Some("false")
    );
}

#[test]
fn crash_after_the_provision_step_then_restart_gives_exactly_n() {
    let mut h = Hearth::start_env(
        "[agent]\nidle_timeout_secs = 1\n",
        &[("HEARTH_FAULT_KILL_AFTER_STEP", "provision")],
    );
    setup(&h, "pcrash");
    put(&h, "pcrash", "1", 3);
    h.wait_exit(Duration::from_secs(30));
    h.env.clear();
    h.launch_again();
    let ready = wait_status(&h, "pcrash", "1", "READY");
    assert_eq!(ready["AllocatedProvisionedConcurrentExecutions"], 3);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(h.instance_count(), 3, "exactly N instances");
    // Deleting the version deletes its config and releases its instances.
    let del = h.request(
        "DELETE",
        "/2015-03-31/functions/pcrash?Qualifier=1",
        &[],
        b"",
    );
    assert_eq!(
        del.status,
        409,
        "alias live still points at version 1: {}",
        del.text()
    );
    let to2 = json!({ "FunctionVersion": "2" }).to_string();
    assert_eq!(
        h.request(
            "PUT",
            "/2015-03-31/functions/pcrash/aliases/live",
            &[],
            to2.as_bytes()
        )
        .status,
        200
    );
    assert_eq!(
        h.request(
            "DELETE",
            "/2015-03-31/functions/pcrash?Qualifier=1",
            &[],
            b""
        )
        .status,
        204
    );
    wait_instances(&h, 0);
}
