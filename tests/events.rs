//! Asynchronous invokes on a real hearth: durable accept (202), delivery workers, retries,
//! maximum event age, destinations (queues and functions), and at-least-once across `kill -9`.

mod common;

use common::{Hearth, b64, zip_of};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Small backoffs and a short lease, so retries and redeliveries happen within a test.
const FAST: &str = "[events]\nretry_base_ms = 200\nthrottle_base_ms = 100\nthrottle_max_ms = 500\nlease_secs = 3\n";

/// A bash runtime: sleeps `$SLEEP` seconds, then fails when `$FAIL` is 1, else answers with
/// the event it got.
const BOOTSTRAP: &str = r#"#!/usr/bin/bash
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  curl -sS -D /tmp/h -o /tmp/ev "$api/next"
  id=$(tr -d '\r' < /tmp/h | awk -F': ' 'tolower($1)=="lambda-runtime-aws-request-id" {print $2}')
  sleep "${SLEEP:-0}"
  if [ "$FAIL" = 1 ]; then
    curl -sS -o /dev/null -X POST "$api/$id/error" -d '{"errorMessage":"boom","errorType":"Boom"}'
  else
    curl -sS -o /dev/null -X POST "$api/$id/response" --data-binary @/tmp/ev
  fi
done
"#;

fn function(h: &Hearth, name: &str, memory: u32, env: Value) {
    let zip = zip_of(&[("bootstrap", 0o755, BOOTSTRAP.as_bytes())]);
    let body = json!({ "FunctionName": name, "Runtime": "provided", "Code": { "ZipFile": b64(&zip) },
                       "MemorySize": memory, "Timeout": 30, "Environment": { "Variables": env } });
    let r = h.create(body);
    assert_eq!(r.status, 201, "{}", r.text());
    h.wait_settled(name);
}

fn sqs(queue: &str) -> String {
    format!("arn:aws:sqs:us-east-1:000000000000:{queue}")
}

