//! Multi-process mode with every component in its own process: `hearth control`, one
//! `hearth router` (HTTP ControlClient, change feed over a long poll) and two `hearth agent`s.
//! Real processes, real sandboxes.

mod common;

use common::{AgentProc, Hearth, b64, constant_bootstrap, free_port, zip_of};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Control, one router and two agents. The agents fetch code from control; control delivers
/// events through the router; both addresses are chosen before anything starts.
struct Cluster {
    control: Hearth,
    router: Hearth,
    agents: Vec<AgentProc>,
}

const AGENT: &str = "[agent]\nmemory_capacity_mb = 3538\n";
const ROUTER: &str =
    "[placement]\nstate_poll_ms = 200\ndown_backoff_ms = 1000\ncapacity_wait_ms = 20000\n";
const CONTROL: &str = "[events]\nretry_base_ms = 200\nthrottle_base_ms = 200\n";

fn cluster() -> Cluster {
    let (cport, rport) = (free_port(), free_port());
    let control_url = format!("http://127.0.0.1:{cport}");
    let router_url = format!("http://127.0.0.1:{rport}");
    let agents = vec![
        AgentProc::start(&control_url, AGENT),
        AgentProc::start(&control_url, AGENT),
    ];
    let mut control_args = vec!["--router", router_url.as_str()];
    let mut router_args = vec!["--control", control_url.as_str()];
    for a in &agents {
        control_args.extend(["--agent", a.url.as_str()]);
        router_args.extend(["--agent", a.url.as_str()]);
    }
    let control = Hearth::start_command(
        "control",
        CONTROL,
        &[],
        &format!("127.0.0.1:{cport}"),
        &control_args,
    );
    let router = Hearth::start_command(
        "router",
        ROUTER,
        &[],
        &format!("127.0.0.1:{rport}"),
        &router_args,
    );
    Cluster {
        control,
        router,
        agents,
    }
}

