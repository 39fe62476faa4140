//! Node agent: instance pools keyed by version descriptor, cold starts through the sandbox
//! driver, the Runtime API per instance, the node code cache and per-instance logs.

pub mod egress;
mod instance;
pub mod logs;
mod pool;
pub mod remote;
mod runtime_api;
pub mod server;
pub mod wire;

pub use instance::{Call, CallResult, Instance};

use crate::api::VersionDescriptor;
use crate::codestore::ZipLimits;
use crate::codestore::lru::{CodeSource, Lru, Pinned};
use crate::config::Config;
use crate::metrics::{Metrics, OutcomeLabel};
use crate::sandbox::{DriverConfig, ProcessDriver, SandboxError, SandboxSpec};
use bytes::Bytes;
use pool::Pools;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An invocation as the router forwards it (DESIGN.md "Router to agent protocol").
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub request_id: String,
    pub descriptor: Arc<VersionDescriptor>,
    /// The ARN as the caller named it (qualified).
    pub invoked_arn: String,
    /// Decoded client context JSON.
    pub client_context: Option<String>,
    pub trace_id: String,
    pub payload: Bytes,
    pub log_tail: bool,
}

/// The agent's answer to an invocation that ran.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    pub body: Bytes,
    pub function_error: Option<&'static str>,
    pub cold_start: bool,
    pub instance_id: String,
    /// Idle instances of this version left on the agent.
    pub idle: usize,
    /// How long the invocation waited for an instance (a cold start, or the warm handoff).
    pub start_delay: Duration,
    pub log_tail: Option<Vec<u8>>,
}

/// An invocation the agent did not answer. Every variant but [`AgentError::Lost`] means it
/// did not start: safe to place elsewhere.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgentError {
    #[error("agent at capacity")]
    Capacity,
    #[error("agent draining")]
    Draining,
    #[error("instance failed to start: {0}")]
    StartingFailed(String),
    /// A remote agent could not be reached (nothing was sent).
    #[error("agent unreachable: {0}")]
    Unreachable(String),
    /// The request reached a remote agent but no answer came back: the invocation may have
    /// started (or even finished) there, so it is never retried.
    #[error("{0}; the invocation may have started on that agent and was not retried")]
    Lost(String),
}

impl AgentError {
    /// The `x-hearth-refused` value.
    pub fn refused(&self) -> &'static str {
        match self {
            AgentError::Capacity => "capacity",
            AgentError::Draining => "draining",
            AgentError::StartingFailed(_) => "starting-failed",
            AgentError::Unreachable(_) => "unreachable",
            AgentError::Lost(_) => "lost",
        }
    }

    /// Whether the invocation certainly did not start (so placing it elsewhere is safe).
    pub fn not_started(&self) -> bool {
        !matches!(self, AgentError::Lost(_))
    }
}

/// Why a cold start did not produce an instance.
enum Started {
    /// A platform problem: the invocation did not start and may be placed elsewhere.
    Refused(AgentError),
    /// The function's own entry point cannot run: a function error, as Lambda reports it.
    BadEntrypoint(String),
}

impl From<AgentError> for Started {
    fn from(e: AgentError) -> Self {
        Started::Refused(e)
    }
}

/// Lambda's answer when the runtime's entry point cannot be started.
fn invalid_entrypoint(req: &InvokeRequest, msg: &str) -> InvokeResponse {
    let body = serde_json::json!({
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": format!("RequestId: {} Error: {msg}", req.request_id),
    });
    InvokeResponse {
        body: Bytes::from(body.to_string()),
        function_error: Some("Unhandled"),
        cold_start: true,
        instance_id: String::new(),
        idle: 0,
        start_delay: Duration::ZERO,
        log_tail: req.log_tail.then(Vec::new),
    }
}

