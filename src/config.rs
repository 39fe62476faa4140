//! Typed configuration: built-in defaults, then a TOML file (`--config`), then `HEARTH_*`
//! environment variables, then flags. [`Config::validate`] reports every error at once.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration of `hearth serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where metadata, code, the node cache and logs live.
    pub data_dir: PathBuf,
    /// Public API (Lambda Invoke and management APIs), HTTP/1.1 and h2c.
    pub listen: SocketAddr,
    /// Admin port: `/healthz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// Base of absolute URLs hearth hands out (`FunctionUrl`, `Code.Location`), e.g.
    /// `https://fn.example.com`; empty means `http://<bound public address>`.
    pub public_url: String,
    /// Region used in ARNs and the bootstrap environment.
    pub region: String,
    /// The (only) tenant's account id, used in ARNs.
    pub account_id: String,
    /// Log filter (tracing-subscriber `EnvFilter` syntax).
    pub log: String,
    /// Seconds `serve` waits for in-flight invokes after SIGTERM.
    pub shutdown_grace_secs: u64,
    pub runtimes: RuntimesConfig,
    pub agent: AgentConfig,
    pub limits: LimitsConfig,
    pub tls: TlsConfig,
    pub events: EventsConfig,
    /// Remote node agents (`http://HOST:PORT`) `serve` places invokes on instead of running
    /// its own agent (multi-process mode). Empty: the in-process agent.
    pub agents: Vec<String>,
    pub placement: PlacementConfig,
    pub egress: EgressConfig,
    pub control: ControlConfig,
    pub router: RouterConfig,
}

/// `hearth control` (multi-process mode).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// The control service's listener: management paths, code packages, queue reads and the
    /// internal endpoints routers follow (HTTP/1.1 and h2c).
    pub listen: SocketAddr,
    /// A router (`http://HOST:PORT`, its public port) the delivery workers invoke through;
    /// empty: asynchronous invokes are stored but not delivered.
    pub router_url: String,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            listen: "127.0.0.1:8081".parse().expect("a valid address"),
            router_url: String::new(),
        }
    }
}

/// `hearth router` (multi-process mode).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// The control service (`http://HOST:PORT`, its `control.listen`).
    pub control_url: String,
}

/// TLS (HTTP/1.1 and HTTP/2 by ALPN) on a TCP port and HTTP/3 (QUIC) on the same UDP port.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the TLS and QUIC listeners (off when unset; port 0 picks one).
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain (reloaded on SIGHUP or when the file changes).
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Generate a self-signed certificate once (kept in `<data_dir>/tls/`) instead of `cert`/`key`.
    pub dev: bool,
}

/// Asynchronous invocations: the delivery workers (DESIGN.md "The invoke path").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Delivery workers (each runs one event at a time).
    pub workers: usize,
    /// Seconds a pulled event stays leased; a running worker renews the lease every third of it,
    /// and a crashed worker's events are delivered again after it.
    pub lease_secs: u64,
    /// Backoff before the first retry after a function error (doubles for the second), ms.
    /// Lambda waits about one minute, then two.
    pub retry_base_ms: u64,
    /// Backoff after the first throttle or capacity refusal (doubles per refusal), ms.
    pub throttle_base_ms: u64,
    /// Longest backoff after throttles, ms (Lambda: five minutes).
    pub throttle_max_ms: u64,
}

/// Placement of invokes across remote agents (`agents`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementConfig {
    /// When every agent refused for capacity, how long an invoke keeps retrying before 429.
    pub capacity_wait_ms: u64,
    /// How long an unreachable agent is skipped before it is tried again.
    pub down_backoff_ms: u64,
    /// How often each agent's `GET /v1/state` is polled (idle instances, health).
    pub state_poll_ms: u64,
    /// Milliseconds to connect to an agent before it counts as unreachable.
    pub connect_timeout_ms: u64,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            capacity_wait_ms: 1000,
            down_backoff_ms: 2000,
            state_poll_ms: 1000,
            connect_timeout_ms: 1000,
        }
    }
}

