//! Instance cgroups, v1 or v2, behind one interface.
//!
//! - v1 (these machines): `<root>/<controller>/<prefix>/<instance>` for memory
//!   (`memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` where swap accounting exists),
//!   pids (`pids.max`) and cpu (`cpu.cfs_period_us`, `cpu.cfs_quota_us`).
//! - v2: `<root>/<prefix>/<instance>` with `memory.max`, `memory.swap.max` (0, when present),
//!   `pids.max` and `cpu.max`; the controllers are enabled in `cgroup.subtree_control` of the
//!   root and of the prefix.
//!
//! [`detect`] picks the version at driver start. The v2 path cannot run on these machines (v2
//! is mounted there without controllers): its unit tests run it against a temporary directory
//! tree shaped like cgroupfs.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{DriverConfig, SandboxError};

/// The v1 hierarchies every instance gets a cgroup in (the first holds the memory files).
pub(crate) const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// CFS period of every instance (`cpu.cfs_period_us`, the first half of `cpu.max`).
pub(crate) const CPU_PERIOD_US: u64 = 100_000;
/// Memory that buys one full vCPU, as Lambda allots it.
pub(crate) const MB_PER_VCPU: u64 = 1769;
/// Smallest quota per period: 10 ms (a tenth of a CPU). Lambda's strict proportion would give
/// a 128 MB function 7.2 ms; a floor of a tenth keeps runtime start-up (python imports,
/// dynamic loading) in the same order of time as a warm call on a 2-core node, and is still
/// far from letting one small instance take a core. The kernel's own minimum is 1 ms.
pub(crate) const CPU_QUOTA_FLOOR_US: u64 = 10_000;

/// How long a cgroup may take to empty after its processes were killed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// Which cgroup interface the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller (`<root>/memory`, `<root>/pids`, `<root>/cpu`).
    V1,
    /// The unified hierarchy at `<root>` with memory, pids and cpu available.
    V2,
}

/// v2 when `<root>/cgroup.controllers` lists memory, pids and cpu; v1 when the memory, pids
/// and cpu hierarchies are mounted under `root`; an error otherwise.
pub(crate) fn detect(root: &Path) -> Result<CgroupVersion, SandboxError> {
    if let Ok(text) = std::fs::read_to_string(root.join("cgroup.controllers")) {
        let have: Vec<&str> = text.split_whitespace().collect();
        let missing: Vec<&str> = CONTROLLERS
            .into_iter()
            .filter(|c| !have.contains(c))
            .collect();
        if missing.is_empty() {
            return Ok(CgroupVersion::V2);
        }
        return Err(SandboxError::Cgroup(format!(
            "{} is cgroup v2 without the {missing:?} controller(s)",
            root.display()
        )));
    }
    // The root of the v1 pids hierarchy has no pids.* file: its cgroup.procs marks it.
    let v1_files = [
        "memory/memory.limit_in_bytes",
        "pids/cgroup.procs",
        "cpu/cpu.cfs_quota_us",
    ];
    match v1_files.iter().find(|f| !root.join(f).exists()) {
        None => Ok(CgroupVersion::V1),
        Some(f) => Err(SandboxError::Cgroup(format!(
            "{}: neither cgroup v2 with memory, pids and cpu nor cgroup v1 ({f} missing)",
            root.display()
        ))),
    }
}

/// The cgroup directories of one instance: one per v1 controller, or the single v2 one.
#[derive(Debug, Clone)]
pub(crate) struct InstanceCgroups {
    version: CgroupVersion,
    dirs: Vec<PathBuf>,
}

/// The prefix directories: one per v1 controller (in [`CONTROLLERS`] order), or one for v2.
fn prefix_dirs(cfg: &DriverConfig, version: CgroupVersion) -> Vec<PathBuf> {
    match version {
        CgroupVersion::V1 => CONTROLLERS
            .iter()
            .map(|c| cfg.cgroup_root.join(c).join(&cfg.cgroup_prefix))
            .collect(),
        CgroupVersion::V2 => vec![cfg.cgroup_root.join(&cfg.cgroup_prefix)],
    }
}

