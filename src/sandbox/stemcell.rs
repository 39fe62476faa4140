//! Stem cells (DESIGN.md "Sandbox construction"): sandboxes prepared ahead of demand.
//!
//! A cell is a network namespace with `lo` up and the Runtime API listener bound inside it,
//! cgroups without limits, and the `sandbox-init` helper joined to both (parent-death signal
//! armed, pid, mount, ipc and uts namespaces unshared), blocked waiting for its spec.
//! [`prepare`] builds one; [`StemCell::specialize`] writes the instance's limits, names the
//! cgroups after the instance and sends the spec (root filesystem, code, uid, seccomp, exec).
//! A cold start without a ready cell prepares one on the spot and specializes it at once (the
//! fresh path), so both paths run the same sequence.
//!
//! Cells are generic: nothing in them depends on the function or its runtime (the runtime
//! directory is part of the spec). [`StemCells`] keeps a number of them ready; one background
//! task refills it, one cell at a time, so refilling never runs on an invoke's critical path
//! and costs at most one namespace thread and one helper start at any moment. Cells whose
//! helper died while waiting are discarded and replaced.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, ChildStdin};

use super::cgroup::InstanceCgroups;
use super::protocol::{InitRequest, Prepare};
use super::spawn::{self, StatusLines};
use super::{CgroupVersion, DriverConfig, KillOnDrop, Sandbox, SandboxError, StartPath, netns};

/// Cgroup names of waiting cells start with this (a `.` never occurs in an instance id).
pub const STEM_CELL_PREFIX: &str = "stem.";
/// How often waiting cells are checked for a dead helper.
const CHECK_PERIOD: Duration = Duration::from_millis(250);
/// Pause after a cell could not be prepared.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A prepared sandbox waiting for its spec.
pub(crate) struct StemCell {
    listener: TcpListener,
    /// The egress proxy listener (fresh sandboxes of functions with egress only).
    egress: Option<TcpListener>,
    cgroups: InstanceCgroups,
    child: Child,
    stdin: ChildStdin,
    status: StatusLines,
    output: OwnedFd,
}

/// Prepares a cell whose cgroups are called `name`.
pub(crate) async fn prepare(
    cfg: &DriverConfig,
    version: CgroupVersion,
    name: &str,
    egress: bool,
) -> Result<StemCell, SandboxError> {
    // 1. A network namespace with lo up and the Runtime API listener (and, for a function
    // with egress, the proxy listener), on its own thread.
    let net = netns::create(egress).await?;
    // 2. The cgroups, without limits until the cell is specialized.
    let cgroups = InstanceCgroups::create(cfg, version, name)?;
    // 3. The helper, told to join both; it unshares its namespaces and waits for a spec.
    let prep = Prepare {
        cgroup_procs: cgroups.procs_files(),
        netns_fd: -1, // set by spawn::start
    };
    let started = match spawn::start(&cfg.helper_exe, prep, net.fd).await {
        Ok(started) => started,
        Err(e) => {
            remove_cgroups(&cgroups).await;
            return Err(e);
        }
    };
    let mut cell = StemCell {
        listener: net.listener,
        egress: net.egress,
        cgroups,
        child: started.child,
        stdin: started.stdin,
        status: started.status,
        output: started.output,
    };
    // 4. Its `ready`: it is in the cgroups and the namespace.
    let failure =
        match tokio::time::timeout(spawn::START_TIMEOUT, spawn::ready(&mut cell.status)).await {
            Ok(Ok(())) => return Ok(cell),
            Ok(Err(e)) => e,
            Err(_) => SandboxError::Helper(format!("not ready within {:?}", spawn::START_TIMEOUT)),
        };
    cell.destroy().await;
    Err(failure)
}

async fn remove_cgroups(cgroups: &InstanceCgroups) {
    if let Err(e) = cgroups.remove().await {
        tracing::warn!(error = %e, "removing a stem cell's cgroups");
    }
}

impl StemCell {
    /// Whether the helper still waits (it may have been killed).
    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the helper, waits for it, removes the cgroups.
    async fn destroy(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        remove_cgroups(&self.cgroups).await;
    }

    /// Turns the cell into the sandbox `req` describes; returns once the runtime is exec'd.
    /// Nothing of the cell is left behind on failure.
    pub(crate) async fn specialize(
        mut self,
        cfg: &DriverConfig,
        req: InitRequest,
        memory_mb: u32,
        path: StartPath,
    ) -> Result<Sandbox, SandboxError> {
        // 1.–3. Name, limits, spec.
        if let Err(e) = self.specialize_steps(cfg, &req, memory_mb).await {
            self.destroy().await;
            return Err(e);
        }
        // 4. Follow the status pipe until the runtime is exec'd.
        let StemCell {
            listener,
            egress,
            cgroups,
            mut child,
            stdin,
            status,
            output,
        } = self;
        let handshake =
            tokio::time::timeout(spawn::START_TIMEOUT, spawn::handshake(status, stdin)).await;
        let failure = match handshake {
            Ok(Ok(running)) => {
                return Ok(Sandbox {
                    id: req.instance_id,
                    runtime_api: listener,
                    egress,
                    output,
                    pid1: running.pid1,
                    exited: super::watch_exit(child),
                    pid1_fd: KillOnDrop(running.pidfd),
                    cgroups,
                    start_path: path,
                });
            }
            Ok(Err(e)) => e,
            Err(_) => SandboxError::Helper(format!("no answer within {:?}", spawn::START_TIMEOUT)),
        };
        let _ = child.start_kill();
        let _ = child.wait().await;
        remove_cgroups(&cgroups).await;
        Err(failure)
    }