/// The egress proxy of functions with `VpcConfig` (DESIGN.md "Egress").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Account id → destinations its functions may reach: `host:port`, `*.domain:port`,
    /// `IP:port`, `CIDR:port` (IPv6 in brackets), port `*` for any.
    pub allow: std::collections::BTreeMap<String, Vec<String>>,
    /// Seconds to resolve and connect to a destination.
    pub connect_timeout_secs: u64,
    /// Seconds a tunnel, an upstream answer or a client's request headers may stay silent.
    pub idle_timeout_secs: u64,
    /// Open proxy connections (tunnels included) per instance.
    pub max_connections: usize,
    /// Largest request line plus headers a function may send to the proxy.
    pub max_header_bytes: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            allow: Default::default(),
            connect_timeout_secs: 10,
            idle_timeout_secs: 300,
            max_connections: 64,
            max_header_bytes: 16384,
        }
    }
}

impl EgressConfig {
    /// The proxy's limits.
    pub fn limits(&self) -> crate::agent::egress::Limits {
        crate::agent::egress::Limits {
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
        }
    }

    fn validate(&self, e: &mut Vec<String>) {
        for (account, rules) in &self.allow {
            if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                e.push(format!(
                    "egress.allow: key {account:?} must be a 12-digit account id"
                ));
            }
            if let Err(err) = crate::agent::egress::rules::AllowList::parse(rules) {
                e.push(format!("egress.allow.\"{account}\": {err}"));
            }
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            e.push("egress.connect_timeout_secs: must be 1..=300".into());
        }
        if !(1..=86_400).contains(&self.idle_timeout_secs) {
            e.push("egress.idle_timeout_secs: must be 1..=86400".into());
        }
        if !(1..=10_000).contains(&self.max_connections) {
            e.push("egress.max_connections: must be 1..=10000".into());
        }
        if !(8192..=1 << 20).contains(&self.max_header_bytes) {
            e.push("egress.max_header_bytes: must be 8192..=1048576".into());
        }
    }
}

/// Language runtimes (DESIGN.md "Runtimes").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimesConfig {
    /// Directory holding prepared runtimes (outside the data directory).
    pub dir: PathBuf,
    /// Runtimes `serve` prepares at start when missing.
    pub prepare: Vec<String>,
    /// Python interpreter used both to install `awslambdaric` and inside sandboxes.
    pub python: PathBuf,
}

/// Node agent and sandboxes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Idle instances are stopped after this many seconds without an invocation.
    pub idle_timeout_secs: u64,
    /// Most instances (busy + idle + starting) on this agent.
    pub max_instances: usize,
    /// Memory (MB) the agent's instances may reserve in all (each reserves its MemorySize).
    /// When a cold start does not fit, idle instances are evicted, least recently used first.
    pub memory_capacity_mb: u64,
    /// Bytes of extracted packages the node cache keeps (least recently used evicted first;
    /// packages in use are pinned).
    pub code_cache_bytes: u64,
    /// At start, packages of this size or smaller (zipped bytes) are put into the node cache
    /// ahead of demand.
    pub preload_max_bytes: u64,
    /// Bytes an instance's log file may reach before it is rotated (one old file is kept).
    pub log_max_bytes: u64,
    /// Log files kept per function (oldest removed when a new instance starts).
    pub log_max_files: usize,
    /// Where cgroup v1 hierarchies are mounted.
    pub cgroup_root: PathBuf,
    /// Every cgroup of this agent lives under `<controller>/<cgroup_prefix>/`.
    pub cgroup_prefix: String,
    /// Unprivileged uid and gid of sandboxed runtimes.
    pub sandbox_uid: u32,
    pub sandbox_gid: u32,
    /// pids.max of each instance.
    pub pids_max: u32,
    /// Seconds a runtime may take to reach its first `/next` before the instance is killed.
    pub init_timeout_secs: u64,
    /// Keep instances warm for reuse. `false` stops every instance after its invocation, so
    /// each invoke is a cold start (for cold-start benchmarks).
    pub reuse_instances: bool,
    /// Stem cells kept ready: prepared sandboxes (network namespace with the Runtime API
    /// listener, cgroups, helper process) waiting for a spec. They are generic (the runtime
    /// is part of the spec). 0 turns them off: every sandbox is built on the cold start.
    pub stem_cells: usize,
    /// `hearth agent`: the router-to-agent port (HTTP/2 prior knowledge or HTTP/1.1).
    pub listen: SocketAddr,
    /// `hearth agent`: where code packages come from (`GET {code_url}/hearth/v1/code/{sha}.zip`).
    pub code_url: String,
    /// `hearth agent`: seconds a code package download may take.
    pub code_fetch_timeout_secs: u64,
}

