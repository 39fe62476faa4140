//! Sandboxes: the `process` driver (a jailed process, DESIGN.md "Sandbox construction").
//!
//! The agent asks [`ProcessDriver::create`] for a sandbox. The driver takes a *stem cell*
//! (stemcell.rs): a network namespace with `lo` up and the Runtime API listener bound at
//! `127.0.0.1:9001` inside it, cgroups, and `hearth sandbox-init` joined to both and waiting
//! for its spec; prepared ahead of demand when one is ready, on the spot otherwise. It then
//! specializes the cell: writes the limits (memory, pids, cpu) and sends the spec, with which
//! the helper builds the allow-listed root and execs the runtime as an unprivileged uid.

mod cgroup;
mod init;
mod netns;
mod protocol;
mod rootfs;
mod seccomp;
mod spawn;
mod stemcell;
mod sys;
mod validate;

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use cgroup::InstanceCgroups;

pub use cgroup::CgroupVersion;
use protocol::InitRequest;

pub use init::InitError;
pub use netns::{EGRESS_PROXY_ADDR, RUNTIME_API_ADDR};
pub use rootfs::SANDBOX_USER;
pub use seccomp::{POLICY as SECCOMP_POLICY, PolicyError};
pub use stemcell::STEM_CELL_PREFIX;

/// What to run in one sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Unique id of the instance (used for the cgroup name and the hostname).
    pub instance_id: String,
    /// Extracted code, bind-mounted read-only at `/var/task`.
    pub code_dir: PathBuf,
    /// Runtime files, bind-mounted read-only at `/var/runtime` (empty dir when `None`).
    pub runtime_dir: Option<PathBuf>,
    /// argv; argv[0] is a path inside the sandbox (e.g. `/var/task/bootstrap`).
    pub argv: Vec<String>,
    /// The complete environment of the runtime process.
    pub env: Vec<(String, String)>,
    /// Memory limit in MiB (memory cgroup).
    pub memory_mb: u32,
    /// Size cap of the private `/tmp` in MiB.
    pub tmp_size_mb: u32,
    /// Bind the egress proxy listener at [`EGRESS_PROXY_ADDR`] in the sandbox's network
    /// namespace (served by the agent, see `agent::egress`).
    pub egress: bool,
}

/// Host-wide settings of the driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Where cgroup hierarchies are mounted (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// Every cgroup this agent creates lives under `<controller>/<prefix>/`.
    pub cgroup_prefix: String,
    /// Unprivileged uid/gid the runtime runs as.
    pub uid: u32,
    pub gid: u32,
    /// pids.max of each instance.
    pub pids_max: u32,
    /// The hearth executable, re-executed as `hearth sandbox-init`.
    pub helper_exe: PathBuf,
    /// An empty host directory, used only as the mount point of each sandbox's tmpfs root
    /// inside the sandbox's private mount namespace.
    pub rootfs_mountpoint: PathBuf,
}

/// How a sandbox was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPath {
    /// From a stem cell prepared ahead of demand.
    StemCell,
    /// Prepared on the spot (no ready cell, or stem cells off).
    Fresh,
}

impl StartPath {
    /// The metric label: `stem_cell` or `fresh`.
    pub fn as_str(self) -> &'static str {
        match self {
            StartPath::StemCell => "stem_cell",
            StartPath::Fresh => "fresh",
        }
    }
}

/// Why a sandbox's runtime ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Exited(i32),
    Signaled(i32),
}

impl std::fmt::Display for ExitReason {
    /// Lambda's wording: `exit status 1`, `signal: killed`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::Exited(code) => write!(f, "exit status {code}"),
            ExitReason::Signaled(9) => write!(f, "signal: killed"),
            ExitReason::Signaled(sig) => write!(f, "signal: {sig}"),
        }
    }
}

/// Errors of sandbox construction, one variant per step.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("network namespace: {0}")]
    NetNs(String),
    #[error("cgroup: {0}")]
    Cgroup(String),
    #[error("cgroup limits: {0}")]
    Limits(String),
    #[error("starting the sandbox helper: {0}")]
    Spawn(String),
    #[error("sandbox helper failed: {0}")]
    Helper(String),
    #[error("instance cgroup not empty after kill: {0}")]
    Leftover(String),
    /// The runtime's entry point could not be exec'd (missing, not executable, bad format):
    /// the function's fault, not the platform's (Lambda's `Runtime.InvalidEntrypoint`).
    #[error("runtime could not be started: {0}")]
    Exec(String),
    /// The spec was refused before anything was created.
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    /// The driver configuration was refused by [`ProcessDriver::new`].
    #[error("invalid sandbox driver config: {0}")]
    InvalidConfig(String),
    /// The seccomp policy (`src/sandbox/seccomp.json`) was refused by [`ProcessDriver::new`].
    #[error("{0}")]
    Seccomp(#[from] seccomp::PolicyError),
}

