//! Sandboxes: the `process` driver (a jailed process, DESIGN.md "Sandbox construction").
//!
//! The agent asks [`ProcessDriver::create`] for a sandbox; the driver prepares a network
//! namespace with `lo` up and the Runtime API listener bound at `127.0.0.1:9001` inside it,
//! a cgroup (memory limit, pids.max), then starts `hearth sandbox-init` which builds the
//! allow-listed root and execs the runtime as an unprivileged uid.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

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
    #[error("starting the sandbox helper: {0}")]
    Spawn(String),
    #[error("sandbox helper failed: {0}")]
    Helper(String),
    #[error("instance cgroup not empty after kill: {0}")]
    Leftover(String),
}

/// A running sandbox.
pub struct Sandbox {
    /// The instance id it was created with.
    pub id: String,
    /// Runtime API listener, bound at 127.0.0.1:9001 inside the sandbox's network namespace.
    /// Non-blocking, ready for `tokio::net::TcpListener::from_std`.
    pub runtime_api: std::net::TcpListener,
    /// Read end of the pipe that receives the runtime's stdout and stderr (non-blocking).
    pub output: OwnedFd,
    /// Host pid of the sandbox's pid 1.
    pub pid1: i32,
    /// Becomes `Some` once the runtime (and so the sandbox) has ended.
    pub exited: tokio::sync::watch::Receiver<Option<ExitReason>>,
}

impl Sandbox {
    /// SIGKILL to the sandbox's pid 1 (which takes its whole pid namespace down).
    pub fn kill(&self) {
        unimplemented!("sandbox driver")
    }

    /// Kill, wait until it has ended, check its cgroups are empty, remove them.
    pub async fn destroy(&self) -> Result<(), SandboxError> {
        unimplemented!("sandbox driver")
    }
}

/// The `process` sandbox driver.
pub struct ProcessDriver {
    cfg: DriverConfig,
}

impl ProcessDriver {
    /// Creates the driver and removes leftovers (processes and cgroups) under its prefix.
    pub fn new(cfg: DriverConfig) -> Result<Self, SandboxError> {
        Ok(ProcessDriver { cfg })
    }

    /// Builds a sandbox and starts its runtime. Returns once the runtime process is exec'd
    /// (not once it has polled `/next`; the agent waits for that).
    pub async fn create(&self, spec: SandboxSpec) -> Result<Sandbox, SandboxError> {
        let _ = (&self.cfg, spec);
        unimplemented!("sandbox driver")
    }

    /// Removes this driver's cgroup prefix (called at shutdown once every sandbox is gone).
    pub fn cleanup(&self) {}
}

/// Entry point of `hearth sandbox-init` (never returns).
pub fn sandbox_init_main() -> ! {
    unimplemented!("sandbox driver")
}
