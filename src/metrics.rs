//! One Prometheus registry per process; every component registers its metrics into it
//! with its own prefix (`hearth_router_`, `hearth_agent_`, `hearth_control_`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

/// Outcome label of an invocation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// Step label of a cold start.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabel {
    pub step: &'static str,
}

/// Phase label of the invoke path.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: &'static str,
}

/// Result label of a cache lookup (`hit`, `miss`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// A function.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabel {
    pub function: String,
}

/// A function and an outcome (or throttle reason).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionOutcomeLabel {
    pub function: String,
    pub outcome: &'static str,
}

/// How a sandbox was started: `stem_cell` or `fresh`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabel {
    pub path: &'static str,
}

/// Router metrics.
pub struct RouterMetrics {
    /// Invocations by outcome: success, function_error, client_error, service_error.
    pub invocations: Family<OutcomeLabel, Counter>,
    /// Time from request to response, seconds.
    pub invoke_duration: Histogram,
    /// Time spent in each phase of the invoke path, seconds.
    pub phases: Family<PhaseLabel, Histogram>,
    /// Metadata cache lookups by result (hit, miss).
    pub metadata_cache: Family<ResultLabel, Counter>,
    /// Metadata store reads done by the resolve and admit phases.
    pub metadata_reads: Counter,
    /// Per function: invocations by outcome (success, function_error, throttled, service_error).
    pub function_invocations: Family<FunctionOutcomeLabel, Counter>,
    /// Per function: throttles by reason.
    pub function_throttles: Family<FunctionOutcomeLabel, Counter>,
    /// Per function: invocations that cold-started an instance.
    pub function_cold_starts: Family<FunctionLabel, Counter>,
    /// Per function: forward duration (the agent's run, including a cold start), seconds.
    pub function_duration: Family<FunctionLabel, Histogram>,
    /// Per function: admitted invocations holding a concurrency permit now.
    pub inflight: Family<FunctionLabel, Gauge>,
    /// Open connections on the public listener.
    pub connections: Gauge,
}

/// Agent metrics.
pub struct AgentMetrics {
    pub cold_starts: Counter,
    /// Idle instances stopped to make room for a cold start.
    pub evictions: Counter,
    /// From the sandbox existing to the runtime's first `/next` (runtime start), seconds.
    pub cold_start_duration: Histogram,
    /// Sandbox creation (namespaces, cgroups, helper) alone, seconds.
    pub sandbox_create_duration: Histogram,
    /// Each cold-start step (capacity, code, sandbox, runtime_init), seconds.
    pub cold_start_steps: Family<StepLabel, Histogram>,
    /// Platform-side function errors by kind (timeout, exit, init).
    pub function_errors: Family<OutcomeLabel, Counter>,
    /// Live instances (starting, busy or idle).
    pub instances: Gauge,
    pub idle_instances: Gauge,
    /// Memory (MB) reserved by live instances.
    pub memory_reserved_mb: Gauge,
    /// Node code cache: cumulative hits, misses, evictions; bytes held now.
    pub code_cache_hits: Gauge,
    pub code_cache_misses: Gauge,
    pub code_cache_evictions: Gauge,
    pub code_cache_bytes: Gauge,
    /// Warm-instance memory-time: idle seconds × memory (MB), added when an instance stops
    /// being idle (taken for an invocation or stopped).
    pub idle_memory_mb_seconds: Counter<f64, AtomicU64>,
    /// Time an invocation waited for an instance (cold start or warm handoff), seconds.
    pub start_delay: Histogram,
    /// Sandboxes started, by path (from a stem cell or fresh).
    pub sandbox_starts: Family<PathLabel, Counter>,
    /// Stem cells ready now.
    pub stem_cells_ready: Gauge,
    /// Egress proxy requests (CONNECT or plain) by outcome: allowed, refused.
    pub egress_connections: Family<OutcomeLabel, Counter>,
}

impl Default for RouterMetrics {
    fn default() -> Self {
        RouterMetrics {
            invocations: Family::default(),
            invoke_duration: latency_histogram(),
            phases: Family::new_with_constructor(latency_histogram),
            metadata_cache: Family::default(),
            metadata_reads: Counter::default(),
            function_invocations: Family::default(),
            function_throttles: Family::default(),
            function_cold_starts: Family::default(),
            function_duration: Family::new_with_constructor(latency_histogram),
            inflight: Family::default(),
            connections: Gauge::default(),
        }
    }
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics {
            cold_starts: Counter::default(),
            evictions: Counter::default(),
            cold_start_duration: latency_histogram(),
            sandbox_create_duration: latency_histogram(),
            cold_start_steps: Family::new_with_constructor(latency_histogram),
            function_errors: Family::default(),
            instances: Gauge::default(),
            idle_instances: Gauge::default(),
            memory_reserved_mb: Gauge::default(),
            code_cache_hits: Gauge::default(),
            code_cache_misses: Gauge::default(),
            code_cache_evictions: Gauge::default(),
            code_cache_bytes: Gauge::default(),
            idle_memory_mb_seconds: Counter::default(),
            start_delay: latency_histogram(),
            sandbox_starts: Family::default(),
            stem_cells_ready: Gauge::default(),
            egress_connections: Family::default(),
        }
    }
}