/// CPU quota per [`CPU_PERIOD_US`]: memory / 1769 MB of a CPU, at least the floor, at most
/// every core of the node.
pub(crate) fn cpu_quota_us(memory_mb: u32) -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    (u64::from(memory_mb) * CPU_PERIOD_US / MB_PER_VCPU)
        .clamp(CPU_QUOTA_FLOOR_US, cores * CPU_PERIOD_US)
}

/// `(file, value, optional)` triples written, in order, into the fresh instance cgroup at
/// index `index` of [`prefix_dirs`]. Optional files (absent on some kernels) are skipped.
fn limits(
    version: CgroupVersion,
    index: usize,
    cfg: &DriverConfig,
    memory_mb: u32,
) -> Vec<(&'static str, String, bool)> {
    let bytes = (u64::from(memory_mb) * 1024 * 1024).to_string();
    let pids = cfg.pids_max.to_string();
    let quota = cpu_quota_us(memory_mb);
    match (version, CONTROLLERS.get(index).copied()) {
        // memsw must be set after (and not below) the memory limit.
        (CgroupVersion::V1, Some("memory")) => vec![
            ("memory.limit_in_bytes", bytes.clone(), false),
            ("memory.memsw.limit_in_bytes", bytes, true),
        ],
        (CgroupVersion::V1, Some("pids")) => vec![("pids.max", pids, false)],
        // The period first: the quota is checked against it.
        (CgroupVersion::V1, Some("cpu")) => vec![
            ("cpu.cfs_period_us", CPU_PERIOD_US.to_string(), false),
            ("cpu.cfs_quota_us", quota.to_string(), false),
        ],
        (CgroupVersion::V1, _) => vec![],
        (CgroupVersion::V2, _) => vec![
            ("memory.max", bytes, false),
            ("memory.swap.max", "0".into(), true),
            ("pids.max", pids, false),
            ("cpu.max", format!("{quota} {CPU_PERIOD_US}"), false),
        ],
    }
}

/// The `oom_kill` counter in a `memory.oom_control` (v1) or `memory.events` (v2) text.
fn parse_oom_kill(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == "oom_kill")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

impl InstanceCgroups {
    /// Creates the cgroups named `name` (no limits yet); undoes itself on failure.
    pub fn create(
        cfg: &DriverConfig,
        version: CgroupVersion,
        name: &str,
    ) -> Result<Self, SandboxError> {
        let mut made = InstanceCgroups {
            version,
            dirs: Vec::new(),
        };
        for prefix in prefix_dirs(cfg, version) {
            let dir = prefix.join(name);
            if let Err(e) = std::fs::create_dir(&dir) {
                made.rmdir_all();
                return Err(SandboxError::Cgroup(format!(
                    "mkdir {}: {e}",
                    dir.display()
                )));
            }
            made.dirs.push(dir);
        }
        Ok(made)
    }

    /// The cgroups' directory name.
    pub fn name(&self) -> Option<&str> {
        self.dirs.first()?.file_name()?.to_str()
    }

    /// Renames every directory to `name` (a stem cell becomes its instance); processes
    /// inside stay where they are.
    pub fn rename(&mut self, name: &str) -> Result<(), SandboxError> {
        for dir in &mut self.dirs {
            let to = dir.with_file_name(name);
            std::fs::rename(&*dir, &to).map_err(|e| {
                SandboxError::Cgroup(format!("rename {} to {name}: {e}", dir.display()))
            })?;
            *dir = to;
        }
        Ok(())
    }

    /// Writes the memory, pids and cpu limits of an instance of `memory_mb`.
    pub fn set_limits(&self, cfg: &DriverConfig, memory_mb: u32) -> Result<(), SandboxError> {
        for (index, dir) in self.dirs.iter().enumerate() {
            write_limits(dir, &limits(self.version, index, cfg, memory_mb))?;
        }
        Ok(())
    }