/// Router-to-agent seam. In `serve` it is a direct call into [`Agent`].
#[async_trait::async_trait]
pub trait AgentClient: Send + Sync {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, AgentError>;
    /// Puts a code package into the node cache ahead of demand (idempotent).
    async fn prefetch(&self, code_sha256: &str) -> Result<(), String>;
    /// Stops the idle instances of a function (after delete); busy ones stop when done.
    async fn retire_function(&self, function_arn: &str);
    /// Holds `count` warm instances of each version for provisioned concurrency config
    /// `config` (replacing its previous targets; empty targets release it). Idempotent: keyed
    /// by the config, not by the call. Returns the instances allocated.
    async fn provision(
        &self,
        config: &str,
        targets: Vec<(Arc<VersionDescriptor>, usize)>,
    ) -> Result<usize, String>;
    /// Instances allocated for a provisioned concurrency config.
    async fn provisioned(&self, config: &str) -> usize;
    /// Every version's idle and busy instances and the memory in use (for placement).
    async fn state(&self) -> Result<wire::AgentState, AgentError> {
        Err(AgentError::Unreachable(
            "this agent reports no state".into(),
        ))
    }
}

/// Settings the agent keeps from the config.
struct Settings {
    runtimes_dir: PathBuf,
    python: PathBuf,
    region: String,
    idle_timeout: Duration,
    init_timeout: Duration,
    max_payload: usize,
    logs_dir: PathBuf,
    zip_limits: ZipLimits,
    /// Keep instances warm after an invocation (`agent.reuse_instances`).
    reuse: bool,
    log_max_bytes: u64,
    log_max_files: usize,
}

/// The node agent.
pub struct Agent {
    settings: Settings,
    driver: ProcessDriver,
    code: Arc<dyn CodeSource>,
    cache: Arc<Lru>,
    pools: Pools,
    metrics: Arc<Metrics>,
    /// Tenants' allow-lists and the limits of the egress proxy.
    egress: egress::Egress,
    /// Provisioned concurrency configs: config key → (version, instances).
    provisions: std::sync::Mutex<std::collections::HashMap<String, Vec<ProvisionTarget>>>,
    /// Instances being torn down after their answer was sent; shutdown waits for them before
    /// it removes the agent's cgroups.
    retiring: tokio::sync::watch::Sender<usize>,
}