/// 10 µs to ~80 s in factor-2 steps.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00001, 2.0, 24))
}

/// The process's registry plus each component's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub router: RouterMetrics,
    pub agent: AgentMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let router = RouterMetrics::default();
        let agent = AgentMetrics::default();
        let mut registry = Registry::default();
        let r = registry.sub_registry_with_prefix("hearth_router");
        r.register(
            "invocations",
            "Invocations by outcome",
            router.invocations.clone(),
        );
        r.register(
            "invoke_duration_seconds",
            "Invoke request duration",
            router.invoke_duration.clone(),
        );
        register_router_extras(r, &router);
        let a = registry.sub_registry_with_prefix("hearth_agent");
        a.register(
            "cold_starts",
            "Invocations that started a new instance",
            agent.cold_starts.clone(),
        );
        a.register(
            "memory_reserved_mb",
            "Memory reserved by live instances (MB)",
            agent.memory_reserved_mb.clone(),
        );
        a.register(
            "code_cache_hits",
            "Node cache hits (cumulative)",
            agent.code_cache_hits.clone(),
        );
        a.register(
            "code_cache_misses",
            "Node cache misses: fetches and extractions (cumulative)",
            agent.code_cache_misses.clone(),
        );
        a.register(
            "code_cache_evictions",
            "Packages evicted from the node cache (cumulative)",
            agent.code_cache_evictions.clone(),
        );
        a.register(
            "code_cache_bytes",
            "Bytes of extracted packages in the node cache",
            agent.code_cache_bytes.clone(),
        );
        a.register(
            "evictions",
            "Idle instances stopped to make room for a cold start",
            agent.evictions.clone(),
        );
        a.register(
            "cold_start_duration_seconds",
            "Runtime start: sandbox ready to the first /next",
            agent.cold_start_duration.clone(),
        );
        a.register(
            "cold_start_step_seconds",
            "Cold-start steps: capacity, code, sandbox, runtime_init",
            agent.cold_start_steps.clone(),
        );
        a.register(
            "sandbox_create_duration_seconds",
            "Sandbox construction",
            agent.sandbox_create_duration.clone(),
        );
        a.register(
            "function_errors",
            "Platform-detected function errors by kind",
            agent.function_errors.clone(),
        );
        a.register(
            "egress_connections",
            "Egress proxy requests by outcome (allowed, refused)",
            agent.egress_connections.clone(),
        );
        a.register("instances", "Live instances", agent.instances.clone());
        a.register(
            "idle_instances",
            "Idle warm instances",
            agent.idle_instances.clone(),
        );
        a.register(
            "idle_memory_mb_seconds",
            "Idle seconds times memory (MB) of warm instances",
            agent.idle_memory_mb_seconds.clone(),
        );
        a.register(
            "start_delay_seconds",
            "Time an invocation waited for an instance",
            agent.start_delay.clone(),
        );
        a.register(
            "sandbox_starts",
            "Sandboxes started, by path: stem_cell (prepared ahead) or fresh",
            agent.sandbox_starts.clone(),
        );
        a.register(
            "stem_cells_ready",
            "Stem cells prepared and waiting for a spec",
            agent.stem_cells_ready.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            router,
            agent,
        }
    }

    /// Lets a component register its own metrics under `prefix` (e.g. `hearth_events`).
    pub fn register_component(&self, prefix: &str, f: impl FnOnce(&mut Registry)) {
        let mut reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        f(reg.sub_registry_with_prefix(prefix));
    }

    /// Prometheus text exposition of every registered metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}

fn register_router_extras(r: &mut Registry, m: &RouterMetrics) {
    r.register(
        "phase_seconds",
        "Time in each invoke phase",
        m.phases.clone(),
    );
    r.register(
        "metadata_cache",
        "Metadata cache lookups by result",
        m.metadata_cache.clone(),
    );
    r.register(
        "metadata_reads",
        "Metadata store reads by the resolve and admit phases",
        m.metadata_reads.clone(),
    );
    r.register(
        "function_invocations",
        "Invocations per function by outcome",
        m.function_invocations.clone(),
    );
    r.register(
        "function_throttles",
        "Throttled invocations per function by reason",
        m.function_throttles.clone(),
    );
    r.register(
        "function_cold_starts",
        "Invocations per function that cold-started an instance",
        m.function_cold_starts.clone(),
    );
    r.register(
        "function_duration_seconds",
        "Forward duration per function",
        m.function_duration.clone(),
    );
    r.register(
        "inflight",
        "Admitted invocations per function holding a concurrency permit",
        m.inflight.clone(),
    );
    r.register(
        "connections",
        "Open connections on the public listener",
        m.connections.clone(),
    );
}
