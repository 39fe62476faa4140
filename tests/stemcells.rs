//! Stem cells: cold starts specialize sandboxes prepared ahead of demand (a bash bootstrap,
//! a python3.11 function, a Rust `lambda_runtime` binary); `agent.stem_cells = 0` starts
//! every sandbox fresh; a cell killed while waiting is replaced; nothing is left behind.

mod common;

use common::{Hearth, example, hello_rs_package};
use std::time::{Duration, Instant};

/// The value of the metric line starting with `series` (`name{labels}`), 0 when absent.
fn metric(h: &Hearth, series: &str) -> f64 {
    let m = h.get_admin("/metrics").text();
    m.lines()
        .find(|l| l.starts_with(series) && l.as_bytes().get(series.len()) == Some(&b' '))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}

const STEM: &str = r#"hearth_agent_sandbox_starts_total{path="stem_cell"}"#;
const FRESH: &str = r#"hearth_agent_sandbox_starts_total{path="fresh"}"#;
const READY: &str = "hearth_agent_stem_cells_ready";

/// Waits until `n` stem cells are ready (gauge and helper processes agree).
fn wait_ready(h: &Hearth, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(h, READY) as usize != n || h.stem_cell_pids().len() != n {
        assert!(
            Instant::now() < deadline,
            "{} stem cells ready, {:?} helpers, want {n}\n{}",
            metric(h, READY),
            h.stem_cell_pids(),
            h.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the server and checks it left no cgroup (so no process) behind.
fn stop_clean(mut h: Hearth) {
    assert!(h.stop().success(), "{}", h.log());
    assert_eq!(h.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn cold_starts_specialize_stem_cells() {
    let h = Hearth::start_with("[agent]\nstem_cells = 2\n");
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    h.deploy(
        "hello-py",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &[],
    );
    h.deploy("hello-rs", "provided.al2023", "", &hello_rs_package(), &[]);
    let calls = [
        ("echo", r#"{"a":1}"#, "a"),
        ("hello-py", r#"{"name":"Ann"}"#, "message"),
        ("hello-rs", r#"{"name":"Bo"}"#, "message"),
    ];
    for (i, (name, payload, key)) in calls.iter().enumerate() {
        wait_ready(&h, 2);
        let cells = h.stem_cell_pids();
        let r = h.invoke(name, payload);
        assert_eq!(r.status, 200, "{name}: {}\n{}", r.text(), h.log());
        assert_eq!(r.header("x-hearth-cold-start"), Some("true"));
        assert!(!r.json()[key].is_null(), "{name}: {}", r.text());
        assert_eq!(metric(&h, STEM), (i + 1) as f64, "{name}");
        // The instance runs in what was a waiting cell: one of the helpers is now its parent.
        let instance = r.header("x-hearth-instance").unwrap();
        let inst_pids = h.sandbox_pids();
        assert!(
            cells.iter().any(|p| inst_pids.contains(p)),
            "{name} ({instance}) runs in none of the cells {cells:?}: {inst_pids:?}"
        );
    }
    assert_eq!(metric(&h, FRESH), 0.0);
    // Warm invokes take no cell.
    assert_eq!(
        h.invoke("echo", "{}").header("x-hearth-cold-start"),
        Some("false")
    );
    assert_eq!(metric(&h, STEM), 3.0);
    wait_ready(&h, 2);
    stop_clean(h);
}

#[test]
fn stem_cells_off_starts_fresh() {
    let h = Hearth::start_with("[agent]\nstem_cells = 0\n");
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    let r = h.invoke("echo", r#"{"x":1}"#);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    assert_eq!(r.json()["x"], 1);
    assert_eq!(metric(&h, FRESH), 1.0);
    assert_eq!(metric(&h, STEM), 0.0);
    assert_eq!(metric(&h, READY), 0.0);
    assert!(h.stem_cell_pids().is_empty());
    stop_clean(h);
}

#[test]
fn a_cell_killed_while_waiting_is_replaced() {
    let h = Hearth::start_with("[agent]\nstem_cells = 2\nreuse_instances = false\n");
    h.deploy("echo", "provided", "", &example("echo-sh"), &[]);
    wait_ready(&h, 2);
    let killed = h.stem_cell_pids();
    for pid in &killed {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    // An invoke right away still works (a dead cell is never specialized).
    let r = h.invoke("echo", r#"{"n":1}"#);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    assert_eq!(r.json()["n"], 1);
    // The pool is whole again, with new helpers.
    wait_ready(&h, 2);
    let now = h.stem_cell_pids();
    assert!(
        now.iter().all(|p| !killed.contains(p)),
        "{killed:?} vs {now:?}"
    );
    let before = metric(&h, STEM);
    let r = h.invoke("echo", r#"{"n":2}"#);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    assert_eq!(metric(&h, STEM), before + 1.0);
    wait_ready(&h, 2);
    stop_clean(h);
}
