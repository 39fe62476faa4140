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
    pub egress: EgressConfig,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/hearth"),
            listen: ([127, 0, 0, 1], 8080).into(),
            admin_listen: ([127, 0, 0, 1], 9100).into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            log: "info".into(),
            shutdown_grace_secs: 30,
            runtimes: RuntimesConfig::default(),
            agent: AgentConfig::default(),
            limits: LimitsConfig::default(),
            egress: EgressConfig::default(),
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
        }
    }
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
    ("HEARTH_REGION", "region"),
    ("HEARTH_ACCOUNT_ID", "account_id"),
    ("HEARTH_LOG", "log"),
    ("HEARTH_RUNTIMES_DIR", "runtimes.dir"),
    ("HEARTH_IDLE_TIMEOUT_SECS", "agent.idle_timeout_secs"),
    ("HEARTH_CGROUP_PREFIX", "agent.cgroup_prefix"),
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
            "region" => self.region = value.into(),
            "account_id" => self.account_id = value.into(),
            "log" => self.log = value.into(),
            "runtimes.dir" => self.runtimes.dir = value.into(),
            "agent.idle_timeout_secs" => self.agent.idle_timeout_secs = parse(value)?,
            "agent.cgroup_prefix" => self.agent.cgroup_prefix = value.into(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