impl Agent {
    pub fn new(
        cfg: &Config,
        code: Arc<dyn CodeSource>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Agent>> {
        let a = &cfg.agent;
        let rootfs = cfg.data_dir.join("run/rootfs");
        std::fs::create_dir_all(&rootfs)?;
        let driver = ProcessDriver::new(DriverConfig {
            cgroup_root: a.cgroup_root.clone(),
            cgroup_prefix: a.cgroup_prefix.clone(),
            uid: a.sandbox_uid,
            gid: a.sandbox_gid,
            pids_max: a.pids_max,
            helper_exe: std::env::current_exe()?,
            rootfs_mountpoint: rootfs,
        })?;
        let ready = metrics.agent.stem_cells_ready.clone();
        driver.start_stem_cells(a.stem_cells, move |n| {
            ready.set(n as i64);
        });
        let settings = Settings {
            runtimes_dir: cfg.runtimes.dir.clone(),
            python: cfg.runtimes.python.clone(),
            region: cfg.region.clone(),
            idle_timeout: Duration::from_secs(a.idle_timeout_secs),
            init_timeout: Duration::from_secs(a.init_timeout_secs),
            max_payload: cfg.limits.max_payload_bytes,
            logs_dir: cfg.data_dir.join("logs"),
            zip_limits: cfg.zip_limits(),
            reuse: a.reuse_instances,
            log_max_bytes: a.log_max_bytes,
            log_max_files: a.log_max_files,
        };
        Ok(Arc::new(Agent {
            settings,
            driver,
            code,
            cache: {
                let dir = cfg.data_dir.join("cache");
                crate::codestore::NodeCache::new(dir.clone())?.remove_leftovers()?;
                Lru::open(dir, a.code_cache_bytes)?
            },
            pools: Pools::new(
                a.max_instances,
                a.memory_capacity_mb,
                metrics.agent.idle_memory_mb_seconds.clone(),
            ),
            egress: egress::Egress::new(
                &cfg.egress.allow,
                cfg.egress.limits(),
                metrics.agent.egress_connections.clone(),
            )
            .map_err(|e| anyhow::anyhow!("egress.allow: {e}"))?,
            metrics,
            provisions: Default::default(),
            retiring: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// Stops idle instances past the keep-alive window, until `shutdown` resolves.
    pub async fn run_reaper(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let period = (self.settings.idle_timeout / 10)
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(period) => {}
            }
            for inst in self.pools.expired(self.settings.idle_timeout) {
                self.retire(inst).await;
            }
            if let Err(e) = self.fill_provisioned().await {
                tracing::warn!(error = %e, "replacing provisioned instances");
            }
            self.update_gauges();
        }
    }

    /// Provisioned floors per pool key, summed over every config.
    fn floors(&self) -> Vec<(Arc<VersionDescriptor>, usize)> {
        let configs = self.provisions.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_key: std::collections::HashMap<String, (Arc<VersionDescriptor>, usize)> =
            Default::default();
        for (d, n) in configs.values().flatten() {
            by_key
                .entry(d.pool_key())
                .or_insert_with(|| (d.clone(), 0))
                .1 += n;
        }
        by_key.into_values().collect()
    }

    /// Tells the pools which idle instances provisioned concurrency keeps.
    fn apply_floors(&self) {
        let floors = self
            .floors()
            .into_iter()
            .map(|(d, n)| (d.pool_key(), n))
            .collect();
        self.pools.set_floors(floors);
    }

    /// Starts instances until every provisioned floor is met (idempotent).
    async fn fill_provisioned(&self) -> Result<(), String> {
        for (d, n) in self.floors() {
            let key = d.pool_key();
            while self.pools.live(&key) < n {
                if let pool::Taken::Evict(victim) = self
                    .pools
                    .reserve_new(&key, d.memory_mb as u64)
                    .map_err(|e| e.to_string())?
                {
                    self.retire(victim).await;
                    continue;
                }
                let inst = match self.cold_start(&d, INIT_PROVISIONED).await {
                    Ok(inst) => inst,
                    Err(Started::Refused(e)) => return Err(e.to_string()),
                    Err(Started::BadEntrypoint(m)) => return Err(m),
                };
                self.pools.put_idle(key.clone(), inst);
            }
        }
        self.update_gauges();
        Ok(())
    }

    /// Refuses new work and stops every instance. Call after in-flight invokes drained.
    pub async fn shutdown(&self) {
        for inst in self.pools.drain_all() {
            self.retire(inst).await;
        }
        let mut retiring = self.retiring.subscribe();
        let done = retiring.wait_for(|n| *n == 0);
        if tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .is_err()
        {
            tracing::warn!("instances still stopping at shutdown");
        }
        self.driver.stop_stem_cells().await;
        self.driver.cleanup();
    }

    fn update_gauges(&self) {
        let (live, idle) = self.pools.counts();
        self.metrics.agent.instances.set(live as i64);
        self.metrics.agent.idle_instances.set(idle as i64);
        self.metrics
            .agent
            .memory_reserved_mb
            .set(self.pools.memory_used() as i64);
    }

    async fn retire(&self, inst: Arc<Instance>) {
        if let Err(e) = inst.sandbox.destroy().await {
            tracing::error!(instance = %inst.id, error = %e, "stopping instance");
        }
        self.pools.forget(
            &inst.descriptor.pool_key(),
            inst.descriptor.memory_mb as u64,
        );
        self.update_gauges();
    }

    /// Runs one invocation: takes a warm instance or cold-starts one, runs, then keeps or
    /// retires the instance. Runs to completion even if the caller goes away.
    async fn run(self: Arc<Self>, req: InvokeRequest) -> Result<InvokeResponse, AgentError> {
        let arrived = Instant::now();
        let key = req.descriptor.pool_key();
        let (inst, cold) = match self.take(&key, &req.descriptor).await? {
            Some(inst) => (inst, false),
            None => match self.cold_start_new_descriptor(&req.descriptor, &key).await {
                Ok(inst) => (inst, true),
                Err(Started::Refused(e)) => return Err(e),
                Err(Started::BadEntrypoint(msg)) => return Ok(invalid_entrypoint(&req, &msg)),
            },
        };
        let call = Call {
            request_id: req.request_id,
            payload: req.payload,
            invoked_arn: req.invoked_arn,
            client_context: req.client_context,
            trace_id: req.trace_id,
        };
        let result = inst.call(call, self.settings.init_timeout).await;
        if cold && let Some(d) = inst.init_duration() {
            self.metrics
                .agent
                .cold_start_duration
                .observe(d.as_secs_f64());
            let h = self
                .metrics
                .agent
                .cold_start_steps
                .get_or_create(&crate::metrics::StepLabel {
                    step: "runtime_init",
                });
            h.observe(d.as_secs_f64());
        }
        if let Some(kind) = result.error_kind {
            self.metrics
                .agent
                .function_errors
                .get_or_create(&OutcomeLabel { outcome: kind })
                .inc();
        }
        let instance_id = inst.id.clone();
        let start_delay = result
            .delivered
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(arrived));
        self.metrics
            .agent
            .start_delay
            .observe(start_delay.as_secs_f64());
        let idle = if result.reset || !inst.alive() || !self.settings.reuse {
            // Answer first; the teardown runs after (its capacity is released when it is done).
            let me = self.clone();
            self.retiring.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                me.retire(inst).await;
                me.retiring.send_modify(|n| *n -= 1);
            });
            self.pools.idle_count(&key)
        } else {
            self.pools.put_idle(key.clone(), inst)
        };
        self.update_gauges();
        Ok(InvokeResponse {
            body: result.body,
            function_error: result.function_error,
            cold_start: cold,
            instance_id,
            idle,
            start_delay,
            log_tail: req.log_tail.then_some(result.log_tail),
        })
    }

