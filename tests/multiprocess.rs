//! Multi-process mode: `hearth serve --agent URL…` places invokes on `hearth agent`
//! processes over HTTP/2. Real processes, real sandboxes; one agent is SIGKILLed under load.

mod common;

use common::{AgentProc, Hearth, constant_bootstrap, free_port, write_bootstrap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A router (`serve --agent …`) and one agent per config; the agents fetch code from the
/// router's public port, which is chosen before either starts.
fn cluster(agent_configs: &[&str], serve_config: &str) -> (Hearth, Vec<AgentProc>) {
    let port = free_port();
    let code_url = format!("http://127.0.0.1:{port}");
    let agents: Vec<AgentProc> = agent_configs
        .iter()
        .map(|c| AgentProc::start(&code_url, c))
        .collect();
    let mut args = vec![];
    for a in &agents {
        args.extend(["--agent", a.url.as_str()]);
    }
    let h = Hearth::start_opts(serve_config, &[], &format!("127.0.0.1:{port}"), &args);
    (h, agents)
}

/// A function answering `{"ok":1}` after ~50 ms.
fn deploy_sleeper(h: &Hearth, name: &str, memory: &str) {
    let dir = h.dir.path().join(name);
    write_bootstrap(&dir, &constant_bootstrap(r#"{\"ok\":1}"#, "sleep 0.05"));
    h.deploy(name, "provided", "", &dir, &["--memory", memory]);
}

const SERVE: &str =
    "[placement]\nstate_poll_ms = 200\ndown_backoff_ms = 1000\ncapacity_wait_ms = 20000\n";

#[test]
fn two_agents_share_the_load_and_a_killed_one_loses_only_what_ran_on_it() {
    // Each agent holds two instances of 1769 MB: four clients need both agents.
    let agent_cfg = "[agent]\nmemory_capacity_mb = 3538\n";
    let (h, mut agents) = cluster(&[agent_cfg, agent_cfg], SERVE);
    deploy_sleeper(&h, "sleeper", "1769");
    let first = h.invoke("sleeper", "{}");
    assert_eq!(first.status, 200, "{}\n{}", first.text(), h.log());
    assert_eq!(first.json()["ok"], 1);

    // Parallel load spreads over both agents.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10 {
                    let r = h.invoke("sleeper", "{}");
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
    });
    let (a, b) = (agents[0].instances(), agents[1].instances());
    assert!(a >= 1 && b >= 1, "instances per agent: {a}, {b}");

    // Steady load; SIGKILL agent 0 midway.
    let killed_url = agents[0].url.clone();
    let stop = AtomicBool::new(false);
    let kill_sent: Mutex<Option<Instant>> = Mutex::new(None);
    let killed_at: Mutex<Option<Instant>> = Mutex::new(None);
    // (started, finished, status, message)
    let results: Mutex<Vec<(Instant, Instant, u16, String)>> = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let t0 = Instant::now();
                    let r = h.invoke("sleeper", "{}");
                    let msg = if r.status == 200 {
                        String::new()
                    } else {
                        r.text()
                    };
                    results
                        .lock()
                        .unwrap()
                        .push((t0, Instant::now(), r.status, msg));
                }
            });
        }
        std::thread::sleep(Duration::from_secs(2));
        *kill_sent.lock().unwrap() = Some(Instant::now());
        agents[0].kill();
        *killed_at.lock().unwrap() = Some(Instant::now());
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::SeqCst);
    });
    let kill_sent = kill_sent.into_inner().unwrap().unwrap();
    let killed_at = killed_at.into_inner().unwrap().unwrap();
    let results = results.into_inner().unwrap();
    let failures: Vec<_> = results.iter().filter(|r| r.2 != 200).collect();
    for (t0, t1, status, msg) in &failures {
        // Only invocations in flight on the killed agent may fail, and they say so.
        assert_eq!(*status, 500, "{msg}");
        assert!(
            msg.contains("may have started") && msg.contains(&killed_url),
            "{msg}"
        );
        assert!(*t1 >= kill_sent, "failed before the kill: {msg}");
        // A request can still be written to the router's pooled connection in the moment
        // between the agent dying and the router's connection task seeing it; the router
        // cannot tell it from one in flight, reports it the same way, and marks the agent
        // down, so the next ones go to the survivor.
        assert!(
            *t0 <= killed_at + Duration::from_millis(500),
            "failed well after the kill: {msg}"
        );
    }
    // Each client has one invocation in flight at a time: at most 4 can be lost.
    assert!(
        failures.len() <= 4,
        "{} failures: {failures:?}",
        failures.len()
    );
    let after = results.iter().filter(|r| r.0 > killed_at).count();
    assert!(after > 0, "no invokes after the kill");
    assert!(agents[1].instances() >= 1);
    // The survivor serves everything after.
    for _ in 0..5 {
        assert_eq!(h.invoke("sleeper", "{}").status, 200);
    }
    eprintln!(
        "{} invokes, {} failed at the kill, {after} after it",
        results.len(),
        failures.len()
    );
}

#[test]
fn an_agent_without_capacity_is_skipped_and_hostile_agent_requests_get_400() {
    // The first agent cannot hold a 256 MB instance: it refuses, the second one runs it.
    let (h, agents) = cluster(&["[agent]\nmemory_capacity_mb = 128\n", ""], SERVE);
    deploy_sleeper(&h, "big", "256");
    for _ in 0..4 {
        let r = h.invoke("big", "{}");
        assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    }
    assert_eq!(agents[0].instances(), 0);
    assert!(agents[1].instances() >= 1);

    // The agent port parses outside input: precise 400s.
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = http
        .post(format!("{}/v1/invoke", agents[1].url))
        .send("{}")
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body = r.into_body().read_to_string().unwrap();
    assert!(body.contains("x-hearth-request-id"), "{body}");
    let r = http
        .post(format!("{}/v1/invoke", agents[1].url))
        .header("x-hearth-request-id", "r1")
        .header("x-hearth-version", "not base64!")
        .send("{}")
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.into_body()
            .read_to_string()
            .unwrap()
            .contains("x-hearth-version")
    );
    let r = http
        .post(format!("{}/v1/prefetch/..%2F..", agents[1].url))
        .send("")
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[test]
fn provisioned_concurrency_is_split_across_agents() {
    let (h, agents) = cluster(&["", ""], SERVE);
    let dir = h.dir.path().join("pc");
    write_bootstrap(
        &dir,
        &constant_bootstrap(r#"{\"init\":\"$AWS_LAMBDA_INITIALIZATION_TYPE\"}"#, ""),
    );
    h.deploy("pc", "provided", "", &dir, &["--publish"]);
    let path = "/2019-09-30/functions/pc/provisioned-concurrency?Qualifier=1";
    let r = h.request(
        "PUT",
        path,
        &[],
        br#"{"ProvisionedConcurrentExecutions": 3}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = h.request("GET", path, &[], b"").json();
        if r["Status"] == "READY" {
            assert_eq!(r["AllocatedProvisionedConcurrentExecutions"], 3, "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "{r}\n{}", h.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Three instances over two agents: 2 + 1.
    let mut per_agent = [agents[0].instances(), agents[1].instances()];
    per_agent.sort();
    assert_eq!(per_agent, [1, 2]);
    let r = h.invoke("pc:1", "{}");
    assert_eq!(r.json()["init"], "provisioned-concurrency", "{}", r.text());
}
