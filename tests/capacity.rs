//! Agent capacity: instances reserve their memory; a cold start that does not fit evicts idle
//! instances, least recently used first, and is refused when nothing can make room.

mod common;

use common::{Hearth, example};
use std::time::Duration;

fn metric(h: &Hearth, name: &str) -> f64 {
    let m = h.get_admin("/metrics").text();
    m.lines()
        .find(|l| l.starts_with(name) && l.as_bytes().get(name.len()) == Some(&b' '))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{m}"))
}

#[test]
fn full_agent_evicts_least_recently_used_idle_instances() {
    let h = Hearth::start_with("[agent]\nmemory_capacity_mb = 256\n");
    for f in ["a", "b", "c"] {
        h.deploy(f, "provided", "", &example("echo-sh"), &[]);
    }
    let a = h.invoke("a", "{}");
    std::thread::sleep(Duration::from_millis(50));
    let b = h.invoke("b", "{}");
    assert_eq!(metric(&h, "hearth_agent_memory_reserved_mb"), 256.0);
    // c needs 128 MB: a (used longest ago) is evicted, b stays warm.
    assert_eq!(h.invoke("c", "{}").status, 200);
    assert_eq!(metric(&h, "hearth_agent_evictions_total"), 1.0);
    let b2 = h.invoke("b", "{}");
    assert_eq!(
        b2.header("x-hearth-instance"),
        b.header("x-hearth-instance"),
        "b stayed warm"
    );
    let a2 = h.invoke("a", "{}");
    assert_eq!(a2.header("x-hearth-cold-start"), Some("true"));
    assert_ne!(
        a2.header("x-hearth-instance"),
        a.header("x-hearth-instance")
    );
    assert_eq!(h.instance_count(), 2);
}

#[test]
fn a_cold_start_that_cannot_fit_is_refused_before_it_starts() {
    let h = Hearth::start_with("[agent]\nmemory_capacity_mb = 256\n");
    h.deploy(
        "slow",
        "python3.11",
        "hello.handler",
        &example("hello-py"),
        &["--memory", "256", "--timeout", "10"],
    );
    assert_eq!(h.invoke("slow", "{}").status, 200);
    let endpoint = h.endpoint.clone();
    let busy = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent
            .post(format!("{endpoint}/2015-03-31/functions/slow/invocations"))
            .send(r#"{"sleep": 2}"#)
            .unwrap();
        r.status().as_u16()
    });
    std::thread::sleep(Duration::from_millis(500));
    // The only instance is busy and holds all the memory: nothing to evict.
    let refused = h.invoke("slow", "{}");
    assert_eq!(
        (refused.status, refused.error_type()),
        (429, "TooManyRequestsException"),
        "{}",
        refused.text()
    );
    assert_eq!(busy.join().unwrap(), 200);
    assert_eq!(
        h.invoke("slow", "{}").status,
        200,
        "the instance is free again"
    );
}

#[test]
fn node_cache_is_bounded_pins_packages_in_use_and_preloads_small_ones() {
    let mut h = Hearth::start_with("[agent]\ncode_cache_bytes = 3000\n");
    let dir = h.dir.path().join("pkgs");
    for (name, filler) in [("p1", 'a'), ("p2", 'b')] {
        let pkg = dir.join(name);
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::copy(example("echo-sh").join("bootstrap"), pkg.join("bootstrap")).unwrap();
        std::fs::write(pkg.join("blob"), filler.to_string().repeat(2000)).unwrap();
        h.deploy(name, "provided", "", &pkg, &[]);
    }
    // Both packages are in use by warm instances: pinned, so both stay though 2 × ~2.8 KB > 3000.
    assert_eq!(h.invoke("p1", r#"{"n":1}"#).json()["n"], 1);
    assert_eq!(h.invoke("p2", r#"{"n":2}"#).json()["n"], 2);
    let cache_dir = h.data_dir().join("cache");
    let cached = || {
        std::fs::read_dir(&cache_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .count()
    };
    assert_eq!(cached(), 2);
    assert!(metric(&h, "hearth_agent_code_cache_misses") >= 2.0);
    // A restart with an empty cache directory preloads both small packages before any invoke.
    h.stop();
    std::fs::remove_dir_all(h.data_dir().join("cache")).unwrap();
    h.launch_again();
    assert!(cached() >= 1, "small packages are preloaded");
    assert!(h.log().contains("node cache preloaded"), "{}", h.log());
    assert_eq!(h.invoke("p1", r#"{"n":3}"#).json()["n"], 3);
    assert_eq!(h.invoke("p2", r#"{"n":4}"#).json()["n"], 4);
}
