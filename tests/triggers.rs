//! Timer triggers against a real server: create, list, get, delete over HTTP and the CLI,
//! hostile bodies refused without storing anything, and a missed tick after a real restart
//! (the restarted process's scheduler clock shifted forward by an injected fault) that fires
//! once with `FIRE_ONCE` and not at all with `SKIP`. Fired ticks are read from the durable
//! queue's events topic (the delivery workers consume it in their own consumer). End to end, a
//! `rate(1 minute)` trigger runs its function once per tick (the OnSuccess destination record
//! read with `hearth queue read`), and deleting a function deletes its triggers.

mod common;

use common::{Hearth, Resp, b64, example, zip_of};
use hearth::events::{AsyncEvent, TOPIC};
use hearth::queue::outbox::Relay;
use hearth::queue::sqlite::SqliteQueue;
use hearth::queue::{ConsumerConfig, Queue};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const T: &str = "/hearth/v1/triggers";

fn echo_function(h: &Hearth, name: &str) {
    let b = std::fs::read(example("echo-sh").join("bootstrap")).unwrap();
    let zip = zip_of(&[("bootstrap", 0o755, &b)]);
    let body =
        json!({ "FunctionName": name, "Runtime": "provided", "Code": { "ZipFile": b64(&zip) } });
    assert_eq!(h.create(body).status, 201);
    h.wait_settled(name);
}

fn call(h: &Hearth, method: &str, path: &str, body: &str) -> Resp {
    h.request(method, path, &[], body.as_bytes())
}

