//! The asynchronous control plane: Pending/InProgress states, the workflow engine's steps,
//! crash recovery after a fault right after each step's side effect, retries and the admin view.

mod common;

use common::{Hearth, b64, example, zip_of};
use serde_json::json;
use std::time::Duration;

fn echo_zip() -> Vec<u8> {
    let bootstrap = std::fs::read(example("echo-sh").join("bootstrap")).unwrap();
    zip_of(&[("bootstrap", 0o755, &bootstrap)])
}

fn create(h: &Hearth, name: &str, publish: bool) -> serde_json::Value {
    let body = json!({ "FunctionName": name, "Runtime": "provided", "Role": "arn:aws:iam::000000000000:role/r",
                       "Code": { "ZipFile": b64(&echo_zip()) }, "Publish": publish });
    let r = h.create(body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn workflows(h: &Hearth, function: &str) -> Vec<serde_json::Value> {
    let out = h.cli(&[
        "admin",
        "workflows",
        "--function",
        function,
        "--admin",
        &h.admin,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Workflows"].as_array().unwrap().clone()
}

fn sqlite_count(h: &Hearth, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(h.data_dir().join("meta.sqlite")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_slow_step_shows_pending_and_invokes_get_409() {
    let h = Hearth::start_env("", &[("HEARTH_FAULT_DELAY_STEP", "warm_cache:1500")]);
    let c = create(&h, "slow", false);
    assert_eq!(
        (c["State"].as_str(), c["StateReasonCode"].as_str()),
        (Some("Pending"), Some("Creating"))
    );
    let got = h
        .request("GET", "/2015-03-31/functions/slow", &[], b"")
        .json();
    assert_eq!(got["Configuration"]["State"], "Pending");
    let r = h.invoke("slow", "{}");
    assert_eq!(
        (r.status, r.error_type()),
        (409, "ResourceConflictException"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("Pending"));
    let upd = h.request(
        "PUT",
        "/2015-03-31/functions/slow/configuration",
        &[],
        br#"{"Timeout": 5}"#,
    );
    assert_eq!(upd.status, 409, "no update while Pending");
    let settled = h.wait_settled("slow");
    assert_eq!(settled["State"], "Active");
    assert_eq!(h.invoke("slow", r#"{"ok":1}"#).json()["ok"], 1);

    // An update: InProgress, the old code keeps serving, then the new configuration.
    let upd = h.request(
        "PUT",
        "/2015-03-31/functions/slow/configuration",
        &[],
        br#"{"Timeout": 7}"#,
    );
    assert_eq!(upd.json()["LastUpdateStatus"], "InProgress");
    let during = h.invoke("slow", r#"{"during":1}"#);
    assert_eq!(
        during.status, 200,
        "invokes keep running the old version during an update"
    );
    assert_eq!(h.wait_settled("slow")["Timeout"], 7);

    let wf = workflows(&h, "slow");
    assert_eq!(wf.len(), 2);
    assert_eq!(wf[1]["kind"], "create_function");
    assert_eq!(wf[1]["status"], "succeeded");
    let steps = wf[1]["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "store_code",
            "prepare_runtime",
            "warm_cache",
            "publish_route"
        ]
    );
    let warm = &steps[2];
    let took = warm["finished_ms"].as_u64().unwrap() - warm["started_ms"].as_u64().unwrap();
    assert!(took >= 1500, "{warm}");
}

/// Kill -9 right after each step's side effect; a restart completes the workflow with exactly
/// one of everything.
#[test]
fn crash_after_each_step_then_restart_completes_exactly_once() {
    for step in [
        "store_code",
        "prepare_runtime",
        "warm_cache",
        "publish_route",
    ] {
        let mut h = Hearth::start_env("", &[("HEARTH_FAULT_KILL_AFTER_STEP", step)]);
        create(&h, "crashy", true);
        let status = h.wait_exit(Duration::from_secs(30));
        assert!(
            !status.success(),
            "{step}: the fault should have killed serve"
        );
        h.env.clear();
        h.launch_again();
        let c = h.wait_settled("crashy");
        assert_eq!(c["State"], "Active", "{step}");
        let versions = h
            .request("GET", "/2015-03-31/functions/crashy/versions", &[], b"")
            .json();
        let names: Vec<&str> = versions["Versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["Version"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["$LATEST", "1"], "{step}: one version number");
        let blobs = std::fs::read_dir(h.data_dir().join("code"))
            .unwrap()
            .count();
        assert_eq!(blobs, 1, "{step}: one code blob");
        let bumps = sqlite_count(
            &h,
            "SELECT COUNT(*) FROM changes WHERE kind = 'route' AND key = 'crashy'",
        );
        assert_eq!(bumps, 1, "{step}: one route publication");
        let wf = workflows(&h, "crashy");
        assert_eq!(wf.len(), 1, "{step}: one workflow");
        assert_eq!(wf[0]["status"], "succeeded", "{step}");
        assert_eq!(
            h.invoke("crashy:1", r#"{"step":1}"#).json()["step"],
            1,
            "{step}"
        );
    }
}

#[test]
fn crash_during_delete_cleanup_then_restart_finishes() {
    let mut h = Hearth::start_env("", &[("HEARTH_FAULT_KILL_AFTER_STEP", "cleanup")]);
    create(&h, "doomed", false);
    h.wait_settled("doomed");
    assert_eq!(h.invoke("doomed", "{}").status, 200);
    assert_eq!(
        h.request("DELETE", "/2015-03-31/functions/doomed", &[], b"")
            .status,
        204
    );
    h.wait_exit(Duration::from_secs(30));
    h.env.clear();
    h.launch_again();
    assert_eq!(h.invoke("doomed", "{}").status, 404);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let wf = workflows(&h, "doomed");
        let delete = wf.iter().find(|w| w["kind"] == "delete_function").unwrap();
        if delete["status"] == "succeeded" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{delete}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failed_workflow_is_reported_and_can_be_retried() {
    let h = Hearth::start_env("", &[("HEARTH_FAULT_FAIL_STEP", "warm_cache:1")]);
    create(&h, "flaky", false);
    let c = h.wait_settled("flaky");
    assert_eq!(c["State"], "Failed");
    assert_eq!(c["StateReasonCode"], "InternalError");
    assert!(
        c["StateReason"].as_str().unwrap().contains("warm_cache"),
        "{c}"
    );
    let r = h.invoke("flaky", "{}");
    assert_eq!(r.status, 409, "{}", r.text());
    let wf = workflows(&h, "flaky");
    assert_eq!(wf[0]["status"], "failed");
    let id = wf[0]["id"].as_str().unwrap().to_string();
    let out = h.cli(&["admin", "retry", &id, "--admin", &h.admin]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h
        .request("GET", "/2015-03-31/functions/flaky", &[], b"")
        .json()["Configuration"]["State"]
        != "Active"
    {
        assert!(std::time::Instant::now() < deadline, "retry did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(h.invoke("flaky", r#"{"x":2}"#).json()["x"], 2);
    let wf = workflows(&h, "flaky");
    assert_eq!(wf[0]["status"], "succeeded");
    assert_eq!(wf[0]["retries"], 1);
    let warm = wf[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "warm_cache")
        .unwrap()
        .clone();
    assert_eq!(warm["attempts"], 2, "{warm}");
    // Retrying a finished workflow is refused.
    let again = h.cli(&["admin", "retry", &id, "--admin", &h.admin]);
    assert!(!again.status.success());
}
