//! One instance: a sandbox running one function version, its Runtime API and its log.
//! It runs one invocation at a time.

use super::logs::{InstanceLog, TAIL};
use super::runtime_api::{self, Pending, RuntimeChannel, RuntimeReply};
use crate::api::VersionDescriptor;
use crate::sandbox::{ExitReason, Sandbox};
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One invocation as the instance runs it.
pub struct Call {
    pub request_id: String,
    pub payload: Bytes,
    pub invoked_arn: String,
    pub client_context: Option<String>,
    pub trace_id: String,
}

/// What an invocation produced.
pub struct CallResult {
    pub body: Bytes,
    /// `Some("Unhandled")` for a function error.
    pub function_error: Option<&'static str>,
    /// The last 4 KB of this invocation's log.
    pub log_tail: Vec<u8>,
    /// The instance must not be reused (timeout, crash, init failure).
    pub reset: bool,
    /// Platform-detected error kind, for metrics.
    pub error_kind: Option<&'static str>,
    /// When the runtime took the event (`None` if it never did).
    pub delivered: Option<Instant>,
}

/// A live instance.
pub struct Instance {
    pub id: String,
    pub descriptor: Arc<VersionDescriptor>,
    pub sandbox: Sandbox,
    pub created: Instant,
    chan: Arc<RuntimeChannel>,
    log: Arc<InstanceLog>,
    /// The cgroup's peak memory file, opened once (read with `pread` per invocation).
    memory_usage: Option<std::fs::File>,
    tasks: Vec<JoinHandle<()>>,
    first_call: std::sync::atomic::AtomicBool,
    /// Keeps the package pinned in the node cache while the instance lives.
    _code: crate::codestore::lru::Pinned,
}

impl Drop for Instance {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

enum Phase {
    Delivered(Instant),
    Replied(RuntimeReply),
    Exited(ExitReason),
    InitError(Bytes, Option<String>),
    TimedOut,
}

impl Instance {
    /// Wraps a freshly created sandbox: starts its Runtime API server and log follower.
    pub fn start(
        descriptor: Arc<VersionDescriptor>,
        sandbox: Sandbox,
        log: Arc<InstanceLog>,
        max_response: usize,
        memory_usage_file: PathBuf,
        code: crate::codestore::lru::Pinned,
    ) -> std::io::Result<Arc<Instance>> {
        let version = descriptor.version.clone();
        let log_for_start = log.clone();
        let on_deliver = Box::new(move |id: &str| {
            log_for_start.append(format!("START RequestId: {id} Version: {version}\n").as_bytes());
        });
        let chan = RuntimeChannel::new(max_response, on_deliver);
        let listener = tokio::net::TcpListener::from_std(sandbox.runtime_api.try_clone()?)?;
        let tasks = vec![
            tokio::spawn(runtime_api::serve(listener, chan.clone())),
            tokio::spawn(log.clone().follow()),
        ];
        Ok(Arc::new(Instance {
            id: sandbox.id.clone(),
            descriptor,
            created: Instant::now(),
            sandbox,
            chan,
            log,
            memory_usage: std::fs::File::open(&memory_usage_file).ok(),
            tasks,
            first_call: std::sync::atomic::AtomicBool::new(true),
            _code: code,
        }))
    }

    /// Whether the sandbox is still running.
    pub fn alive(&self) -> bool {
        self.sandbox.exited.borrow().is_none()
    }