fn ok(r: Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

fn err(r: Resp, status: u16, kind: &str) -> String {
    assert_eq!((r.status, r.error_type()), (status, kind), "{}", r.text());
    r.json()["message"].as_str().unwrap_or_default().to_owned()
}

fn names(h: &Hearth) -> Vec<String> {
    ok(call(h, "GET", T, ""), 200)["Triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn trigger_crud_and_hostile_bodies() {
    let h = Hearth::start();
    echo_function(&h, "f");

    let body =
        json!({ "Name": "every5", "FunctionName": "f", "ScheduleExpression": "rate(5 minutes)" });
    let t = ok(call(&h, "POST", T, &body.to_string()), 201);
    assert_eq!(t["Name"], "every5");
    assert_eq!(
        t["TriggerArn"],
        "arn:aws:events:us-east-1:000000000000:rule/every5"
    );
    assert_eq!(t["MissedTicks"], "FIRE_ONCE");
    assert_eq!(t["ScheduleExpression"], "rate(5 minutes)");
    err(
        call(&h, "POST", T, &body.to_string()),
        409,
        "ResourceConflictException",
    );
    assert_eq!(ok(call(&h, "GET", &format!("{T}/every5"), ""), 200), t);

    // The CLI.
    let out = h.cli(&[
        "trigger",
        "create",
        "nightly",
        "--function",
        "f",
        "--schedule",
        "cron(0 3 ? * MON-FRI *)",
        "--input",
        r#"{"job":"report"}"#,
        "--missed",
        "skip",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["MissedTicks"], "SKIP");
    assert_eq!(created["Input"], r#"{"job":"report"}"#);
    let out = h.cli(&["trigger", "list"]);
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["Triggers"].as_array().unwrap().len(), 2);
    let out = h.cli(&[
        "trigger",
        "create",
        "bad",
        "--function",
        "f",
        "--schedule",
        "cron(0 3 * * * *)",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("one of them must be '?'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = h.cli(&["trigger", "delete", "nightly"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(names(&h), ["every5"]);

    // `hearth schedule next` (local, no server needed).
    let out = h.cli(&[
        "schedule",
        "next",
        "cron(0 12 ? * 3#2 *)",
        "--count",
        "3",
        "--after",
        "2026-11-01T00:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2026-11-10T12:00:00Z\n2026-12-08T12:00:00Z\n2027-01-12T12:00:00Z\n"
    );
    let out = h.cli(&["schedule", "next", "cron(0 12 ? * 3#6 *)"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "cron day-of-week field, '3#6': the week number after '#' must be between 1 and 5"
    ));

    // Hostile bodies and paths: each refused with its error, nothing stored.
    let ok_rest = r#""FunctionName":"f","ScheduleExpression":"rate(1 day)""#;
    let cases: Vec<(String, u16, &str)> = vec![
        ("not json".into(), 400, "InvalidRequestContentException"),
        ("[1,2]".into(), 400, "InvalidRequestContentException"),
        (r#"{"Name":["x"]}"#.into(), 400, "InvalidRequestContentException"),
        (format!("{{{ok_rest}}}"), 400, "InvalidParameterValueException"),
        (format!(r#"{{"Name":"../x",{ok_rest}}}"#), 400, "InvalidParameterValueException"),
        (format!(r#"{{"Name":"{}",{ok_rest}}}"#, "n".repeat(100)), 400, "InvalidParameterValueException"),
        (r#"{"Name":"n","FunctionName":"f","ScheduleExpression":"cron(0 12 * * ? * *)"}"#.into(), 400, "InvalidParameterValueException"),
        (r#"{"Name":"n","FunctionName":"f","ScheduleExpression":"rate(0 minutes)"}"#.into(), 400, "InvalidParameterValueException"),
        (format!(r#"{{"Name":"n","FunctionName":"f","ScheduleExpression":"cron({})"}}"#, "1,".repeat(200)), 400, "InvalidParameterValueException"),
        (format!(r#"{{"Name":"n",{ok_rest},"Input":"{{x"}}"#), 400, "InvalidParameterValueException"),
        (format!(r#"{{"Name":"n",{ok_rest},"Input":"\"{}\""}}"#, "x".repeat(10_000)), 400, "InvalidParameterValueException"),
        (format!(r#"{{"Name":"n",{ok_rest},"MissedTicks":"sometimes"}}"#), 400, "InvalidParameterValueException"),
        (r#"{"Name":"n","FunctionName":"nope","ScheduleExpression":"rate(1 day)"}"#.into(), 404, "ResourceNotFoundException"),
        (r#"{"Name":"n","FunctionName":"f:nope","ScheduleExpression":"rate(1 day)"}"#.into(), 404, "ResourceNotFoundException"),
        (r#"{"Name":"n","FunctionName":"arn:aws:lambda:us-east-1:999999999999:function:f","ScheduleExpression":"rate(1 day)"}"#.into(), 404, "ResourceNotFoundException"),
    ];
    for (body, status, kind) in &cases {
        let msg = err(call(&h, "POST", T, body), *status, kind);
        assert!(!msg.is_empty(), "{body}");
    }
    // An 8 MB constant input: read (under the management body limit) and refused by length.
    let huge = format!(
        r#"{{"Name":"n",{ok_rest},"Input":"\"{}\""}}"#,
        "x".repeat(8 << 20)
    );
    let msg = err(
        call(&h, "POST", T, &huge),
        400,
        "InvalidParameterValueException",
    );
    assert!(msg.contains("at 'input'"), "{msg}");
    err(
        call(&h, "GET", &format!("{T}/nope"), ""),
        404,
        "ResourceNotFoundException",
    );
    err(
        call(&h, "DELETE", &format!("{T}/nope"), ""),
        404,
        "ResourceNotFoundException",
    );
    err(
        call(&h, "DELETE", &format!("{T}/a/b"), ""),
        404,
        "UnknownOperationException",
    );
    err(
        call(&h, "PUT", &format!("{T}/every5"), ""),
        404,
        "UnknownOperationException",
    );
    err(
        call(&h, "GET", &format!("{T}/%FF"), ""),
        400,
        "InvalidParameterValueException",
    );
    assert_eq!(names(&h), ["every5"]);

    ok(call(&h, "DELETE", &format!("{T}/every5"), ""), 204);
    assert!(names(&h).is_empty());
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits until the server log contains `needle`.
fn wait_log(h: &Hearth, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !h.log().contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in\n{}", h.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every event on the events topic (the server is stopped: the outbox is relayed here).
fn queued_events(h: &Hearth) -> Vec<(AsyncEvent, Value)> {
    let data = h.data_dir();
    let queue: Arc<dyn Queue> = Arc::new(SqliteQueue::open(&data.join("queue.sqlite")).unwrap());
    Relay::open(
        &data.join("meta.sqlite"),
        queue.clone(),
        Duration::from_secs(1),
    )
    .unwrap()
    .drain()
    .unwrap();
    let msgs = queue
        .pull(TOPIC, "trigger-test", 1000, &ConsumerConfig::default())
        .unwrap();
    msgs.iter()
        .map(|m| {
            let e: AsyncEvent = serde_json::from_slice(&m.payload).unwrap();
            let p = serde_json::from_slice(&common::unb64(&e.payload_b64)).unwrap();
            (e, p)
        })
        .collect()
}

#[test]
fn a_missed_tick_fires_once_after_a_real_restart() {
    let mut h = Hearth::start();
    echo_function(&h, "f");
    for (name, missed) in [("catch", "FIRE_ONCE"), ("skip", "SKIP")] {
        let body = json!({ "Name": name, "FunctionName": "f", "ScheduleExpression": "cron(0 * * * ? *)", "MissedTicks": missed });
        ok(call(&h, "POST", T, &body.to_string()), 201);
    }
    assert!(h.stop().success());
    let stopped = now_secs();

    // "Down" for about two hours: the restarted scheduler's clock stands at hh:30 two or three
    // hours later, so the hh:00 tick is 30 minutes overdue and the ones before it were missed.
    let shifted = (stopped / 3600 + 2) * 3600 + 1800;
    let offset = (shifted - now_secs()).to_string();
    h.env
        .push(("HEARTH_FAULT_CLOCK_OFFSET_SECS".into(), offset));
    h.launch_again();
    wait_log(&h, "missed trigger tick skipped");
    wait_log(&h, "trigger fired");
    assert!(h.stop().success());

    let catch_up = (shifted / 3600) * 3600;
    let after_stop: Vec<_> = queued_events(&h)
        .into_iter()
        .filter(|(_, p)| {
            let t = time::OffsetDateTime::parse(
                p["time"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            t.unix_timestamp() > stopped
        })
        .collect();
    assert_eq!(after_stop.len(), 1, "{after_stop:?}");
    let (e, p) = &after_stop[0];
    assert_eq!(e.source.as_deref(), Some("trigger:catch"));
    assert_eq!(e.function_name, "f");
    assert_eq!(p["source"], "aws.events");
    assert_eq!(p["detail-type"], "Scheduled Event");
    let want = time::OffsetDateTime::from_unix_timestamp(catch_up).unwrap();
    assert_eq!(
        p["time"],
        want.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
}

const CLOCK: &str = "HEARTH_FAULT_CLOCK_OFFSET_SECS";

/// Restarts `h` with its scheduler clock standing at `at_ms` (ms since the epoch) now.
fn relaunch_at(h: &mut Hearth, at_ms: i64) {
    assert!(h.stop().success(), "{}", h.log());
    let offset = (at_ms.div_euclid(1000) - now_secs()).to_string();
    h.env.retain(|(k, _)| k != CLOCK);
    h.env.push((CLOCK.into(), offset));
    h.launch_again();
}

/// The destination records in queue `name`, read with `hearth queue read`.
fn queue_records(h: &Hearth, name: &str) -> Vec<Value> {
    let out = h.cli(&["queue", "read", name, "--max", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let m: Value = serde_json::from_str(l).unwrap();
            serde_json::from_str(m["Body"].as_str().unwrap()).unwrap()
        })
        .collect()
}

fn wait_queue(h: &Hearth, name: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = queue_records(h, name);
        if r.len() >= n {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} records in {name}:\n{}",
            r.len(),
            h.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// End to end: a `rate(1 minute)` trigger made with the CLI runs its function once per tick,
/// and the run reaches the function's OnSuccess queue. The scheduler clock is shifted by an
/// injected fault across two real restarts: first to just after tick 1, then just after tick 2.
#[test]
fn a_rate_trigger_runs_its_function_once_per_tick() {
    // The first process's scheduler stands an hour back: nothing fires while we set up.
    let mut h = Hearth::start_env("", &[(CLOCK, "-3600")]);
    echo_function(&h, "f");
    let dest = json!({ "DestinationConfig": { "OnSuccess": { "Destination":
        "arn:aws:sqs:us-east-1:000000000000:ticks" } } });
    ok(
        call(
            &h,
            "PUT",
            "/2019-09-25/functions/f/event-invoke-config",
            &dest.to_string(),
        ),
        200,
    );
    let out = h.cli(&[
        "trigger",
        "create",
        "minutely",
        "--function",
        "f",
        "--schedule",
        "rate(1 minute)",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trigger: Value = serde_json::from_slice(&out.stdout).unwrap();
    let created = trigger["CreatedMs"].as_i64().unwrap();
    let arn = trigger["TriggerArn"].as_str().unwrap().to_owned();

    // Tick 1 (created + 60 s) is 5 s due.
    relaunch_at(&mut h, created + 65_000);
    let first = wait_queue(&h, "ticks", 1);
    // Tick 2 (created + 120 s) is 5 s due; tick 1 is recorded and does not fire again.
    relaunch_at(&mut h, created + 125_000);
    wait_queue(&h, "ticks", 2);
    // Give the scheduler more passes (it polls every 5 s) to fire anything twice.
    std::thread::sleep(Duration::from_secs(7));
    let records = queue_records(&h, "ticks");
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0], first[0]);

    let mut times = vec![];
    for r in &records {
        assert_eq!(r["requestContext"]["condition"], "Success", "{r}");
        let p = &r["requestPayload"];
        assert_eq!(p["source"], "aws.events", "{r}");
        assert_eq!(p["detail-type"], "Scheduled Event");
        assert_eq!(p["resources"], json!([arn]));
        assert_eq!(p["account"], "000000000000");
        // The echo function answered with the event: it ran.
        assert_eq!(&r["responsePayload"], p);
        let t = time::OffsetDateTime::parse(
            p["time"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        times.push(t.unix_timestamp());
    }
    // One record per tick: the two ticks, a minute apart, both after the creation.
    assert!(times[0] > created / 1000, "{times:?} created {created}");
    assert_eq!(times[1] - times[0], 60, "{times:?}");
    assert_ne!(
        records[0]["requestPayload"]["id"],
        records[1]["requestPayload"]["id"]
    );
}

#[test]
fn deleting_a_function_deletes_its_triggers() {
    let h = Hearth::start();
    echo_function(&h, "f");
    echo_function(&h, "g");
    for (name, f) in [("of-f", "f"), ("of-f-too", "f"), ("of-g", "g")] {
        let body = json!({ "Name": name, "FunctionName": f, "ScheduleExpression": "rate(1 day)" });
        ok(call(&h, "POST", T, &body.to_string()), 201);
    }
    ok(call(&h, "DELETE", "/2015-03-31/functions/f", ""), 204);
    assert_eq!(names(&h), ["of-g"]);
    // A function created again under the name starts without triggers.
    echo_function(&h, "f");
    assert_eq!(names(&h), ["of-g"]);
    let body = json!({ "Name": "of-f", "FunctionName": "f", "ScheduleExpression": "rate(1 day)" });
    ok(call(&h, "POST", T, &body.to_string()), 201);
    // Deleting a version leaves the function's triggers.
    ok(
        call(&h, "POST", "/2015-03-31/functions/f/versions", "{}"),
        201,
    );
    ok(
        call(&h, "DELETE", "/2015-03-31/functions/f?Qualifier=1", ""),
        204,
    );
    assert_eq!(names(&h), ["of-f", "of-g"]);
}