/// A running sandbox.
///
/// Dropping it (or the part left after moving fields out) SIGKILLs the sandbox; its
/// cgroups are then removed by [`ProcessDriver::cleanup`] or the next driver's start.
/// Call [`Sandbox::destroy`] to end it cleanly.
pub struct Sandbox {
    /// The instance id it was created with.
    pub id: String,
    /// Runtime API listener, bound at 127.0.0.1:9001 inside the sandbox's network namespace.
    /// Non-blocking, ready for `tokio::net::TcpListener::from_std`.
    pub runtime_api: std::net::TcpListener,
    /// Egress proxy listener at 127.0.0.1:3128 inside the namespace, when the spec asked for it.
    pub egress: Option<std::net::TcpListener>,
    /// Read end of the pipe that receives the runtime's stdout and stderr (non-blocking).
    pub output: OwnedFd,
    /// Host pid of the sandbox's pid 1.
    pub pid1: i32,
    /// Becomes `Some` once the runtime (and so the sandbox) has ended.
    pub exited: tokio::sync::watch::Receiver<Option<ExitReason>>,
    /// pidfd of pid 1 (kills through it cannot hit a reused pid); kills on drop.
    /// Whether it came from a stem cell.
    pub start_path: StartPath,
    pid1_fd: KillOnDrop,
    cgroups: InstanceCgroups,
}

/// A pidfd whose process is SIGKILLed when this is dropped.
struct KillOnDrop(OwnedFd);