/// A bootstrap answering `{"v":N}` after ~50 ms, zipped.
fn package(v: u32) -> String {
    let script = constant_bootstrap(&format!(r#"{{\"v\":{v}}}"#), "sleep 0.05");
    b64(&zip_of(&[("bootstrap", 0o755, script.as_bytes())]))
}

fn readyz(h: &Hearth) -> (u16, String) {
    let r = h.get_admin("/readyz");
    (r.status, r.text())
}

fn wait_readyz(h: &Hearth, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, text) = readyz(h);
        if s == status {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "readyz still {s} {text}\n{}",
            h.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn messages(h: &Hearth, queue: &str) -> Vec<Value> {
    let r = h.request(
        "GET",
        &format!("/hearth/v1/queues/{queue}/messages?max=100"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["Messages"].as_array().unwrap().clone()
}

#[test]
fn control_router_and_agents_as_separate_processes() {
    let Cluster {
        mut control,
        router,
        mut agents,
    } = cluster();
    assert_eq!(readyz(&router).0, 200, "{}", router.log());

    // The internal endpoints parse outside input: bounded, precise Lambda-shaped errors.
    let bad = control.request("GET", "/internal/v1/changes?router=a%0Ab", &[], b"");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.error_type(), "InvalidParameterValueException");
    let bad = control.request("POST", "/internal/v1/events", &[], b"{\"request_id\": 1}");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.error_type(), "InvalidRequestContentException");
    let bad = control.request("POST", "/internal/v1/acks", &[], &[b' '; 5000]);
    assert_eq!(bad.status, 413, "{}", bad.text());
    let bad = control.request("GET", "/internal/v1/nope", &[], b"");
    assert_eq!(bad.status, 404, "{}", bad.text());

    // Create through the router (forwarded to control), wait Active, invoke.
    let r = router.create(json!({ "FunctionName": "f", "Runtime": "provided",
        "Code": { "ZipFile": package(1) }, "MemorySize": 1769, "Timeout": 10 }));
    assert_eq!(r.status, 201, "{}\n{}", r.text(), control.log());
    assert!(
        r.json()["FunctionArn"]
            .as_str()
            .unwrap()
            .ends_with(":function:f")
    );
    let c = router.wait_settled("f");
    assert_eq!(c["State"], "Active", "{c}\n{}", control.log());
    let first = router.invoke("f", "{}");
    assert_eq!(
        first.status,
        200,
        "{}\n{}\n{}",
        first.text(),
        router.log(),
        agents[0].log()
    );
    assert_eq!(first.json()["v"], 1);

    // Update the code: the very next invoke after `Successful` runs the new code (route
    // publication waited for the router's acknowledgement across processes).
    for v in 2..=4 {
        let r = router.request(
            "PUT",
            "/2015-03-31/functions/f/code",
            &[],
            json!({ "ZipFile": package(v) }).to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let c = router.wait_settled("f");
        assert_eq!(c["LastUpdateStatus"], "Successful", "{c}");
        let r = router.invoke("f", "{}");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["v"], v, "update {v}: the next invoke ran old code");
    }

    // Unknown functions answer like Lambda through the router.
    let r = router.invoke("nope", "{}");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "ResourceNotFoundException");

    // An Event invoke: accepted by the router, stored by control, delivered through the
    // router, recorded on the OnSuccess queue (read back through the router, and the CLI).
    let r = router.request(
        "PUT",
        "/2019-09-25/functions/f/event-invoke-config",
        &[],
        json!({ "DestinationConfig": { "OnSuccess": {
            "Destination": "arn:aws:sqs:us-east-1:000000000000:done" } } })
        .to_string()
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = router.invoke_with("f", &[("X-Amz-Invocation-Type", "Event")], r#"{"e":1}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    let record = loop {
        if let Some(m) = messages(&router, "done").first() {
            break serde_json::from_str::<Value>(m["Body"].as_str().unwrap()).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no delivery\n{}\n{}",
            control.log(),
            router.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(record["responsePayload"]["v"], 4, "{record}");
    assert_eq!(record["requestPayload"]["e"], 1, "{record}");
    let out = router.cli(&["queue", "read", "done"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("responsePayload"));

    // SIGKILL one agent under parallel load: only invocations in flight on it may fail.
    let killed_url = agents[0].url.clone();
    let stop = AtomicBool::new(false);
    let kill_sent: Mutex<Option<Instant>> = Mutex::new(None);
    let results: Mutex<Vec<(Instant, u16, String)>> = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let r = router.invoke("f", "{}");
                    let msg = if r.status == 200 {
                        String::new()
                    } else {
                        r.text()
                    };
                    results
                        .lock()
                        .unwrap()
                        .push((Instant::now(), r.status, msg));
                }
            });
        }
        std::thread::sleep(Duration::from_secs(2));
        *kill_sent.lock().unwrap() = Some(Instant::now());
        agents[0].kill();
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::SeqCst);
    });
    let kill_sent = kill_sent.into_inner().unwrap().unwrap();
    let results = results.into_inner().unwrap();
    let failures: Vec<_> = results.iter().filter(|r| r.1 != 200).collect();
    for (done, status, msg) in &failures {
        assert_eq!(*status, 500, "{msg}");
        assert!(
            msg.contains("may have started") && msg.contains(&killed_url),
            "{msg}"
        );
        assert!(*done >= kill_sent, "failed before the kill: {msg}");
    }
    assert!(failures.len() <= 4, "{failures:?}");
    let after_kill = results
        .iter()
        .filter(|r| r.0 > kill_sent && r.1 == 200)
        .count();
    assert!(after_kill > 0, "the survivor served nothing");

    // Control dies: readyz says so, and the warm function still answers from the cache.
    control.kill9();
    let why = wait_readyz(&router, 503);
    assert!(why.contains("control service unreachable"), "{why}");
    for _ in 0..5 {
        let r = router.invoke("f", "{}");
        assert_eq!(r.status, 200, "{}\n{}", r.text(), router.log());
        assert_eq!(r.json()["v"], 4);
    }
    // What the cache does not hold is a service error, not a wrong answer.
    let r = router.invoke("never-seen", "{}");
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.error_type(), "ServiceException");

    // Control comes back on the same data directory: ready again, management works.
    control.launch_again();
    wait_readyz(&router, 200);
    let r = router.invoke("f", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["v"], 4);
    let r = router.request("GET", "/2015-03-31/functions/f", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // Dropping the harness kills every process and removes the agents' cgroups.
    drop(router);
    drop(control);
    drop(agents);
}