/// Sizes of accepted input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest synchronous invoke payload and response (Lambda: 6 MB).
    pub max_payload_bytes: usize,
    /// Largest management request body (a base64 zip inside JSON).
    pub max_management_body_bytes: usize,
    /// Largest zip (Lambda: 50 MB).
    pub max_zip_bytes: u64,
    /// Largest unpacked package (Lambda: 250 MB).
    pub max_unpacked_bytes: u64,
    /// Most entries in a zip.
    pub max_zip_entries: usize,
    /// Open connections on the public listener at most; more wait in the backlog.
    pub max_connections: usize,
    /// Concurrent invocations of the account (tenant), shared by functions without reserved
    /// concurrency (the unreserved pool is this minus the sum of reservations).
    pub account_concurrency: u32,
    /// Invocations per second per function (0 = no limit); `hearth limits` overrides it.
    pub function_rate_per_sec: u32,
    /// Invocations per second of the account (0 = no limit).
    pub account_rate_per_sec: u32,
    /// How long the place phase retries an agent that has no capacity before answering 429.
    pub place_wait_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/hearth"),
            listen: ([127, 0, 0, 1], 8080).into(),
            admin_listen: ([127, 0, 0, 1], 9100).into(),
            public_url: String::new(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            log: "info".into(),
            shutdown_grace_secs: 30,
            runtimes: RuntimesConfig::default(),
            agent: AgentConfig::default(),
            limits: LimitsConfig::default(),
            tls: TlsConfig::default(),
            events: EventsConfig::default(),
            agents: Vec::new(),
            placement: PlacementConfig::default(),
            egress: EgressConfig::default(),
            control: ControlConfig::default(),
            router: RouterConfig::default(),
        }
    }
}

impl Default for RuntimesConfig {
    fn default() -> Self {
        RuntimesConfig {
            dir: PathBuf::from("/var/cache/hearth/runtimes"),
            prepare: vec!["python3.11".into()],
            python: PathBuf::from("/usr/bin/python3.11"),
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            idle_timeout_secs: 600,
            max_instances: 64,
            memory_capacity_mb: 16384,
            code_cache_bytes: 4 << 30,
            preload_max_bytes: 100 * 1024,
            log_max_bytes: 8 << 20,
            log_max_files: 32,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_prefix: "hearth".into(),
            sandbox_uid: 993,
            sandbox_gid: 990,
            pids_max: 1024,
            init_timeout_secs: 10,
            reuse_instances: true,
            listen: ([127, 0, 0, 1], 7070).into(),
            code_url: String::new(),
            code_fetch_timeout_secs: 60,
            stem_cells: 2,
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            workers: 8,
            lease_secs: 30,
            retry_base_ms: 60_000,
            throttle_base_ms: 1_000,
            throttle_max_ms: 300_000,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_payload_bytes: 6 * 1024 * 1024,
            max_management_body_bytes: 70 * 1024 * 1024,
            max_zip_bytes: 50 * 1024 * 1024,
            max_unpacked_bytes: 250 * 1024 * 1024,
            max_zip_entries: 20_000,
            max_connections: 10_000,
            account_concurrency: 1000,
            function_rate_per_sec: 0,
            account_rate_per_sec: 0,
            place_wait_ms: 100,
        }
    }
}

/// An `http://HOST:PORT` base URL without a path (agents and code sources speak plain HTTP
/// on internal ports).
pub fn valid_http_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(format!("{url:?} must be http://HOST:PORT"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!("{url:?} must not have a path or query"));
    }
    Ok(())
}

