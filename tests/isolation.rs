//! Issue #5: a hostile function (tests/functions/hostile) attacks its own sandbox inside a
//! real `hearth serve`; every attack must fail, and the agent and other instances survive.

mod common;

use common::{Hearth, repo};
use serde_json::{Value, json};

const MEMORY_MB: u32 = 256;

fn hostile(h: &Hearth, name: &str) {
    let code = repo().join("tests/functions/hostile");
    let mem = MEMORY_MB.to_string();
    h.deploy(
        name,
        "provided",
        "",
        &code,
        &["--memory", &mem, "--timeout", "60"],
    );
}

/// Invokes one attack; returns the function's JSON answer (which must be a plain success).
fn attack(h: &Hearth, name: &str, event: Value) -> Value {
    let r = h.invoke(name, &event.to_string());
    assert_eq!(r.status, 200, "{}\n{}", r.text(), h.log());
    assert_eq!(
        r.header("x-amz-function-error"),
        None,
        "{event}: {}",
        r.text()
    );
    let v = r.json();
    assert!(v.get("attack_failed").is_none(), "{event}: {v}");
    v
}

#[test]
fn hostile_function_cannot_escape() {
    let h = Hearth::start();
    hostile(&h, "hostile");
    hostile(&h, "other");

    // Processes: only its own namespace (pid 1, the bootstrap, python), nothing of the host
    // or of another sandbox that is busy at the same time.
    let other = std::thread::scope(|s| {
        let busy = s.spawn(|| attack(&h, "other", json!({"try": "sleep", "seconds": 2})));
        std::thread::sleep(std::time::Duration::from_millis(800));
        let mine = attack(&h, "hostile", json!({"try": "ps"}));
        let pids: Vec<i64> = serde_json::from_value(mine["pids"].clone()).unwrap();
        assert!(pids.contains(&1) && pids.len() <= 6, "{pids:?}");
        assert!(pids.iter().all(|p| *p < 100), "{pids:?}");
        busy.join().unwrap()
    });
    let other_pids: Vec<i64> = serde_json::from_value(other["pids"].clone()).unwrap();
    assert!(other_pids.iter().all(|p| *p < 100), "{other_pids:?}");

    // Network: only lo; the host's loopback server and the internet are unreachable; its own
    // Runtime API (the only thing on its lo) is.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let port = server.local_addr().unwrap().port();
    let n = attack(&h, "hostile", json!({"try": "net", "port": port}));
    assert_eq!(n["interfaces"], json!(["lo"]), "{n}");
    assert_eq!(n["host_loopback"], "ECONNREFUSED", "{n}");
    assert_eq!(n["internet"], "ENETUNREACH", "{n}");
    assert_ne!(n["curl_internet_rc"], 0, "{n}");
    assert_eq!(n["own_runtime_api"], "ok", "{n}");
    assert!(server.accept().is_err(), "the host listener was reached");

    // Writes: only /tmp.
    let paths = [
        "/var/task/x",
        "/var/runtime/x",
        "/usr/x",
        "/etc/passwd",
        "/x",
        "/proc/sys/kernel/hostname",
        "/dev/x",
    ];
    let w = attack(&h, "hostile", json!({"try": "write", "paths": paths}));
    for p in paths {
        assert_ne!(w[p], "ok", "{p} writable: {w}");
    }
    let w = attack(&h, "hostile", json!({"try": "write", "paths": ["/tmp/x"]}));
    assert_eq!(w["/tmp/x"], "ok");

    // Reads: no host path outside the allow-list.
    let data = h.data_dir();
    let hidden = [
        data.to_str().unwrap().to_owned(),
        data.join("cache").to_str().unwrap().to_owned(),
        "/root".into(),
        "/home".into(),
        "/sys".into(),
        "/work".into(),
    ];
    let r = attack(&h, "hostile", json!({"try": "read", "paths": hidden}));
    for p in &hidden {
        assert_eq!(r[p.as_str()], "ENOENT", "{p} visible: {r}");
    }

    // Privileges: unprivileged uid, no capabilities, no-new-privs, seccomp filter mode.
    let p = attack(&h, "hostile", json!({"try": "priv"}));
    assert!(!p["Uid"].as_str().unwrap().starts_with("0\t"), "{p}");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(p[cap], "0000000000000000", "{cap}: {p}");
    }
    assert_eq!(p["NoNewPrivs"], "1", "{p}");
    assert_eq!(p["Seccomp"], "2", "{p}");

    // Dangerous syscalls: errors, not kills; clone3 and io_uring ENOSYS.
    let s = attack(&h, "hostile", json!({"try": "syscall"}));
    for call in [
        "unshare_user",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "ptrace",
        "bpf",
        "keyctl",
        "add_key",
        "perf_event_open",
        "userfaultfd",
        "init_module",
        "kexec_load",
        "clone_newns",
    ] {
        assert_eq!(s[call], "EPERM", "{call}: {s}");
    }
    for call in ["clone3", "io_uring_setup", "io_uring_enter", "x32_getpid"] {
        assert_eq!(s[call], "ENOSYS", "{call}: {s}");
    }
    assert_ne!(s["unshare_cli"], 0, "{s}");
    assert_eq!(s["subprocess"], 0, "{s}");
    assert_eq!(s["getpid"], "ok", "{s}");

    // Limits: descriptors, processes, /tmp size.
    let f = attack(&h, "hostile", json!({"try": "fds"}));
    assert_eq!(f["error"], "EMFILE", "{f}");
    assert!(f["opened"].as_u64().unwrap() < 1024, "{f}");
    let b = attack(&h, "hostile", json!({"try": "fork_bomb"}));
    assert_eq!(b["error"], "EAGAIN", "{b}");
    assert!(b["forked"].as_u64().unwrap() < 1024, "{b}");
    let t = attack(&h, "hostile", json!({"try": "fill_tmp"}));
    assert_eq!(t["error"], "ENOSPC", "{t}");
    let cap = u64::from(MEMORY_MB / 2) << 20;
    assert!(t["written"].as_u64().unwrap() <= cap, "{t}");

    // Memory: the OOM kill is noticed, answered as Lambda does, and the instance replaced.
    let r = h.invoke("hostile", &json!({"try": "mem"}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let e = r.json();
    assert_eq!(e["errorType"], "Runtime.OutOfMemory", "{e}");
    let msg = e["errorMessage"].as_str().unwrap();
    assert!(
        msg.starts_with("RequestId: ")
            && msg.ends_with("Error: Runtime exited with error: signal: killed"),
        "{msg}"
    );
    // The agent and the other function are fine; the hostile one starts afresh.
    attack(&h, "other", json!({"try": "ps"}));
    attack(&h, "hostile", json!({"try": "ps"}));
}
