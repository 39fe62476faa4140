//! `hearth loadgen …` arguments (the bench scripts depend on these names).

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum LoadgenCommand {
    /// Load any HTTP URL.
    Http {
        #[arg(long)]
        url: String,
        /// Default GET, or POST when --body is given.
        #[arg(long)]
        method: Option<String>,
        /// Request body, or @FILE.
        #[arg(long)]
        body: Option<String>,
        /// Request header 'Name: value' (repeatable).
        #[arg(short = 'H', long = "header", value_name = "K: V")]
        headers: Vec<String>,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Invoke one function: POST URL/2015-03-31/functions/NAME/invocations.
    Invoke {
        /// hearth's public API.
        #[arg(long, env = "HEARTH_ENDPOINT", default_value = "http://127.0.0.1:8080")]
        endpoint: String,
        #[arg(long)]
        function: String,
        /// JSON payload, or @FILE (default `{}`).
        #[arg(long)]
        payload: Option<String>,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Replay an Azure Functions trace (invocations, durations, memory CSVs).
    Trace(TraceArgs),
}

/// Exactly one of `--rate` (open loop) and `--concurrency` (closed loop).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct LoadMode {
    /// Open loop: requests per second, scheduled by the clock.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop: concurrent workers, each one request at a time.
    #[arg(long)]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub mode: LoadMode,
    /// Measured seconds (after the warmup).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Open loop: connections (the most requests in flight; more wait in a queue, and the
    /// wait counts). Closed loop: one per worker.
    #[arg(long)]
    pub connections: Option<usize>,
    /// HTTP/2: with prior knowledge (h2c) for http://, by ALPN for https://.
    #[arg(long, conflicts_with = "http3")]
    pub http2: bool,
    /// HTTP/3 over QUIC (https:// only): the workers of each thread share one QUIC
    /// connection, a stream per request.
    #[arg(long)]
    pub http3: bool,
    /// https://: trust the certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// https://: accept any server certificate (a dev certificate).
    #[arg(long, conflicts_with = "ca_cert")]
    pub insecure: bool,
    /// Seconds per request (connect, and send to the end of the response).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Directory with the invocations, durations and memory CSV files.
    #[arg(long)]
    pub traces: PathBuf,
    /// hearth's public API.
    #[arg(long)]
    pub endpoint: String,
    /// hearth's admin address (for /metrics).
    #[arg(long)]
    pub admin: String,
    /// The function code: a native bootstrap (needed with --create).
    #[arg(long)]
    pub bootstrap: Option<PathBuf>,
    /// Replay the first N functions that are invoked in the chosen minutes.
    #[arg(long)]
    pub functions: Option<usize>,
    /// Replay the first M minutes (default: all).
    #[arg(long)]
    pub minutes: Option<usize>,
    /// Time compression: arrivals and durations scaled by 1/F.
    #[arg(long, default_value_t = 1.0)]
    pub compress: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Create (or update) the functions through the management API first.
    #[arg(long)]
    pub create: bool,
    /// Function name prefix.
    #[arg(long, default_value = "trace-")]
    pub prefix: String,
    /// Most invocations in flight (connections); more wait in a queue.
    #[arg(long, default_value_t = 64)]
    pub concurrency_limit: usize,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long)]
    pub quiet: bool,
}