impl KillOnDrop {
    fn kill(&self) {
        match sys::pidfd_send_signal(self.0.as_fd(), nix::sys::signal::Signal::SIGKILL) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {} // already gone
            Err(e) => tracing::warn!(error = %e, "killing a sandbox"),
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Sandbox {
    /// SIGKILL to the sandbox's pid 1 (which takes its whole pid namespace down).
    pub fn kill(&self) {
        self.pid1_fd.kill();
    }

    /// How many processes of this sandbox the kernel's OOM killer has killed so far (v1:
    /// `oom_kill` of `memory.oom_control`, v2: of `memory.events`). On cgroup v1 the kernel
    /// kills single processes, so a sandbox can survive an OOM kill: callers watch this.
    pub fn oom_kills(&self) -> u64 {
        self.cgroups.oom_kills()
    }

    /// The cgroup file with the instance's peak memory use in bytes (v1 or v2).
    pub fn peak_memory_file(&self) -> PathBuf {
        self.cgroups.peak_memory_file()
    }

    /// Kill, wait until it has ended, check its cgroups are empty, remove them.
    pub async fn destroy(&self) -> Result<(), SandboxError> {
        self.kill();
        let mut exited = self.exited.clone();
        // An error means the waiting task is gone (runtime shutting down): check anyway.
        let _ = exited.wait_for(Option::is_some).await;
        self.cgroups.remove().await
    }
}

/// The `process` sandbox driver.
pub struct ProcessDriver {
    cfg: DriverConfig,
    /// The seccomp policy, compiled once at start.
    seccomp: seccomp::CompiledPolicy,
    /// cgroup v1 or v2, detected at start.
    cgroups: CgroupVersion,
    /// Stem cells kept ready (none until [`ProcessDriver::start_stem_cells`]).
    stem_cells: stemcell::StemCells,
}

impl ProcessDriver {
    /// Creates the driver and removes leftovers (processes and cgroups) under its prefix.
    ///
    /// Blocking (it may wait up to about two seconds for leftovers to die): call it at
    /// startup, before serving.
    pub fn new(cfg: DriverConfig) -> Result<Self, SandboxError> {
        validate::config(&cfg)?;
        let seccomp = seccomp::compile(seccomp::POLICY)?;
        let cgroups = cgroup::detect(&cfg.cgroup_root)?;
        tracing::info!(version = ?cgroups, root = %cfg.cgroup_root.display(), "cgroups detected");
        cgroup::ensure_prefix(&cfg, cgroups)?;
        cgroup::reap_leftovers(&cfg, cgroups)?;
        std::fs::create_dir_all(&cfg.rootfs_mountpoint).map_err(|e| {
            let path = cfg.rootfs_mountpoint.display();
            SandboxError::InvalidConfig(format!("rootfs mount point {path}: {e}"))
        })?;
        Ok(ProcessDriver {
            cfg,
            seccomp,
            cgroups,
            stem_cells: Default::default(),
        })
    }

    /// Keeps `count` stem cells ready from now on, refilled in the background; `on_change`
    /// hears the number of ready cells. Call once, from a task inside the tokio runtime (the
    /// refill task spawns helpers, whose parent-death signal is tied to a worker thread).
    pub fn start_stem_cells(
        &self,
        count: usize,
        on_change: impl Fn(usize) + Send + Sync + 'static,
    ) {
        let (cfg, version) = (self.cfg.clone(), self.cgroups);
        self.stem_cells
            .start(cfg, version, count, Box::new(on_change));
    }

    /// Stem cells ready now.
    pub fn stem_cells_ready(&self) -> usize {
        self.stem_cells.ready()
    }

    /// Stops refilling and destroys the ready stem cells (at shutdown, before [`Self::cleanup`]).
    pub async fn stop_stem_cells(&self) {
        self.stem_cells.stop().await;
    }

    /// Builds a sandbox and starts its runtime. Returns once the runtime process is exec'd
    /// (not once it has polled `/next`; the agent waits for that).
    ///
    /// Errors: [`SandboxError::Exec`] when the runtime's entry point cannot be exec'd, other
    /// variants for platform failures; nothing of the sandbox is left behind either way.
    /// Call it from a task on a runtime worker thread, not from `spawn_blocking`: the helper's
    /// parent-death signal fires when the *thread* that spawned it ends.
    pub async fn create(&self, spec: SandboxSpec) -> Result<Sandbox, SandboxError> {
        validate::spec(&spec)?;
        if let Some(cell) = self.stem_cell_for(&spec) {
            let req = self.request(&spec);
            match cell
                .specialize(&self.cfg, req, spec.memory_mb, StartPath::StemCell)
                .await
            {
                // The cell died while waiting (killed between the pool's liveness check and
                // now): nothing started, so the fresh path may run the same spec.
                Err(SandboxError::Helper(e)) => {
                    tracing::warn!(error = %e, "a stem cell failed to specialize; starting fresh");
                }
                done => return done,
            }
        }
        let cell =
            stemcell::prepare(&self.cfg, self.cgroups, &spec.instance_id, spec.egress).await?;
        cell.specialize(
            &self.cfg,
            self.request(&spec),
            spec.memory_mb,
            StartPath::Fresh,
        )
        .await
    }

    /// The one place that decides whether `spec` may start from a ready stem cell.
    fn stem_cell_for(&self, spec: &SandboxSpec) -> Option<stemcell::StemCell> {
        // Cells have no egress listener; a function with egress gets a fresh sandbox.
        if spec.egress {
            return None;
        }
        self.stem_cells.take()
    }

    fn request(&self, spec: &SandboxSpec) -> InitRequest {
        InitRequest {
            instance_id: spec.instance_id.clone(),
            code_dir: spec.code_dir.clone(),
            runtime_dir: spec.runtime_dir.clone(),
            argv: spec.argv.clone(),
            env: spec.env.clone(),
            tmp_size_mb: spec.tmp_size_mb,
            uid: self.cfg.uid,
            gid: self.cfg.gid,
            rootfs_mountpoint: self.cfg.rootfs_mountpoint.clone(),
            seccomp: self.seccomp.clone(),
        }
    }

    /// The cgroup version detected at start.
    pub fn cgroup_version(&self) -> CgroupVersion {
        self.cgroups
    }

    /// Removes this driver's cgroup prefix (called at shutdown once every sandbox is gone).
    pub fn cleanup(&self) {
        for left in cgroup::remove_prefix(&self.cfg, self.cgroups) {
            tracing::warn!(%left, "sandbox cgroup left behind");
        }
    }
}

type Exited = tokio::sync::watch::Receiver<Option<ExitReason>>;

/// Waits for the helper in a task and publishes how the runtime ended.
fn watch_exit(mut child: tokio::process::Child) -> Exited {
    let (tx, rx) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        let reason = spawn::exit_reason(child.wait().await);
        let _ = tx.send(Some(reason));
    });
    rx
}

/// Entry point of `hearth sandbox-init` (never returns).
pub fn sandbox_init_main() -> ! {
    init::main()
}
