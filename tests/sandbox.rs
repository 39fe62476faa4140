//! The `process` sandbox driver against real processes, namespaces and cgroups (needs root
//! and cgroup v1 memory + pids hierarchies at /sys/fs/cgroup).

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hearth::sandbox::{
    CgroupVersion, DriverConfig, ExitReason, ProcessDriver, STEM_CELL_PREFIX, Sandbox,
    SandboxError, SandboxSpec, StartPath,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const UID: u32 = 61051;
const GID: u32 = 61052;
const PIDS_MAX: u32 = 64;
const WAIT: Duration = Duration::from_secs(10);

/// One test's driver, prefix and directories; on drop, kills and removes whatever is left.
struct Harness {
    driver: ProcessDriver,
    cfg: DriverConfig,
    code: tempfile::TempDir,
    _mountpoint: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("hearth-test-{}-{n}", std::process::id());
        let mountpoint = tempfile::tempdir().unwrap();
        let code = tempfile::tempdir().unwrap();
        // tempdirs are 0700; the sandbox user must be able to enter the code directory.
        std::fs::set_permissions(code.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = DriverConfig {
            cgroup_root: CGROUP_ROOT.into(),
            cgroup_prefix: prefix,
            uid: UID,
            gid: GID,
            pids_max: PIDS_MAX,
            helper_exe: env!("CARGO_BIN_EXE_hearth").into(),
            rootfs_mountpoint: mountpoint.path().to_path_buf(),
        };
        let driver = ProcessDriver::new(cfg.clone()).unwrap();
        Harness {
            driver,
            cfg,
            code,
            _mountpoint: mountpoint,
        }
    }

    /// Writes an executable file into the code directory.
    fn code_file(&self, name: &str, text: &str) {
        let path = self.code.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn spec(&self, id: &str, argv: &[&str]) -> SandboxSpec {
        SandboxSpec {
            instance_id: id.into(),
            code_dir: self.code.path().to_path_buf(),
            runtime_dir: None,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            memory_mb: 128,
            tmp_size_mb: 16,
            egress: false,
        }
    }

    fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        Path::new(CGROUP_ROOT)
            .join(controller)
            .join(&self.cfg.cgroup_prefix)
            .join(id)
    }

    /// Waiting stem cells' cgroup directories (every controller).
    fn stem_dirs(&self) -> Vec<PathBuf> {
        ["memory", "pids", "cpu"]
            .iter()
            .flat_map(|c| {
                std::fs::read_dir(self.cgroup_dir(c, ""))
                    .into_iter()
                    .flatten()
            })
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(STEM_CELL_PREFIX)
            })
            .map(|e| e.path())
            .collect()
    }

    /// Waits until `n` stem cells are ready.
    async fn wait_cells(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.driver.stem_cells_ready() != n {
            assert!(Instant::now() < deadline, "stem cells never reached {n}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn assert_cgroups_gone(&self, id: &str) {
        for controller in ["memory", "pids", "cpu"] {
            let dir = self.cgroup_dir(controller, id);
            assert!(!dir.exists(), "{} still exists", dir.display());
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A fresh driver on the same prefix kills and removes leftovers; then drop the prefix.
        match ProcessDriver::new(self.cfg.clone()) {
            Ok(reaper) => reaper.cleanup(),
            Err(e) => eprintln!("cleaning up {}: {e}", self.cfg.cgroup_prefix),
        }
        self.driver.cleanup();
    }
}

/// Everything the runtime wrote to stdout and stderr, until every writer is gone.
async fn read_output(fd: OwnedFd) -> String {
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd).unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, pipe.read_to_string(&mut out))
        .await
        .expect("output pipe never closed")
        .unwrap();
    out
}

async fn wait_exit(sandbox: &Sandbox) -> ExitReason {
    let mut exited = sandbox.exited.clone();
    let reason = tokio::time::timeout(WAIT, exited.wait_for(Option::is_some))
        .await
        .expect("sandbox did not exit")
        .unwrap();
    reason.unwrap()
}