    /// Runs one invocation to its end: response, function error, timeout or crash.
    pub async fn call(&self, call: Call, init_timeout: Duration) -> CallResult {
        let timeout = Duration::from_secs(self.descriptor.timeout_secs as u64);
        let (dtx, drx) = oneshot::channel();
        let (rtx, mut rrx) = oneshot::channel();
        let request_id = call.request_id.clone();
        let pending = Pending {
            request_id: call.request_id,
            payload: call.payload,
            invoked_arn: call.invoked_arn,
            client_context: call.client_context,
            trace_id: call.trace_id,
            timeout,
            delivered: dtx,
            result: rtx,
        };
        let offset = self.log.offset();
        if self.chan.next_tx.send(pending).await.is_err() {
            return self.platform_error(
                &request_id,
                offset,
                None,
                "Runtime.ExitError",
                "Runtime exited",
                "exit",
            );
        }
        let started = match self.wait_delivery(drx, init_timeout).await {
            Phase::Delivered(t) => t,
            other => return self.conclude(other, &request_id, offset, None, timeout),
        };
        let phase = self.wait_reply(&mut rrx, started + timeout).await;
        self.conclude(phase, &request_id, offset, Some(started), timeout)
    }

    async fn wait_delivery(
        &self,
        drx: oneshot::Receiver<Instant>,
        init_timeout: Duration,
    ) -> Phase {
        let mut exited = self.sandbox.exited.clone();
        let mut init_err = self.chan.init_error.subscribe();
        tokio::select! {
            t = drx => match t { Ok(t) => Phase::Delivered(t), Err(_) => Phase::TimedOut },
            r = exited.wait_for(Option::is_some) => self.exit_phase(r.ok().and_then(|r| *r)),
            e = init_err.wait_for(Option::is_some) => match e.ok().and_then(|e| e.clone()) {
                Some((b, t)) => Phase::InitError(b, t),
                None => Phase::TimedOut,
            },
            _ = tokio::time::sleep(init_timeout) => Phase::TimedOut,
        }
    }

    async fn wait_reply(
        &self,
        rrx: &mut oneshot::Receiver<RuntimeReply>,
        deadline: Instant,
    ) -> Phase {
        let mut exited = self.sandbox.exited.clone();
        tokio::select! {
            r = rrx => match r { Ok(r) => Phase::Replied(r), Err(_) => Phase::TimedOut },
            r = exited.wait_for(Option::is_some) => self.exit_phase(r.ok().and_then(|r| *r)),
            _ = tokio::time::sleep_until(deadline.into()) => Phase::TimedOut,
        }
    }

    fn exit_phase(&self, reason: Option<ExitReason>) -> Phase {
        if let Some((b, t)) = self.chan.init_error.borrow().clone() {
            return Phase::InitError(b, t);
        }
        Phase::Exited(reason.unwrap_or(ExitReason::Signaled(9)))
    }

    fn conclude(
        &self,
        phase: Phase,
        id: &str,
        offset: u64,
        started: Option<Instant>,
        timeout: Duration,
    ) -> CallResult {
        // The sandbox hit its memory limit during this invocation (or before it): on cgroup v1
        // the kernel kills single processes, so the counter, not the exit, tells. A runtime
        // that died, hung or failed to start answers Lambda's Runtime.OutOfMemory; one that
        // answered anyway keeps its answer, but the instance is torn down after it all the
        // same (it may have lost a child, a cache or its memory headroom).
        let oom = self.sandbox.oom_kills() > 0;
        if oom && !matches!(phase, Phase::Replied(_)) {
            let msg = format!("RequestId: {id} Error: Runtime exited with error: signal: killed");
            return self.platform_error(id, offset, started, "Runtime.OutOfMemory", &msg, "oom");
        }
        let mut result = self.conclude_phase(phase, id, offset, started, timeout);
        result.reset |= oom;
        result
    }