    fn step(&self, step: &'static str, since: Instant) {
        let h = self
            .metrics
            .agent
            .cold_start_steps
            .get_or_create(&crate::metrics::StepLabel { step });
        h.observe(since.elapsed().as_secs_f64());
    }

    /// A warm instance of `key`, or `None` once room for a new one is reserved, evicting idle
    /// instances (least recently used first) when memory or count capacity is short.
    async fn take(
        &self,
        key: &str,
        d: &VersionDescriptor,
    ) -> Result<Option<Arc<Instance>>, AgentError> {
        let t = Instant::now();
        loop {
            match self.pools.take(key, d.memory_mb as u64)? {
                pool::Taken::Warm(inst) => return Ok(Some(inst)),
                pool::Taken::Reserved => {
                    self.step("capacity", t);
                    return Ok(None);
                }
                pool::Taken::Evict(victim) => {
                    self.metrics.agent.evictions.inc();
                    self.retire(victim).await;
                }
            }
        }
    }

    /// A cold start that also stops idle instances of older descriptors of the same version:
    /// the first invoke after an update always lands here (no warm instance has the new key),
    /// so the warm path never scans for them.
    async fn cold_start_new_descriptor(
        self: &Arc<Self>,
        d: &Arc<VersionDescriptor>,
        key: &str,
    ) -> Result<Arc<Instance>, Started> {
        for stale in self.pools.stale_versions(d, key) {
            let me = self.clone();
            tokio::spawn(async move { me.retire(stale).await });
        }
        self.cold_start(d, INIT_ON_DEMAND).await
    }