    async fn specialize_steps(
        &mut self,
        cfg: &DriverConfig,
        req: &InitRequest,
        memory_mb: u32,
    ) -> Result<(), SandboxError> {
        // 1. The cgroups take the instance's name (a fresh cell has it already).
        if self.cgroups.name() != Some(req.instance_id.as_str()) {
            self.cgroups.rename(&req.instance_id)?;
        }
        // 2. The instance's memory, pids and cpu limits.
        self.cgroups.set_limits(cfg, memory_mb)?;
        // 3. The spec: the helper forks pid 1, which builds the root filesystem, binds the
        //    code and runtime, and execs the runtime as the sandbox uid under seccomp.
        spawn::send_spec(&mut self.stdin, req).await
    }
}

/// The ready cells and what refilling them needs.
struct Pool {
    cfg: DriverConfig,
    version: CgroupVersion,
    target: usize,
    ready: Mutex<VecDeque<StemCell>>,
    wake: tokio::sync::Notify,
    closed: AtomicBool,
    on_change: Box<dyn Fn(usize) + Send + Sync>,
}

/// A number of stem cells kept ready (none until [`StemCells::start`]).
#[derive(Default)]
pub(crate) struct StemCells {
    pool: Mutex<Option<Arc<Pool>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StemCells {
    /// Starts the refill task (from inside a tokio runtime, on a worker thread: the helpers'
    /// parent-death signal is tied to the thread that spawns them). `on_change` hears the
    /// number of ready cells after every change. A `target` of 0 starts nothing.
    pub fn start(
        &self,
        cfg: DriverConfig,
        version: CgroupVersion,
        target: usize,
        on_change: Box<dyn Fn(usize) + Send + Sync>,
    ) {
        on_change(0);
        if target == 0 {
            return;
        }
        let pool = Arc::new(Pool {
            cfg,
            version,
            target,
            ready: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
            on_change,
        });
        *lock(&self.pool) = Some(pool.clone());
        *lock(&self.task) = Some(tokio::spawn(refill(pool)));
    }

    /// A ready cell, if there is one (dead ones are discarded on the way); wakes the refill.
    pub fn take(&self) -> Option<StemCell> {
        let pool = lock(&self.pool).clone()?;
        let cell = pool.pop_alive();
        pool.wake.notify_one();
        cell
    }

    /// Ready cells now.
    pub fn ready(&self) -> usize {
        lock(&self.pool)
            .as_ref()
            .map_or(0, |p| lock(&p.ready).len())
    }

    /// Stops refilling and destroys every ready cell.
    pub async fn stop(&self) {
        let Some(pool) = lock(&self.pool).take() else {
            return;
        };
        pool.closed.store(true, Ordering::SeqCst);
        pool.wake.notify_one();
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let cells: Vec<StemCell> = lock(&pool.ready).drain(..).collect();
        (pool.on_change)(0);
        for cell in cells {
            cell.destroy().await;
        }
    }
}

impl Pool {
    fn pop_alive(&self) -> Option<StemCell> {
        let mut ready = lock(&self.ready);
        let mut found = None;
        while let Some(mut cell) = ready.pop_front() {
            if cell.is_alive() {
                found = Some(cell);
                break;
            }
            tracing::warn!("a stem cell died while waiting; discarded");
            tokio::spawn(cell.destroy());
        }
        (self.on_change)(ready.len());
        found
    }

    /// Discards cells whose helper died while waiting.
    fn discard_dead(&self) {
        let mut ready = lock(&self.ready);
        let before = ready.len();
        let mut alive = VecDeque::with_capacity(before);
        for mut cell in ready.drain(..) {
            if cell.is_alive() {
                alive.push_back(cell);
            } else {
                tracing::warn!("a stem cell died while waiting; replacing it");
                tokio::spawn(cell.destroy());
            }
        }
        *ready = alive;
        if ready.len() != before {
            (self.on_change)(ready.len());
        }
    }

    fn missing(&self) -> bool {
        lock(&self.ready).len() < self.target
    }

    /// Adds a cell, or destroys it when the pool was stopped meanwhile.
    async fn put(&self, cell: StemCell) {
        if self.closed.load(Ordering::SeqCst) {
            cell.destroy().await;
            return;
        }
        let mut ready = lock(&self.ready);
        ready.push_back(cell);
        (self.on_change)(ready.len());
    }
}

/// The refill task: one cell at a time until the target is met; then waits for a take or
/// the next check for dead cells.
async fn refill(pool: Arc<Pool>) {
    while !pool.closed.load(Ordering::SeqCst) {
        pool.discard_dead();
        if pool.missing() {
            let name = format!(
                "{STEM_CELL_PREFIX}{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            match prepare(&pool.cfg, pool.version, &name, false).await {
                Ok(cell) => pool.put(cell).await,
                Err(e) => {
                    tracing::warn!(error = %e, "preparing a stem cell");
                    tokio::select! {
                        _ = pool.wake.notified() => {}
                        _ = tokio::time::sleep(RETRY_AFTER) => {}
                    }
                }
            }
            continue;
        }
        tokio::select! {
            _ = pool.wake.notified() => {}
            _ = tokio::time::sleep(CHECK_PERIOD) => {}
        }
    }
}