const ISOLATION_SCRIPT: &str = r#"#!/bin/bash
echo "uid=$(id -u) gid=$(id -g) user=$(id -un) groups=$(id -G)"
echo "cwd=$PWD"
procs=(/proc/[0-9]*)
echo "procs=${procs[*]} self=$$"
echo "task=$(cat /var/task/data.txt)"
for dir in /var/task /usr /; do
  if touch "$dir/probe" 2>/dev/null; then echo "writable $dir"; else echo "read-only $dir"; fi
done
echo hi > /tmp/probe && echo "tmp=$(cat /tmp/probe)"
if [ -e /sys ]; then echo "sys=present"; else echo "sys=absent"; fi
echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)"
echo "hostname=$(cat /proc/sys/kernel/hostname)"
echo "env:"
tr '\0' '\n' < /proc/$$/environ | sort
echo "end-env"
exec 3<>/dev/tcp/127.0.0.1/9001
echo ping >&3
read -r reply <&3
echo "api=$reply"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_is_isolated_and_reaches_runtime_api() {
    let h = Harness::new();
    h.code_file("check.sh", ISOLATION_SCRIPT);
    std::fs::write(h.code.path().join("data.txt"), "code-data").unwrap();
    let mut spec = h.spec("iso-1", &["/bin/bash", "/var/task/check.sh"]);
    spec.env = vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("HEARTH_TEST".into(), "a value with spaces".into()),
    ];
    let sandbox = h.driver.create(spec).await.unwrap();
    let api = tokio::net::TcpListener::from_std(sandbox.runtime_api.try_clone().unwrap()).unwrap();
    let output = tokio::spawn(read_output(sandbox.output.try_clone().unwrap()));

    let (conn, _) = tokio::time::timeout(WAIT, api.accept())
        .await
        .expect("runtime never connected to 127.0.0.1:9001")
        .unwrap();
    let (r, mut w) = conn.into_split();
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).await.unwrap();
    assert_eq!(line, "ping\n");
    w.write_all(b"pong\n").await.unwrap();

    let out = output.await.unwrap();
    assert_eq!(wait_exit(&sandbox).await, ExitReason::Exited(0), "{out}");
    let expected = [
        format!("uid={UID} gid={GID} user=sbx_user1051 groups={GID}"),
        "cwd=/var/task".into(),
        "procs=/proc/1 /proc/2 self=2".into(),
        "task=code-data".into(),
        "read-only /var/task".into(),
        "read-only /usr".into(),
        "read-only /".into(),
        "tmp=hi".into(),
        "sys=absent".into(),
        "ifaces=lo,".into(),
        "hostname=iso-1".into(),
        "env:".into(),
        "HEARTH_TEST=a value with spaces".into(),
        "PATH=/usr/bin:/bin".into(),
        "end-env".into(),
        "api=pong".into(),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "output:\n{out}");
    sandbox.destroy().await.unwrap();
    h.assert_cgroups_gone("iso-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_and_signal_are_reported() {
    let h = Harness::new();
    let sandbox = h
        .driver
        .create(h.spec("exit-3", &["/bin/sh", "-c", "exit 3"]))
        .await
        .unwrap();
    assert_eq!(wait_exit(&sandbox).await, ExitReason::Exited(3));
    sandbox.destroy().await.unwrap();
    h.assert_cgroups_gone("exit-3");

    let sandbox = h
        .driver
        .create(h.spec("sig-9", &["/bin/sh", "-c", "kill -9 $$"]))
        .await
        .unwrap();
    assert_eq!(wait_exit(&sandbox).await, ExitReason::Signaled(9));
    sandbox.destroy().await.unwrap();
    h.assert_cgroups_gone("sig-9");
}