    fn conclude_phase(
        &self,
        phase: Phase,
        id: &str,
        offset: u64,
        started: Option<Instant>,
        timeout: Duration,
    ) -> CallResult {
        match phase {
            Phase::Replied(RuntimeReply::Response(body)) => {
                self.finish(id, offset, started, body, None, false, None)
            }
            Phase::Replied(RuntimeReply::Error { body, error_type }) => {
                let body = error_body(body, error_type.as_deref());
                self.finish(id, offset, started, body, Some("Unhandled"), false, None)
            }
            Phase::Replied(RuntimeReply::TooLarge) => {
                let msg =
                    "Response payload size exceeded maximum allowed payload size (6291556 bytes).";
                self.platform_error(
                    id,
                    offset,
                    started,
                    "Function.ResponseSizeTooLarge",
                    msg,
                    "response_too_large",
                )
            }
            Phase::InitError(body, error_type) => {
                let body = error_body(body, error_type.as_deref());
                self.finish(
                    id,
                    offset,
                    started,
                    body,
                    Some("Unhandled"),
                    true,
                    Some("init_error"),
                )
            }
            Phase::Exited(reason) => {
                let msg = format!("RequestId: {id} Error: Runtime exited with error: {reason}");
                self.platform_error(id, offset, started, "Runtime.ExitError", &msg, "exit")
            }
            Phase::TimedOut | Phase::Delivered(_) => {
                let secs = timeout.as_secs_f64();
                self.log
                    .append(format!("{id} Task timed out after {secs:.2} seconds\n").as_bytes());
                let msg = format!("RequestId: {id} Error: Task timed out after {secs:.2} seconds");
                self.platform_error(id, offset, started, "Sandbox.Timedout", &msg, "timeout")
            }
        }
    }

    fn platform_error(
        &self,
        id: &str,
        offset: u64,
        started: Option<Instant>,
        error_type: &str,
        msg: &str,
        kind: &'static str,
    ) -> CallResult {
        let body = serde_json::json!({ "errorType": error_type, "errorMessage": msg }).to_string();
        self.finish(
            id,
            offset,
            started,
            Bytes::from(body),
            Some("Unhandled"),
            true,
            Some(kind),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        id: &str,
        offset: u64,
        started: Option<Instant>,
        body: Bytes,
        function_error: Option<&'static str>,
        reset: bool,
        error_kind: Option<&'static str>,
    ) -> CallResult {
        self.log.pump();
        self.write_report(id, started);
        CallResult {
            body,
            function_error,
            log_tail: self.log.tail_since(offset),
            reset,
            error_kind,
            delivered: started,
        }
    }

    /// Peak memory of the instance's cgroup, in MB (0 when unknown).
    fn max_memory_used_mb(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        let Some(f) = &self.memory_usage else {
            return 0;
        };
        let mut buf = [0u8; 32];
        let n = f.read_at(&mut buf, 0).unwrap_or(0);
        let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
        text.trim()
            .parse::<u64>()
            .map(|b| b / (1024 * 1024))
            .unwrap_or(0)
    }

    fn write_report(&self, id: &str, started: Option<Instant>) {
        let ms = started
            .map(|s| s.elapsed().as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        let billed = ms.ceil().max(1.0) as u64;
        let mem = self.descriptor.memory_mb;
        let used = self.max_memory_used_mb();
        let mut line = format!(
            "END RequestId: {id}\nREPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {mem} MB\tMax Memory Used: {used} MB"
        );
        if self
            .first_call
            .swap(false, std::sync::atomic::Ordering::Relaxed)
            && let Some(first) = *self.chan.first_next.borrow()
        {
            let init = first.duration_since(self.created).as_secs_f64() * 1000.0;
            line.push_str(&format!("\tInit Duration: {init:.2} ms"));
        }
        line.push('\n');
        self.log.append(line.as_bytes());
    }

    /// How long the runtime took from sandbox creation to its first `/next`.
    pub fn init_duration(&self) -> Option<Duration> {
        self.chan
            .first_next
            .borrow()
            .map(|t| t.duration_since(self.created))
    }
}

/// A runtime's error post becomes the invoke's body: its JSON as sent, or a Lambda-shaped
/// error built from the error-type header when the body is not JSON.
fn error_body(body: Bytes, error_type: Option<&str>) -> Bytes {
    if serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
        return body;
    }
    let msg: String = String::from_utf8_lossy(&body).chars().take(TAIL).collect();
    let json = serde_json::json!({
        "errorType": error_type.unwrap_or("Runtime.Unknown"),
        "errorMessage": msg,
    });
    Bytes::from(json.to_string())
}