/// Every problem found in a configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigErrors(pub Vec<String>);

/// Environment variables that override config keys: (variable, key).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("HEARTH_DATA_DIR", "data_dir"),
    ("HEARTH_LISTEN", "listen"),
    ("HEARTH_ADMIN_LISTEN", "admin_listen"),
    ("HEARTH_PUBLIC_URL", "public_url"),
    ("HEARTH_REGION", "region"),
    ("HEARTH_ACCOUNT_ID", "account_id"),
    ("HEARTH_LOG", "log"),
    ("HEARTH_RUNTIMES_DIR", "runtimes.dir"),
    ("HEARTH_IDLE_TIMEOUT_SECS", "agent.idle_timeout_secs"),
    ("HEARTH_CGROUP_PREFIX", "agent.cgroup_prefix"),
    ("HEARTH_TLS_LISTEN", "tls.listen"),
];

impl Config {
    /// Parses a TOML config file, reporting every unknown key, type error and invalid value.
    pub fn from_toml(text: &str) -> Result<Config, ConfigErrors> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigErrors(vec![e.to_string()]))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("{}: {e}", path.display())]))?;
        Config::from_toml(&text)
    }

    /// Applies `HEARTH_*` environment overrides (see [`ENV_OVERRIDES`]).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        for (var, key) in ENV_OVERRIDES {
            if let Some(value) = env(var)
                && let Err(e) = self.set(key, &value)
            {
                errors.push(format!("{var}: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Sets one key from its string form (used by env overrides).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn parse<T: std::str::FromStr>(v: &str) -> Result<T, String>
        where
            T::Err: std::fmt::Display,
        {
            v.parse::<T>().map_err(|e| format!("{v:?}: {e}"))
        }
        match key {
            "data_dir" => self.data_dir = value.into(),
            "listen" => self.listen = parse(value)?,
            "admin_listen" => self.admin_listen = parse(value)?,
            "public_url" => self.public_url = value.into(),
            "region" => self.region = value.into(),
            "account_id" => self.account_id = value.into(),
            "log" => self.log = value.into(),
            "runtimes.dir" => self.runtimes.dir = value.into(),
            "agent.idle_timeout_secs" => self.agent.idle_timeout_secs = parse(value)?,
            "agent.cgroup_prefix" => self.agent.cgroup_prefix = value.into(),
            "tls.listen" => self.tls.listen = Some(parse(value)?),
            _ => return Err(format!("unknown key {key}")),
        }
        Ok(())
    }

    /// Checks every value; returns all problems at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut e = Vec::new();
        if self.data_dir.as_os_str().is_empty() {
            e.push("data_dir: must not be empty".to_string());
        }
        if !self.public_url.is_empty() && !valid_public_url(&self.public_url) {
            e.push(format!(
                "public_url: {:?} must be http(s)://HOST[:PORT] with no path",
                self.public_url
            ));
        }
        if self.region.is_empty()
            || !self
                .region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            e.push(format!(
                "region: {:?} is not a region name like us-east-1",
                self.region
            ));
        }
        if self.account_id.len() != 12 || !self.account_id.chars().all(|c| c.is_ascii_digit()) {
            e.push(format!(
                "account_id: {:?} must be 12 digits",
                self.account_id
            ));
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            e.push(format!("log: {err}"));
        }
        for rt in &self.runtimes.prepare {
            if !crate::runtimes::SUPPORTED.contains(&rt.as_str()) {
                e.push(format!(
                    "runtimes.prepare: unknown runtime {rt:?} (supported: {})",
                    crate::runtimes::SUPPORTED.join(", ")
                ));
            }
        }
        let a = &self.agent;
        if a.idle_timeout_secs == 0 {
            e.push("agent.idle_timeout_secs: must be at least 1".into());
        }
        if a.log_max_bytes < 4096 || a.log_max_files < 2 {
            e.push(
                "agent.log_max_bytes / log_max_files: need at least 4096 bytes and 2 files".into(),
            );
        }
        if a.memory_capacity_mb < 128 {
            e.push("agent.memory_capacity_mb: must be at least 128".into());
        }
        if a.max_instances == 0 {
            e.push("agent.max_instances: must be at least 1".into());
        }
        if a.cgroup_prefix.is_empty()
            || !a
                .cgroup_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            e.push(format!(
                "agent.cgroup_prefix: {:?} must be letters, digits, '-' or '_'",
                a.cgroup_prefix
            ));
        }
        if a.sandbox_uid == 0 || a.sandbox_gid == 0 {
            e.push("agent.sandbox_uid / sandbox_gid: must not be 0 (root)".into());
        }
        if !(16..=1_000_000).contains(&a.pids_max) {
            e.push("agent.pids_max: must be 16..=1000000".into());
        }
        if a.init_timeout_secs == 0 {
            e.push("agent.init_timeout_secs: must be at least 1".into());
        }
        if a.stem_cells > 64 {
            e.push("agent.stem_cells: must be 0..=64".into());
        }
        if a.code_fetch_timeout_secs == 0 {
            e.push("agent.code_fetch_timeout_secs: must be at least 1".into());
        }
        if !a.code_url.is_empty()
            && let Err(err) = valid_http_url(&a.code_url)
        {
            e.push(format!("agent.code_url: {err}"));
        }
        for (key, url) in [
            ("control.router_url", &self.control.router_url),
            ("router.control_url", &self.router.control_url),
        ] {
            if !url.is_empty()
                && let Err(err) = valid_http_url(url)
            {
                e.push(format!("{key}: {err}"));
            }
        }
        for url in &self.agents {
            if let Err(err) = valid_http_url(url) {
                e.push(format!("agents: {err}"));
            }
        }
        let p = &self.placement;
        if p.state_poll_ms < 10 || p.down_backoff_ms < 10 || p.connect_timeout_ms < 10 {
            e.push(
                "placement.state_poll_ms / down_backoff_ms / connect_timeout_ms: must be at least 10"
                    .into(),
            );
        }
        if p.capacity_wait_ms > 60_000 {
            e.push("placement.capacity_wait_ms: must be at most 60000".into());
        }
        let l = &self.limits;
        if l.max_payload_bytes == 0 || l.max_payload_bytes > 64 * 1024 * 1024 {
            e.push("limits.max_payload_bytes: must be 1..=64 MiB".into());
        }
        if l.max_zip_bytes == 0 || l.max_unpacked_bytes < l.max_zip_bytes {
            e.push("limits.max_zip_bytes / max_unpacked_bytes: need 0 < max_zip_bytes <= max_unpacked_bytes".into());
        }
        if (l.max_management_body_bytes as u64) < l.max_zip_bytes {
            e.push(
                "limits.max_management_body_bytes: must hold a base64 zip of max_zip_bytes".into(),
            );
        }
        if l.max_zip_entries == 0 {
            e.push("limits.max_zip_entries: must be at least 1".into());
        }
        if !(1..=1_000_000).contains(&l.max_connections) {
            e.push("limits.max_connections: must be 1..=1000000".into());
        }
        if !(1..=1_000_000).contains(&l.account_concurrency) {
            e.push("limits.account_concurrency: must be 1..=1000000".into());
        }
        if l.function_rate_per_sec > 1_000_000 || l.account_rate_per_sec > 1_000_000 {
            e.push(
                "limits.function_rate_per_sec / account_rate_per_sec: must be 0..=1000000".into(),
            );
        }
        if l.place_wait_ms > 60_000 {
            e.push("limits.place_wait_ms: must be 0..=60000".into());
        }
        let t = &self.tls;
        match (t.dev, t.cert.is_some(), t.key.is_some()) {
            (true, false, false) | (false, true, true) => {}
            (false, false, false) if t.listen.is_none() => {}
            (true, _, _) => e.push("tls.dev: set either dev or cert and key, not both".into()),
            _ => e.push("tls.cert / tls.key: both are needed (or tls.dev = true)".into()),
        }
        let ev = &self.events;
        if !(1..=1024).contains(&ev.workers) {
            e.push("events.workers: must be 1..=1024".into());
        }
        if !(1..=3600).contains(&ev.lease_secs) {
            e.push("events.lease_secs: must be 1..=3600".into());
        }
        if !(1..=3_600_000).contains(&ev.retry_base_ms) {
            e.push("events.retry_base_ms: must be 1..=3600000".into());
        }
        if ev.throttle_base_ms == 0 || ev.throttle_max_ms < ev.throttle_base_ms {
            e.push("events.throttle_base_ms / throttle_max_ms: need 0 < base <= max".into());
        }
        self.egress.validate(&mut e);
        if e.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(e))
        }
    }

    /// Zip limits derived from [`LimitsConfig`].
    pub fn zip_limits(&self) -> crate::codestore::ZipLimits {
        crate::codestore::ZipLimits {
            max_zipped: self.limits.max_zip_bytes,
            max_unpacked: self.limits.max_unpacked_bytes,
            max_entries: self.limits.max_zip_entries,
        }
    }
}

