//! Instance cgroups (cgroup v1): `<root>/<controller>/<prefix>/<instance>`.
//!
//! Limits per controller: memory (`memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes`
//! where swap accounting exists) and pids (`pids.max`). CPU (`cpu.cfs_quota_us`) comes in a
//! later issue: add `"cpu"` to [`CONTROLLERS`] and its file in [`limits`].

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{DriverConfig, SandboxError};

/// The v1 hierarchies every instance gets a cgroup in.
pub(crate) const CONTROLLERS: [&str; 2] = ["memory", "pids"];

/// How long a cgroup may take to empty after its processes were killed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// The cgroup directories of one instance, one per controller.
#[derive(Debug, Clone)]
pub(crate) struct InstanceCgroups {
    dirs: Vec<PathBuf>,
}

fn prefix_dir(cfg: &DriverConfig, controller: &str) -> PathBuf {
    cfg.cgroup_root.join(controller).join(&cfg.cgroup_prefix)
}

/// `(file, value)` pairs written into a fresh instance cgroup of `controller`.
/// Optional files (absent on some kernels) are skipped when missing.
fn limits(
    controller: &str,
    cfg: &DriverConfig,
    memory_mb: u32,
) -> Vec<(&'static str, String, bool)> {
    let bytes = (u64::from(memory_mb) * 1024 * 1024).to_string();
    match controller {
        // memsw must be set after (and not below) the memory limit.
        "memory" => vec![
            ("memory.limit_in_bytes", bytes.clone(), false),
            ("memory.memsw.limit_in_bytes", bytes, true),
        ],
        "pids" => vec![("pids.max", cfg.pids_max.to_string(), false)],
        // "cpu" => cpu.cfs_period_us / cpu.cfs_quota_us (later issue).
        _ => vec![],
    }
}

impl InstanceCgroups {
    /// Creates the instance's cgroups and writes their limits; undoes itself on failure.
    pub fn create(cfg: &DriverConfig, id: &str, memory_mb: u32) -> Result<Self, SandboxError> {
        let mut made = InstanceCgroups { dirs: Vec::new() };
        for controller in CONTROLLERS {
            let dir = prefix_dir(cfg, controller).join(id);
            if let Err(e) = std::fs::create_dir(&dir) {
                made.rmdir_all();
                return Err(SandboxError::Cgroup(format!(
                    "mkdir {}: {e}",
                    dir.display()
                )));
            }
            made.dirs.push(dir.clone());
            if let Err(e) = write_limits(&dir, &limits(controller, cfg, memory_mb)) {
                made.rmdir_all();
                return Err(e);
            }
        }
        Ok(made)
    }

    /// The `cgroup.procs` files a process writes its pid into to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Waits (briefly) until every cgroup is empty, then removes them.
    pub async fn remove(&self) -> Result<(), SandboxError> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            match self.try_remove() {
                Ok(()) => return Ok(()),
                Err(left) if Instant::now() >= deadline => {
                    return Err(SandboxError::Leftover(left));
                }
                Err(_) => tokio::time::sleep(DRAIN_POLL).await,
            }
        }
    }

    /// One attempt: removes every empty cgroup; says what is left otherwise.
    fn try_remove(&self) -> Result<(), String> {
        let mut left = Vec::new();
        for dir in &self.dirs {
            if let Err(why) = remove_if_empty(dir) {
                left.push(why);
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(left.join("; "))
        }
    }

    /// Best-effort removal of whatever exists (used when construction fails half way).
    fn rmdir_all(&self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn write_limits(dir: &Path, limits: &[(&str, String, bool)]) -> Result<(), SandboxError> {
    for (file, value, optional) in limits {
        let path = dir.join(file);
        if *optional && !path.exists() {
            continue;
        }
        std::fs::write(&path, value).map_err(|e| {
            SandboxError::Cgroup(format!("writing {value} to {}: {e}", path.display()))
        })?;
    }
    Ok(())
}

/// Pids listed in `<dir>/cgroup.procs` (empty if the cgroup is gone).
fn procs(dir: &Path) -> io::Result<Vec<i32>> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Removes `dir` if no process is left in it; a missing directory counts as removed.
fn remove_if_empty(dir: &Path) -> Result<(), String> {
    let pids = procs(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !pids.is_empty() {
        return Err(format!("{}: pids {pids:?}", dir.display()));
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("rmdir {}: {e}", dir.display())),
    }
}

/// Creates `<controller>/<prefix>/` for every controller.
pub(crate) fn ensure_prefix(cfg: &DriverConfig) -> Result<(), SandboxError> {
    for controller in CONTROLLERS {
        let dir = prefix_dir(cfg, controller);
        std::fs::create_dir_all(&dir)
            .map_err(|e| SandboxError::Cgroup(format!("mkdir {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Instance cgroups under the prefix (leftovers of a previous run, or of dropped sandboxes).
fn instance_dirs(cfg: &DriverConfig) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for controller in CONTROLLERS {
        let Ok(entries) = std::fs::read_dir(prefix_dir(cfg, controller)) else {
            continue;
        };
        let subdirs = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()));
        dirs.extend(subdirs.map(|e| e.path()));
    }
    dirs
}

/// Kills every process in leftover instance cgroups and removes them (blocking).
pub(crate) fn reap_leftovers(cfg: &DriverConfig) -> Result<(), SandboxError> {
    let dirs = instance_dirs(cfg);
    if !dirs.is_empty() {
        tracing::warn!(count = dirs.len(), "reaping leftover sandbox cgroups");
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    for dir in dirs {
        loop {
            let pids =
                procs(&dir).map_err(|e| SandboxError::Cgroup(format!("{}: {e}", dir.display())))?;
            for pid in &pids {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            match remove_if_empty(&dir) {
                Ok(()) => break,
                Err(left) if Instant::now() >= deadline => {
                    return Err(SandboxError::Leftover(left));
                }
                Err(_) => std::thread::sleep(DRAIN_POLL),
            }
        }
    }
    Ok(())
}

/// Removes empty instance cgroups and then the prefix directories; reports what remains.
pub(crate) fn remove_prefix(cfg: &DriverConfig) -> Vec<String> {
    let mut left: Vec<String> = instance_dirs(cfg)
        .iter()
        .filter_map(|dir| remove_if_empty(dir).err())
        .collect();
    for controller in CONTROLLERS {
        let dir = prefix_dir(cfg, controller);
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => left.push(format!("rmdir {}: {e}", dir.display())),
        }
    }
    left
}