    /// How many processes the kernel's OOM killer has killed in this instance (v1:
    /// `memory.oom_control`, v2: `memory.events`); 0 when unreadable.
    pub fn oom_kills(&self) -> u64 {
        let file = match self.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        self.dirs
            .first()
            .and_then(|d| std::fs::read_to_string(d.join(file)).ok())
            .map_or(0, |text| parse_oom_kill(&text))
    }

    /// The file holding the instance's peak memory use in bytes, for REPORT's "Max Memory
    /// Used" (v1: `memory.max_usage_in_bytes`; v2: `memory.peak`, kernel 5.19 and later).
    pub fn peak_memory_file(&self) -> PathBuf {
        let file = match self.version {
            CgroupVersion::V1 => "memory.max_usage_in_bytes",
            CgroupVersion::V2 => "memory.peak",
        };
        self.dirs.first().map(|d| d.join(file)).unwrap_or_default()
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
            SandboxError::Limits(format!("writing {value} to {}: {e}", path.display()))
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

/// Creates the prefix directories (v2: and enables memory, pids and cpu for their children).
pub(crate) fn ensure_prefix(
    cfg: &DriverConfig,
    version: CgroupVersion,
) -> Result<(), SandboxError> {
    for dir in prefix_dirs(cfg, version) {
        std::fs::create_dir_all(&dir)
            .map_err(|e| SandboxError::Cgroup(format!("mkdir {}: {e}", dir.display())))?;
    }
    if version == CgroupVersion::V2 {
        let enable = CONTROLLERS.map(|c| format!("+{c}")).join(" ");
        for dir in [
            cfg.cgroup_root.clone(),
            cfg.cgroup_root.join(&cfg.cgroup_prefix),
        ] {
            let file = dir.join("cgroup.subtree_control");
            std::fs::write(&file, &enable).map_err(|e| {
                SandboxError::Cgroup(format!("writing {enable:?} to {}: {e}", file.display()))
            })?;
        }
    }
    Ok(())
}

/// Instance cgroups under the prefix (leftovers of a previous run, or of dropped sandboxes).
fn instance_dirs(cfg: &DriverConfig, version: CgroupVersion) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for prefix in prefix_dirs(cfg, version) {
        let Ok(entries) = std::fs::read_dir(prefix) else {
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
///
/// Mounts need no reaping: every sandbox mounts only inside its own private mount namespace,
/// which the kernel tears down with its last process.
pub(crate) fn reap_leftovers(
    cfg: &DriverConfig,
    version: CgroupVersion,
) -> Result<(), SandboxError> {
    let dirs = instance_dirs(cfg, version);
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
pub(crate) fn remove_prefix(cfg: &DriverConfig, version: CgroupVersion) -> Vec<String> {
    let mut left: Vec<String> = instance_dirs(cfg, version)
        .iter()
        .filter_map(|dir| remove_if_empty(dir).err())
        .collect();
    for dir in prefix_dirs(cfg, version) {
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => left.push(format!("rmdir {}: {e}", dir.display())),
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(root: &Path) -> DriverConfig {
        DriverConfig {
            cgroup_root: root.to_path_buf(),
            cgroup_prefix: "hearth-x".into(),
            uid: 1000,
            gid: 1000,
            pids_max: 1024,
            helper_exe: "/bin/false".into(),
            rootfs_mountpoint: "/nonexistent".into(),
        }
    }

    #[test]
    fn cpu_quota_is_proportional_to_memory_with_a_floor() {
        assert_eq!(cpu_quota_us(1769), CPU_PERIOD_US);
        assert!(cpu_quota_us(100_000) <= 64 * CPU_PERIOD_US); // capped at the node's cores
        assert_eq!(cpu_quota_us(128), CPU_QUOTA_FLOOR_US);
        assert_eq!(cpu_quota_us(512), 512 * CPU_PERIOD_US / 1769);
    }

    #[test]
    fn oom_kill_counter_parses() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_oom_kill(v1), 3);
        let v2 = "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_oom_kill(v2), 2);
        assert_eq!(parse_oom_kill("oom_kill_disable 0\n"), 0);
    }

    #[test]
    fn detects_v1_v2_and_neither() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(detect(root).is_err());
        for f in [
            "memory/memory.limit_in_bytes",
            "pids/cgroup.procs",
            "cpu/cpu.cfs_quota_us",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), "max").unwrap();
        }
        assert_eq!(detect(root).unwrap(), CgroupVersion::V1);
        // v2 mounted without controllers (as on these machines) is an error, not v1.
        std::fs::write(root.join("cgroup.controllers"), "").unwrap();
        let err = detect(root).unwrap_err().to_string();
        assert!(err.contains("without"), "{err}");
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(detect(root).unwrap(), CgroupVersion::V2);
    }

    /// The v2 path against a directory tree shaped like cgroupfs (these machines cannot run
    /// it for real: their v2 hierarchy has no controllers).
    #[test]
    fn v2_against_a_cgroupfs_shaped_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        let cfg = cfg(root);
        let v = detect(root).unwrap();
        ensure_prefix(&cfg, v).unwrap();
        let prefix = root.join("hearth-x");
        let enabled = "+memory +pids +cpu";
        assert_eq!(
            std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
            enabled
        );
        assert_eq!(
            std::fs::read_to_string(prefix.join("cgroup.subtree_control")).unwrap(),
            enabled
        );

        let mut cg = InstanceCgroups::create(&cfg, v, "stem.1").unwrap();
        cg.rename("i1").unwrap();
        cg.set_limits(&cfg, 512).unwrap();
        assert!(!prefix.join("stem.1").exists());
        let inst = prefix.join("i1");
        let read = |f: &str| std::fs::read_to_string(inst.join(f)).unwrap();
        assert_eq!(read("memory.max"), (512u64 << 20).to_string());
        assert_eq!(read("pids.max"), "1024");
        assert_eq!(read("cpu.max"), format!("{} 100000", cpu_quota_us(512)));
        assert!(
            !inst.join("memory.swap.max").exists(),
            "optional and absent: skipped"
        );
        assert_eq!(cg.procs_files(), vec![inst.join("cgroup.procs")]);
        assert_eq!(instance_dirs(&cfg, v), vec![inst.clone()]);

        assert_eq!(cg.peak_memory_file(), inst.join("memory.peak"));
        assert_eq!(cg.oom_kills(), 0);
        std::fs::write(inst.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert_eq!(cg.oom_kills(), 1);

        // Leftover reaping reads cgroup.procs (an empty cgroup here); a real cgroupfs lets
        // rmdir remove the interface files, a plain directory does not: clear them first.
        for f in ["memory.max", "pids.max", "cpu.max", "memory.events"] {
            std::fs::remove_file(inst.join(f)).unwrap();
        }
        std::fs::write(inst.join("cgroup.procs"), "").unwrap();
        std::fs::remove_file(inst.join("cgroup.procs")).unwrap();
        reap_leftovers(&cfg, v).unwrap();
        assert!(!inst.exists());
        std::fs::remove_file(prefix.join("cgroup.subtree_control")).unwrap();
        assert!(remove_prefix(&cfg, v).is_empty());
        assert!(!prefix.exists());
    }

    #[test]
    fn v1_limits_include_cpu() {
        let cfg = cfg(Path::new("/x"));
        let files: Vec<_> = (0..CONTROLLERS.len())
            .flat_map(|i| limits(CgroupVersion::V1, i, &cfg, 1769))
            .map(|(f, v, _)| (f, v))
            .collect();
        assert!(files.contains(&("cpu.cfs_period_us", "100000".into())));
        assert!(files.contains(&("cpu.cfs_quota_us", "100000".into())));
        assert!(files.contains(&("pids.max", "1024".into())));
        assert_eq!(
            prefix_dirs(&cfg, CgroupVersion::V1)[2],
            Path::new("/x/cpu/hearth-x")
        );
    }
}
