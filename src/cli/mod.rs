//! Command line: `serve`, `check-config`, `runtimes`, the client commands `fn …` and
//! `invoke`, which talk only to the public API, and the load-test harness `loadgen`.

pub mod client;
mod commands;
pub mod loadgen;
mod resources;
pub mod schedule;
pub mod trigger;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub use commands::run_client;
pub use loadgen::LoadgenCommand;

#[derive(Debug, Parser)]
#[command(
    name = "hearth",
    version,
    about = "A self-hosted serverless platform that speaks the AWS Lambda APIs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run router, agent and control in one process on embedded defaults.
    Serve(ServeArgs),
    /// Run a node agent alone (router-to-agent protocol over h2c); `serve --agent URL`
    /// places invokes on it.
    Agent(AgentArgs),
    /// Run the control service alone (management API, workflows, code store, delivery
    /// workers); routers follow it with `hearth router --control URL`.
    Control(ControlArgs),
    /// Run an invoke router alone, following a control service and placing invokes on agents.
    Router(RouterArgs),
    /// Check a config file and report every error.
    CheckConfig { path: PathBuf },
    /// Prepare language runtimes.
    Runtimes {
        #[command(subcommand)]
        command: RuntimesCommand,
    },
    /// Manage functions (Lambda management API).
    Fn {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Return as soon as a create or update is accepted, without waiting until the
        /// function is Active / the update Successful.
        #[arg(long, global = true)]
        no_wait: bool,
        #[command(subcommand)]
        command: FnCommand,
    },
    /// Operator views on the admin port.
    Admin {
        /// hearth's admin endpoint.
        #[arg(
            long,
            env = "HEARTH_ADMIN_ENDPOINT",
            default_value = "http://127.0.0.1:9100",
            global = true
        )]
        admin: String,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Invoke a function synchronously and print its result.
    Invoke {
        #[command(flatten)]
        endpoint: Endpoint,
        /// NAME or NAME:QUALIFIER (or an ARN).
        function: String,
        /// JSON payload, or @FILE to read it from a file.
        #[arg(long)]
        payload: Option<String>,
        /// Print the last 4 KB of the invocation's log to stderr.
        #[arg(long)]
        log_tail: bool,
    },
    /// hearth's per-function invocation rate limits (Lambda has no API for them).
    Limits {
        #[command(flatten)]
        endpoint: Endpoint,
        #[command(subcommand)]
        command: LimitsCommand,
    },
    /// Destination queues (`arn:aws:sqs:REGION:ACCOUNT:NAME` maps to queue NAME).
    Queue {
        #[command(flatten)]
        endpoint: Endpoint,
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Load-test harness: open/closed loop HTTP load, Invoke load, trace replay.
    Loadgen {
        #[command(subcommand)]
        command: LoadgenCommand,
    },
    /// Timer triggers: create, list, get, delete.
    Trigger {
        #[command(flatten)]
        endpoint: Endpoint,
        #[command(subcommand)]
        command: trigger::TriggerCommand,
    },
    /// EventBridge schedule expressions: print the next fire times.
    Schedule {
        #[command(subcommand)]
        command: schedule::ScheduleCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Print a queue's messages, oldest first, without consuming them: one JSON object per
    /// line `{"Seq","PublishedMs","Body"}`; pass the last Seq as --after to read on.
    Read {
        name: String,
        /// Most messages to print (1–1000).
        #[arg(long, default_value_t = 100)]
        max: usize,
        /// Print only messages with a sequence above this.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
}

#[derive(Debug, Args)]
pub struct Endpoint {
    /// hearth's public API.
    #[arg(
        long,
        env = "HEARTH_ENDPOINT",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub endpoint: String,
}

/// The flags every long-running component (`serve`, `agent`, `control`, `router`) has.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// TOML config file (none is read unless given).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (config `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Admin address (ADDR:PORT; /healthz, /readyz, /metrics).
    #[arg(long)]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// Written once serving: JSON with the bound addresses (`listen`, `admin_listen`, and
    /// `tls_listen` when TLS is on) and `pid`, so port 0 works.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Public API address (ADDR:PORT; port 0 picks one).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// A remote node agent (`http://HOST:PORT`, repeatable): place invokes on these instead
    /// of running an agent in process (config `agents`).
    #[arg(long = "agent", value_name = "URL")]
    pub agents: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Set the function's invocation rate limit (per second), overriding
    /// `limits.function_rate_per_sec`.
    Put {
        function: String,
        #[arg(long)]
        rate: u32,
    },
    /// Show the function's override (`{}` when unset).
    Get { function: String },
    /// Remove the override (the config default applies again).
    Delete { function: String },
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Router-to-agent address (ADDR:PORT; port 0 picks one; config `agent.listen`).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Where code packages come from: `GET {URL}/hearth/v1/code/{sha}.zip` (a router's
    /// public port; config `agent.code_url`).
    #[arg(long)]
    pub code_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Control listener (ADDR:PORT; port 0 picks one; config `control.listen`).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// A node agent (`http://HOST:PORT`, repeatable) the workflow steps reach (config `agents`).
    #[arg(long = "agent", value_name = "URL")]
    pub agents: Vec<String>,
    /// A router's public URL the delivery workers invoke through (config `control.router_url`).
    #[arg(long = "router", value_name = "URL")]
    pub router_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RouterArgs {
    #[command(flatten)]
    pub process: ProcessArgs,
    /// Public API address (ADDR:PORT; port 0 picks one).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The control service (`http://HOST:PORT`; config `router.control_url`).
    #[arg(long = "control", value_name = "URL")]
    pub control_url: Option<String>,
    /// A node agent (`http://HOST:PORT`, repeatable) to place invokes on (config `agents`).
    #[arg(long = "agent", value_name = "URL")]
    pub agents: Vec<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The TLS and HTTP/3 flags of `serve` and `router`.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// TLS (h2/http1.1) on this TCP address and HTTP/3 on the same UDP port.
    #[arg(long)]
    pub tls_listen: Option<std::net::SocketAddr>,
    /// Use a self-signed certificate made once in the data directory (`tls.dev`).
    #[arg(long)]
    pub dev_tls: bool,
}

impl TlsArgs {
    /// Applies the flags over the config.
    pub fn apply(&self, cfg: &mut crate::config::Config) {
        if let Some(l) = self.tls_listen {
            cfg.tls.listen = Some(l);
        }
        if self.dev_tls {
            (cfg.tls.dev, cfg.tls.cert, cfg.tls.key) = (true, None, None);
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List workflows with their steps, attempts, timings and errors.
    Workflows {
        #[arg(long)]
        function: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
    /// Retry a failed workflow from its failed step.
    Retry { id: String },
}

#[derive(Debug, Subcommand)]
pub enum RuntimesCommand {
    /// Install a runtime into the runtimes directory.
    Install {
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List supported runtimes.
    List,
}

#[derive(Debug, Subcommand)]
pub enum FnCommand {
    /// Create a function from a directory or a .zip.
    Create {
        name: String,
        #[arg(long)]
        runtime: String,
        #[arg(long)]
        handler: Option<String>,
        /// A directory (zipped for you) or a .zip file.
        #[arg(long)]
        code: PathBuf,
        /// Memory in MB (128–10240).
        #[arg(long)]
        memory: Option<u32>,
        /// Timeout in seconds (1–900).
        #[arg(long)]
        timeout: Option<u32>,
        /// Environment variable, K=V (repeatable).
        #[arg(long = "env", value_name = "K=V")]
        env: Vec<String>,
        /// Publish version 1 at once.
        #[arg(long)]
        publish: bool,
        /// Network access through the tenant's egress proxy (sets VpcConfig).
        #[arg(long)]
        egress: bool,
    },
    /// List functions.
    List,
    /// Show a function's configuration and code location.
    Get {
        name: String,
        #[arg(long)]
        qualifier: Option<String>,
    },
    /// Replace a function's code.
    UpdateCode {
        name: String,
        #[arg(long)]
        code: PathBuf,
        #[arg(long)]
        publish: bool,
    },
    /// Change memory, timeout, handler or environment.
    UpdateConfig {
        name: String,
        #[arg(long)]
        memory: Option<u32>,
        #[arg(long)]
        timeout: Option<u32>,
        #[arg(long)]
        handler: Option<String>,
        /// Replaces the whole environment, K=V (repeatable).
        #[arg(long = "env", value_name = "K=V")]
        env: Vec<String>,
        /// Turn egress through the tenant's proxy on (VpcConfig with a subnet).
        #[arg(long, conflicts_with = "no_egress")]
        egress: bool,
        /// Turn egress off (an empty VpcConfig).
        #[arg(long)]
        no_egress: bool,
    },
    /// Publish $LATEST as a new version.
    Publish {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Print a function's logs (the last --tail bytes), and with --follow keep printing.
    Logs {
        name: String,
        #[arg(long)]
        follow: bool,
        /// Bytes of recent output to start with.
        #[arg(long, default_value_t = 16384)]
        tail: usize,
    },
    /// Delete a function (or one version with --qualifier).
    Delete {
        name: String,
        #[arg(long)]
        qualifier: Option<String>,
    },
    /// Aliases: create, get, update, delete, list.
    Alias {
        #[command(subcommand)]
        command: resources::AliasCommand,
    },
    /// Reserved concurrency: put, get, delete.
    Concurrency {
        #[command(subcommand)]
        command: resources::ConcurrencyCommand,
    },
    /// Provisioned concurrency: put, get, delete, list.
    Provisioned {
        #[command(subcommand)]
        command: resources::ProvisionedCommand,
    },
    /// Function URLs: create, get, delete.
    Url {
        #[command(subcommand)]
        command: resources::UrlCommand,
    },
    /// Resource policy: add, remove, policy.
    Permission {
        #[command(subcommand)]
        command: resources::PermissionCommand,
    },
    /// Tag a function: K=V (repeatable).
    Tag {
        function: String,
        #[arg(value_name = "K=V", required = true)]
        tags: Vec<String>,
    },
    /// Remove tags from a function by key.
    Untag {
        function: String,
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
    /// List a function's tags.
    Tags { function: String },
}