/// Host pids whose command line contains `marker`.
fn host_pids_with(marker: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_kills_every_process_and_removes_cgroups() {
    let h = Harness::new();
    // A sleep duration nobody else uses, to find these processes on the host.
    let marker = format!("{}{}", 900_000 + std::process::id() % 90_000, 7);
    let script = format!("sleep {marker} & sleep {marker} & wait");
    let sandbox = h
        .driver
        .create(h.spec("sleepers", &["/bin/bash", "-c", &script]))
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while host_pids_with(&format!("sleep\0{marker}")).len() < 2 {
        assert!(Instant::now() < deadline, "the sleeps never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let procs =
        std::fs::read_to_string(h.cgroup_dir("pids", "sleepers").join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().count() >= 5,
        "helper, pid 1, bash and 2 sleeps: {procs}"
    );

    sandbox.destroy().await.unwrap();
    assert_eq!(
        host_pids_with(&format!("sleep\0{marker}")),
        Vec::<i32>::new()
    );
    assert_eq!(*sandbox.exited.borrow(), Some(ExitReason::Signaled(9)));
    h.assert_cgroups_gone("sleepers");
    sandbox.destroy().await.unwrap(); // idempotent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_limits_are_written() {
    let h = Harness::new();
    let mut spec = h.spec("limits", &["/bin/sleep", "1000"]);
    spec.memory_mb = 96;
    let sandbox = h.driver.create(spec).await.unwrap();
    let read = |controller: &str, file: &str| {
        let path = h.cgroup_dir(controller, "limits").join(file);
        std::fs::read_to_string(path).unwrap().trim().to_owned()
    };
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(read("pids", "pids.max"), PIDS_MAX.to_string());
    // 96 MB buys less than the floor of a tenth of a CPU: the floor.
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "10000");
    assert_eq!(h.driver.cgroup_version(), CgroupVersion::V1);
    for controller in ["memory", "pids", "cpu"] {
        let members = read(controller, "cgroup.procs");
        assert!(
            members.lines().any(|p| p == sandbox.pid1.to_string()),
            "{controller}: {members}"
        );
    }
    assert_eq!(sandbox.oom_kills(), 0);
    sandbox.destroy().await.unwrap();
    h.assert_cgroups_gone("limits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_failure_is_an_error_and_leaves_nothing() {
    let h = Harness::new();
    let err = h
        .driver
        .create(h.spec("noexec", &["/var/task/missing"]))
        .await;
    match err {
        Err(SandboxError::Exec(msg)) => assert!(msg.contains("/var/task/missing"), "{msg}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a missing entry point started"),
    }
    h.assert_cgroups_gone("noexec");

    let mut bad = h.spec("bad-code-dir", &["/bin/true"]);
    bad.code_dir = "/nonexistent/code".into();
    match h.driver.create(bad).await {
        Err(SandboxError::Helper(msg)) => assert!(msg.contains("/nonexistent/code"), "{msg}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started without its code"),
    }
    h.assert_cgroups_gone("bad-code-dir");

    let invalid = h.driver.create(h.spec("../escape", &["/bin/true"])).await;
    assert!(matches!(invalid, Err(SandboxError::InvalidSpec(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_driver_reaps_leftovers_of_a_previous_run() {
    let h = Harness::new();
    let sandbox = h
        .driver
        .create(h.spec("leftover", &["/bin/sleep", "1000"]))
        .await
        .unwrap();
    let mut exited = sandbox.exited.clone();
    std::mem::forget(sandbox); // as if the agent had crashed
    assert!(exited.borrow().is_none());
    assert!(h.cgroup_dir("memory", "leftover").exists());

    let _second = ProcessDriver::new(h.cfg.clone()).unwrap();
    tokio::time::timeout(WAIT, exited.wait_for(Option::is_some))
        .await
        .expect("leftover sandbox survived")
        .unwrap();
    h.assert_cgroups_gone("leftover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_are_independent() {
    let h = Harness::new();
    let create = |i: i32| {
        let spec = h.spec(
            &format!("par-{i}"),
            &["/bin/sh", "-c", &format!("exit {i}")],
        );
        h.driver.create(spec)
    };
    let (a, b, c, d) = tokio::join!(create(0), create(1), create(2), create(3));
    for (i, sandbox) in [a, b, c, d].into_iter().enumerate() {
        let sandbox = sandbox.unwrap();
        assert_eq!(wait_exit(&sandbox).await, ExitReason::Exited(i as i32));
        sandbox.destroy().await.unwrap();
        h.assert_cgroups_gone(&format!("par-{i}"));
    }
}

/// Rough cost of one `create` with a trivial runtime; run with
/// `cargo test --release --test sandbox -- --ignored --nocapture create_timing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn create_timing() {
    let h = Harness::new();
    let n = 20;
    let mut total = Duration::ZERO;
    for i in 0..n {
        let start = Instant::now();
        let sandbox = h
            .driver
            .create(h.spec(&format!("t{i}"), &["/bin/true"]))
            .await
            .unwrap();
        total += start.elapsed();
        sandbox.destroy().await.unwrap();
    }
    println!("mean create: {:?} over {n}", total / n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stem_cells_are_specialized_refilled_and_destroyed_at_stop() {
    let h = Harness::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    h.driver
        .start_stem_cells(2, move |n| log.lock().unwrap().push(n));
    h.wait_cells(2).await;
    assert_eq!(h.stem_dirs().len(), 6, "two cells × memory, pids, cpu");
    let spec = h.spec("from-cell", &["/bin/sh", "-c", "exit 7"]);
    let sandbox = h.driver.create(spec).await.unwrap();
    assert_eq!(sandbox.start_path, StartPath::StemCell);
    // The cell's cgroups became the instance's, with its limits.
    let limit = h
        .cgroup_dir("memory", "from-cell")
        .join("memory.limit_in_bytes");
    assert_eq!(
        std::fs::read_to_string(limit).unwrap().trim(),
        (128u64 << 20).to_string()
    );
    let pids = h.cgroup_dir("pids", "from-cell").join("pids.max");
    assert_eq!(std::fs::read_to_string(pids).unwrap().trim(), "64");
    assert_eq!(wait_exit(&sandbox).await, ExitReason::Exited(7));
    sandbox.destroy().await.unwrap();
    h.assert_cgroups_gone("from-cell");
    h.wait_cells(2).await;
    h.driver.stop_stem_cells().await;
    assert_eq!(h.stem_dirs(), Vec::<PathBuf>::new());
    assert_eq!(h.driver.stem_cells_ready(), 0);
    assert_eq!(
        seen.lock().unwrap().last(),
        Some(&0),
        "the gauge heard the stop"
    );
    // Stopped: every create is fresh.
    let sandbox = h
        .driver
        .create(h.spec("fresh", &["/bin/true"]))
        .await
        .unwrap();
    assert_eq!(sandbox.start_path, StartPath::Fresh);
    assert_eq!(wait_exit(&sandbox).await, ExitReason::Exited(0));
    sandbox.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_driver_reaps_waiting_stem_cells_of_a_previous_run() {
    let h = Harness::new();
    h.driver.start_stem_cells(2, |_| {});
    h.wait_cells(2).await;
    let waiting = h.stem_dirs();
    assert_eq!(waiting.len(), 6);
    // As if the agent had been killed with cells waiting: the next start reaps them (a
    // cgroup is removed only once its processes are gone).
    let _second = ProcessDriver::new(h.cfg.clone()).unwrap();
    let left: Vec<&PathBuf> = waiting.iter().filter(|d| d.exists()).collect();
    assert_eq!(left, Vec::<&PathBuf>::new(), "waiting cells survived");
    // The first driver notices its dead cells (and may prepare new ones); stopping it
    // destroys whatever it holds.
    h.driver.stop_stem_cells().await;
    assert_eq!(h.stem_dirs(), Vec::<PathBuf>::new());
}