fn put_config(h: &Hearth, name: &str, config: Value) {
    let r = h.request(
        "PUT",
        &format!("/2019-09-25/functions/{name}/event-invoke-config"),
        &[],
        config.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// An Event invoke; returns the request id.
fn event(h: &Hearth, name: &str, payload: &str) -> String {
    let r = h.invoke_with(name, &[("X-Amz-Invocation-Type", "Event")], payload);
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty());
    r.header("x-amzn-requestid").unwrap().to_string()
}

/// Every record in a destination queue (through the HTTP read API).
fn records(h: &Hearth, queue: &str) -> Vec<Value> {
    let r = h.request(
        "GET",
        &format!("/hearth/v1/queues/{queue}/messages?max=1000"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["Messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m["Body"].as_str().unwrap()).unwrap())
        .collect()
}

/// Waits until `queue` holds at least `n` records.
fn wait_records(h: &Hearth, queue: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = records(h, queue);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{queue}: {} of {n} records: {got:?}\n{}",
            got.len(),
            h.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metric(h: &Hearth, name: &str) -> f64 {
    let text = h.get_admin("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn event_runs_and_reaches_success_destinations() {
    let h = Hearth::start_with(FAST);
    function(&h, "first", 1769, json!({}));
    function(&h, "second", 1769, json!({}));
    put_config(
        &h,
        "first",
        json!({ "DestinationConfig": { "OnSuccess": { "Destination":
            "arn:aws:lambda:us-east-1:000000000000:function:second" } } }),
    );
    put_config(
        &h,
        "second",
        json!({ "DestinationConfig": { "OnSuccess": { "Destination": sqs("chain") } } }),
    );
    let rid = event(&h, "second", r#"{"direct":1}"#);
    let direct = wait_records(&h, "chain", 1);
    let r = &direct[0];
    assert_eq!(r["version"], "1.0");
    assert!(r["timestamp"].as_str().unwrap().ends_with('Z'), "{r}");
    assert_eq!(r["requestContext"]["requestId"], rid.as_str());
    assert_eq!(r["requestContext"]["condition"], "Success");
    assert_eq!(r["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(
        r["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:second:$LATEST"
    );
    assert_eq!(r["requestPayload"], json!({ "direct": 1 }));
    assert_eq!(r["responseContext"]["statusCode"], 200);
    assert_eq!(r["responseContext"]["executedVersion"], "$LATEST");
    assert!(r["responseContext"].get("functionError").is_none());
    assert_eq!(r["responsePayload"], json!({ "direct": 1 }));

    // first → (OnSuccess: function second) → (OnSuccess: queue chain).
    let rid = event(&h, "first", r#"{"via":"first"}"#);
    let chained = wait_records(&h, "chain", 2);
    let r = &chained[1];
    assert_eq!(r["requestContext"]["condition"], "Success");
    let inner = &r["requestPayload"];
    assert_eq!(inner["requestContext"]["requestId"], rid.as_str());
    assert_eq!(inner["requestPayload"], json!({ "via": "first" }));
    assert_eq!(inner["responsePayload"], json!({ "via": "first" }));

    // The CLI reads the same queue, without consuming it.
    let out = h.cli(&["queue", "read", "chain", "--max", "1", "--after", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["Seq"], 2);
    assert_eq!(records(&h, "chain").len(), 2);

    // Outside input: queue names, destination ARNs, oversized events.
    for bad in ["invoke.events", "a%20b", "x.y"] {
        let r = h.request(
            "GET",
            &format!("/hearth/v1/queues/{bad}/messages"),
            &[],
            b"",
        );
        assert_eq!(
            (r.status, r.error_type()),
            (400, "InvalidParameterValueException"),
            "{bad}: {}",
            r.text()
        );
    }
    let r = h.request(
        "PUT",
        "/2019-09-25/functions/first/event-invoke-config",
        &[],
        json!({ "DestinationConfig": { "OnFailure": { "Destination": "arn:aws:sns:us-east-1:000000000000:t" } } })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let big = format!("\"{}\"", "x".repeat(1024 * 1024));
    let r = h.invoke_with("first", &[("X-Amz-Invocation-Type", "Event")], &big);
    assert_eq!(
        (r.status, r.error_type()),
        (413, "RequestTooLargeException"),
        "{}",
        r.text()
    );
    let r = h.invoke_with("nope", &[("X-Amz-Invocation-Type", "Event")], "{}");
    assert_eq!(r.status, 404);
    assert!(metric(&h, "hearth_events_accepted_total") >= 2.0);
    assert!(metric(&h, "hearth_events_delivered_total") >= 3.0);
}

#[test]
fn function_errors_are_retried_then_sent_to_the_failure_destination() {
    let h = Hearth::start_with(FAST);
    function(&h, "fails", 1769, json!({ "FAIL": "1" }));
    put_config(
        &h,
        "fails",
        json!({ "MaximumRetryAttempts": 1,
                "DestinationConfig": { "OnFailure": { "Destination": sqs("failed") } } }),
    );
    let rid = event(&h, "fails", r#"{"k":"v"}"#);
    let got = wait_records(&h, "failed", 1);
    let r = &got[0];
    assert_eq!(r["requestContext"]["requestId"], rid.as_str());
    assert_eq!(r["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(r["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(r["requestPayload"], json!({ "k": "v" }));
    assert_eq!(r["responseContext"]["functionError"], "Unhandled");
    assert_eq!(r["responsePayload"]["errorMessage"], "boom");
    // Exactly two runs of this request, and one record.
    let logs = h
        .request("GET", "/hearth/v1/functions/fails/logs", &[], b"")
        .text();
    let starts = logs
        .lines()
        .filter(|l| l.starts_with("START") && l.contains(&rid))
        .count();
    assert_eq!(starts, 2, "{logs}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(records(&h, "failed").len(), 1);
    assert_eq!(metric(&h, "hearth_events_failed_total"), 1.0);
}

#[test]
fn events_that_cannot_run_age_out_to_the_failure_destination() {
    // One 256 MB slot: while `hog` runs, `late` is refused at capacity (a throttle, which uses
    // up no attempt) until it is older than its (injected, 3 s) maximum age.
    let h = Hearth::start_env(
        &format!("{FAST}[agent]\nmemory_capacity_mb = 256\n"),
        &[("HEARTH_FAULT_EVENT_MAX_AGE_SECS", "3")],
    );
    function(&h, "hog", 256, json!({ "SLEEP": "10" }));
    function(&h, "late", 128, json!({}));
    put_config(
        &h,
        "late",
        json!({ "DestinationConfig": { "OnFailure": { "Destination": sqs("aged") },
                                       "OnSuccess": { "Destination": sqs("ran") } } }),
    );
    let endpoint_h = &h;
    std::thread::scope(|s| {
        let hog = s.spawn(|| endpoint_h.invoke("hog", "{}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while endpoint_h.instance_count() == 0 {
            assert!(Instant::now() < deadline, "hog never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let rid = event(endpoint_h, "late", r#"{"late":true}"#);
        let got = wait_records(endpoint_h, "aged", 1);
        let r = &got[0];
        assert_eq!(r["requestContext"]["requestId"], rid.as_str());
        assert_eq!(r["requestContext"]["condition"], "EventAgeExceeded");
        assert_eq!(r["requestContext"]["approximateInvokeCount"], 0);
        assert_eq!(r["requestPayload"], json!({ "late": true }));
        assert!(r.get("responsePayload").is_none());
        assert_eq!(hog.join().unwrap().status, 200);
    });
    assert!(records(&h, "ran").is_empty());
    assert!(metric(&h, "hearth_events_dropped_age_total") >= 1.0);
    assert!(metric(&h, "hearth_events_retried_total") >= 1.0);
}

#[test]
fn accepted_events_survive_kill_9() {
    let config = FAST.replace("[events]\n", "[events]\nworkers = 4\n");
    let mut h = Hearth::start_with(&config);
    function(&h, "slow", 1769, json!({ "SLEEP": "0.5" }));
    put_config(
        &h,
        "slow",
        json!({ "DestinationConfig": { "OnSuccess": { "Destination": sqs("done") },
                                       "OnFailure": { "Destination": sqs("lost") } } }),
    );
    let accepted: BTreeSet<String> = (0..30)
        .map(|i| event(&h, "slow", &format!(r#"{{"i":{i}}}"#)))
        .collect();
    // Some done, some running, the rest queued: kill -9.
    let before = wait_records(&h, "done", 3).len();
    assert!(before < 30, "everything finished before the kill");
    h.kill9();
    h.launch_again();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen: BTreeSet<String> = records(&h, "done")
            .into_iter()
            .chain(records(&h, "lost"))
            .map(|r| {
                r["requestContext"]["requestId"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let missing: Vec<_> = accepted.difference(&seen).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} accepted events lost: {missing:?}\n{}",
            missing.len(),
            h.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