    /// Cold start: node cache, runtime, sandbox, Runtime API.
    async fn cold_start(
        &self,
        d: &Arc<VersionDescriptor>,
        init_type: &str,
    ) -> Result<Arc<Instance>, Started> {
        self.metrics.agent.cold_starts.inc();
        let result = self.build_instance(d, init_type).await;
        if result.is_err() {
            self.pools.forget(&d.pool_key(), d.memory_mb as u64);
        }
        result
    }

    async fn build_instance(
        &self,
        d: &Arc<VersionDescriptor>,
        init_type: &str,
    ) -> Result<Arc<Instance>, Started> {
        let fail = |e: String| {
            tracing::error!(function = %d.function_name, error = %e, "cold start failed");
            Started::Refused(AgentError::StartingFailed(e))
        };
        let s = &self.settings;
        let launch = crate::runtimes::launch(&s.runtimes_dir, &s.python, &d.runtime, &d.handler)
            .map_err(|e| fail(e.to_string()))?;
        let t = Instant::now();
        let code = self.code(&d.code_sha256).await.map_err(fail)?;
        self.step("code", t);
        let id = format!(
            "{}-{}",
            d.function_name,
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let spec = SandboxSpec {
            instance_id: id.clone(),
            code_dir: code.path.clone(),
            runtime_dir: launch.runtime_dir.clone(),
            argv: launch.argv.clone(),
            env: bootstrap_env(d, &s.region, &id, &launch.env, init_type),
            memory_mb: d.memory_mb,
            tmp_size_mb: (d.memory_mb / 2).min(512),
            egress: d.egress,
        };
        let t = Instant::now();
        let created = self.driver.create(spec).await;
        self.metrics
            .agent
            .sandbox_create_duration
            .observe(t.elapsed().as_secs_f64());
        self.step("sandbox", t);
        let mut sandbox = match created {
            Ok(s) => {
                let path = crate::metrics::PathLabel {
                    path: s.start_path.as_str(),
                };
                self.metrics.agent.sandbox_starts.get_or_create(&path).inc();
                s
            }
            Err(SandboxError::Exec(msg)) => return Err(Started::BadEntrypoint(msg)),
            Err(e) => return Err(fail(e.to_string())),
        };
        if let Some(listener) = sandbox.egress.take() {
            let proxy = self.egress.proxy_for(&d.function_arn);
            tokio::spawn(egress::serve(listener, proxy, sandbox.exited.clone()));
        }
        let log_file = s.logs_dir.join(&d.function_name).join(format!("{id}.log"));
        if let Some(fn_dir) = log_file.parent() {
            logs::prune(fn_dir, s.log_max_files);
        }
        let output = sandbox
            .output
            .try_clone()
            .map_err(|e| fail(e.to_string()))?;
        let log = logs::InstanceLog::new(output, &log_file, s.log_max_bytes)
            .map_err(|e| fail(e.to_string()))?;
        let usage = sandbox.peak_memory_file();
        match Instance::start(d.clone(), sandbox, log, s.max_payload + 100, usage, code) {
            Ok(inst) => Ok(inst),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// The extracted package, pinned in the node cache while the caller holds it.
    async fn code(&self, sha: &str) -> Result<Pinned, String> {
        let (cache, code, limits, sha) = (
            self.cache.clone(),
            self.code.clone(),
            self.settings.zip_limits,
            sha.to_string(),
        );
        let pinned = tokio::task::spawn_blocking(move || {
            cache
                .acquire(code.as_ref(), &sha, &limits)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?;
        self.update_cache_gauges();
        pinned
    }

    /// Every version's idle and busy instances and the memory in use (`GET /v1/state`).
    pub fn state(&self) -> wire::AgentState {
        self.pools.state()
    }

    fn update_cache_gauges(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let (st, m) = (&self.cache.stats, &self.metrics.agent);
        m.code_cache_hits.set(st.hits.load(Relaxed) as i64);
        m.code_cache_misses.set(st.misses.load(Relaxed) as i64);
        m.code_cache_evictions
            .set(st.evictions.load(Relaxed) as i64);
        m.code_cache_bytes.set(st.bytes.load(Relaxed) as i64);
    }
}

#[async_trait::async_trait]
impl AgentClient for Arc<Agent> {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, AgentError> {
        // A separate task: the invocation finishes (and frees its instance) even if the
        // caller disconnects.
        let me = self.clone();
        tokio::spawn(me.run(req))
            .await
            .unwrap_or_else(|e| Err(AgentError::StartingFailed(e.to_string())))
    }

    async fn prefetch(&self, code_sha256: &str) -> Result<(), String> {
        self.code(code_sha256).await.map(drop)
    }

    async fn provision(
        &self,
        config: &str,
        targets: Vec<(Arc<VersionDescriptor>, usize)>,
    ) -> Result<usize, String> {
        {
            let mut p = self.provisions.lock().unwrap_or_else(|p| p.into_inner());
            if targets.iter().all(|(_, n)| *n == 0) {
                p.remove(config);
            } else {
                p.insert(config.to_string(), targets);
            }
        }
        self.apply_floors();
        self.fill_provisioned().await?;
        Ok(self.provisioned(config).await)
    }

    async fn state(&self) -> Result<wire::AgentState, AgentError> {
        Ok(Agent::state(self))
    }

    async fn provisioned(&self, config: &str) -> usize {
        let p = self.provisions.lock().unwrap_or_else(|p| p.into_inner());
        let targets = p.get(config).cloned().unwrap_or_default();
        drop(p);
        targets
            .iter()
            .map(|(d, n)| self.pools.live(&d.pool_key()).min(*n))
            .sum()
    }

    async fn retire_function(&self, function_arn: &str) {
        self.provisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, targets| targets.iter().all(|(d, _)| d.function_arn != function_arn));
        self.apply_floors();
        for inst in self.pools.remove_function(function_arn) {
            self.retire(inst).await;
        }
    }
}

/// The Lambda bootstrap environment (`lambda-api.md`), then the runtime's, then the user's.
/// A version and how many warm instances of it a provisioned concurrency config holds.
pub type ProvisionTarget = (Arc<VersionDescriptor>, usize);

/// `AWS_LAMBDA_INITIALIZATION_TYPE` of instances started for an invocation.
const INIT_ON_DEMAND: &str = "on-demand";
/// … and of instances started ahead of demand for a provisioned concurrency config.
const INIT_PROVISIONED: &str = "provisioned-concurrency";

fn bootstrap_env(
    d: &VersionDescriptor,
    region: &str,
    instance: &str,
    runtime_env: &[(String, String)],
    init_type: &str,
) -> Vec<(String, String)> {
    let today = time::OffsetDateTime::now_utc().date();
    let stream = format!(
        "{}/{:02}/{:02}/[{}]{}",
        today.year(),
        today.month() as u8,
        today.day(),
        d.version,
        instance
    );
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001".to_string()),
        ("_HANDLER", d.handler.clone()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".into()),
        ("AWS_LAMBDA_FUNCTION_NAME", d.function_name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", d.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", d.version.clone()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", d.function_name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
        ("AWS_REGION", region.into()),
        ("AWS_DEFAULT_REGION", region.into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", init_type.into()),
        ("TZ", ":UTC".into()),
        ("LANG", "en_US.UTF-8".into()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into()),
        (
            "LD_LIBRARY_PATH",
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
                .into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(ek, _)| ek == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    };
    for (k, v) in runtime_env {
        set(k, v);
    }
    if d.egress {
        for (k, v) in egress::proxy_env() {
            set(k, v);
        }
    }
    for (k, v) in &d.environment {
        if !crate::control::RESERVED_ENV.contains(&k.as_str()) {
            set(k, v);
        }
    }
    env
}