/// `http(s)://HOST[:PORT]`: a plain host (name, IPv4 or `[IPv6]`), no path, query or userinfo.
pub fn valid_public_url(url: &str) -> bool {
    let host = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_checked() {
        assert!(valid_public_url("http://fn.example.com:8080"));
        assert!(valid_public_url("https://[::1]:8443"));
        for bad in [
            "fn.example.com",
            "http://",
            "http://h/path",
            "ftp://h",
            "http://u@h",
        ] {
            assert!(!valid_public_url(bad), "{bad}");
        }
        let err = Config::from_toml("public_url = \"http://h/x\"").unwrap_err();
        assert!(err.to_string().contains("public_url"), "{err}");
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn reports_every_error() {
        let text = "account_id = \"12\"\nregion = \"no way\"\n[agent]\nidle_timeout_secs = 0\nsandbox_uid = 0\n";
        let err = Config::from_toml(text).unwrap_err();
        assert_eq!(err.0.len(), 4, "{err}");
    }

    #[test]
    fn agent_urls_and_placement_are_checked() {
        let ok =
            "agents = [\"http://127.0.0.1:7070\"]\n[agent]\ncode_url = \"http://127.0.0.1:8080\"\n";
        assert_eq!(Config::from_toml(ok).unwrap().agents.len(), 1);
        let bad = "agents = [\"ftp://x\", \"http://a:1/p\"]\n[placement]\nstate_poll_ms = 1\n[agent]\ncode_url = \"x\"\n";
        assert_eq!(Config::from_toml(bad).unwrap_err().0.len(), 4);
    }

    #[test]
    fn egress_rules_are_checked() {
        let text =
            "[egress.allow]\n\"000000000000\" = [\"api.example.com:443\", \"10.0.0.0/8:*\"]\n";
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.egress.allow["000000000000"].len(), 2);
        let text = "[egress]\nmax_header_bytes = 10\n[egress.allow]\n\"12\" = []\n\"000000000000\" = [\"ok.com:1\", \"bad\"]\n";
        let err = Config::from_toml(text).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        assert!(err.to_string().contains("rule 1 (\"bad\")"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("listne = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn tls_needs_a_certificate_source() {
        let err = Config::from_toml("[tls]\nlisten = \"127.0.0.1:0\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.cert"), "{err}");
        let err = Config::from_toml("[tls]\ncert = \"/c.pem\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.key"), "{err}");
        Config::from_toml("[tls]\nlisten = \"127.0.0.1:0\"\ndev = true\n").unwrap();
        Config::from_toml("[tls]\nlisten = \"[::1]:0\"\ncert = \"/c\"\nkey = \"/k\"\n").unwrap();
    }

    #[test]
    fn env_overrides() {
        let mut c = Config::default();
        c.apply_env(|k| (k == "HEARTH_LISTEN").then(|| "127.0.0.1:0".to_string()))
            .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert!(
            c.apply_env(|k| (k == "HEARTH_LISTEN").then(|| "x".to_string()))
                .is_err()
        );
    }
}
