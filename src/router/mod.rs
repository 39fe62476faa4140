//! Invoke router (data plane). Phases, in order: accept ([`http`]), route, authenticate,
//! resolve ([`resolve`]), admit ([`limits`]), place, forward, respond-and-log (always runs).
//! Each phase's time goes to `hearth_router_phase_seconds{phase}`.

pub mod http;
pub mod invoke;
pub mod limits;
pub mod place;
pub mod quic;
pub mod resolve;
pub mod server;
pub mod tls;
pub mod url;

use crate::agent::{AgentClient, InvokeRequest, InvokeResponse};
use crate::api::ApiError;
use crate::control::client::PublicRequest;
use crate::control::{Action, ControlClient, is_management_path};
use crate::metrics::{FunctionLabel, FunctionOutcomeLabel, Metrics, OutcomeLabel, PhaseLabel};
use ::http::{HeaderValue, Request, Response, StatusCode};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use invoke::InvocationType;
use limits::{Limits, Permit};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Resp = Response<Full<Bytes>>;

/// The request body every listener hands the router (h1/h2 `Incoming`, h3 streams), boxed
/// once at the listener so the router is body-agnostic.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Boxes a hyper (h1/h2) request body into [`Body`].
pub fn boxed(req: Request<hyper::body::Incoming>) -> Request<Body> {
    req.map(|b| b.map_err(BoxError::from).boxed_unsync())
}

/// Bytes of an oversized body read and dropped before answering 413.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Where a request goes (the route phase).
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Invoke(&'a str),
    Code(&'a str),
    Logs(&'a str),
    QueueRead(&'a str),
    Url(url::UrlPath<'a>),
    Limits(&'a str),
    Management,
    Unknown,
}

/// How much body a request on one of control's paths may carry.
fn control_body_limit(route: &Route<'_>, management: usize) -> usize {
    match route {
        Route::Limits(_) => 64 * 1024,
        Route::Management => management,
        _ => 0,
    }
}

fn route<'a>(method: &::http::Method, path: &'a str) -> Route<'a> {
    if let Some(name) = invoke::invoke_path(path).filter(|_| method == ::http::Method::POST) {
        Route::Invoke(name)
    } else if let Some(sha) = path
        .strip_prefix("/hearth/v1/code/")
        .and_then(|s| s.strip_suffix(".zip"))
    {
        Route::Code(sha)
    } else if let Some(name) = path
        .strip_prefix("/hearth/v1/functions/")
        .and_then(|s| s.strip_suffix("/logs"))
        .filter(|_| method == ::http::Method::GET)
    {
        Route::Logs(name)
    } else if let Some(name) =
        crate::events::read::read_path(path).filter(|_| method == ::http::Method::GET)
    {
        Route::QueueRead(name)
    } else if let Some(p) = url::url_path(path) {
        Route::Url(p)
    } else if let Some(name) = path
        .strip_prefix("/hearth/v1/functions/")
        .and_then(|s| s.strip_suffix("/limits"))
    {
        Route::Limits(name)
    } else if is_management_path(path) {
        Route::Management
    } else {
        Route::Unknown
    }
}

/// The router.
pub struct Router {
    control: Arc<dyn ControlClient>,
    agent: Arc<dyn AgentClient>,
    resolver: Arc<resolve::Resolver>,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    place_wait: Duration,
    max_payload: usize,
    max_management_body: usize,
    logs_dir: std::path::PathBuf,
    /// Base of absolute URLs handed out: `public_url`, else set from the bound address.
    public_base: std::sync::OnceLock<String>,
}

impl Router {
    /// A router over `control`, starting its metadata cache at change-feed revision `rev`;
    /// `id` names it in route acknowledgements.
    pub fn new(
        control: Arc<dyn ControlClient>,
        agent: Arc<dyn AgentClient>,
        metrics: Arc<Metrics>,
        cfg: &crate::config::Config,
        rev: u64,
        id: String,
    ) -> Arc<Router> {
        Arc::new(Router {
            resolver: Arc::new(resolve::Resolver::new(
                control.clone(),
                metrics.clone(),
                rev,
                id,
            )),
            limits: Limits::new(&cfg.limits, metrics.clone()),
            control,
            agent,
            metrics,
            place_wait: Duration::from_millis(cfg.limits.place_wait_ms),
            max_payload: cfg.limits.max_payload_bytes,
            max_management_body: cfg.limits.max_management_body_bytes,
            logs_dir: cfg.data_dir.join("logs"),
            public_base: match cfg.public_url.trim_end_matches('/') {
                "" => std::sync::OnceLock::new(),
                url => url.to_string().into(),
            },
        })
    }

    /// Tells the router its bound public address; absolute URLs use `SCHEME://ADDR` (https on
    /// the TLS port when TLS is on) unless the `public_url` config key is set.
    pub fn bound(&self, scheme: &str, addr: std::net::SocketAddr) {
        let _ = self.public_base.set(format!("{scheme}://{addr}"));
    }

    fn public_base(&self) -> &str {
        self.public_base
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1")
    }

    /// Options for serving the public listener: the connection cap and accept-phase metrics.
    pub fn serve_options(&self, max_connections: usize) -> http::ServeOptions {
        http::ServeOptions {
            max_connections: Some(max_connections),
            accept_phase: Some(
                self.metrics
                    .router
                    .phases
                    .get_or_create(&PhaseLabel { phase: "accept" })
                    .clone(),
            ),
            connections: Some(self.metrics.router.connections.clone()),
        }
    }

    /// Follows the control service's change feed (cache flushes and acknowledgements) until
    /// `shutdown` flips to true.
    pub fn follow_changes(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + use<> {
        self.resolver.clone().follow(shutdown)
    }

    /// `None` while the change feed reaches the control service, else why not (`/readyz`).
    pub fn control_unreachable(&self) -> Option<String> {
        self.resolver.control_unreachable()
    }

    /// Handles one request through every phase; never fails (errors become responses).
    pub async fn handle(self: Arc<Self>, req: Request<Body>) -> Resp {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let result = match route(&method, &path) {
            Route::Invoke(name) => {
                let name = name.to_string();
                self.invoke(req, &name, &request_id).await
            }
            Route::Logs(name) => self.logs(name, req.uri().query().unwrap_or("")).await,
            Route::Url(p) => self.function_url(req, p, &request_id).await,
            r @ (Route::Code(_) | Route::QueueRead(_) | Route::Limits(_) | Route::Management) => {
                let limit = control_body_limit(&r, self.max_management_body);
                self.control_path(req, r == Route::Management, limit).await
            }
            Route::Unknown => Err(ApiError::unknown_operation(format!(
                "Unknown operation: {method} {path}"
            ))),
        };
        self.respond_and_log(result, &request_id, &method, &path, started)
    }

    /// The respond-and-log phase: error mapping, request id, metrics, one access-log line.
    fn respond_and_log(
        &self,
        result: Result<Resp, ApiError>,
        request_id: &str,
        method: &::http::Method,
        path: &str,
        started: Instant,
    ) -> Resp {
        let mut resp = result.unwrap_or_else(|e| {
            if e.status.is_server_error() {
                tracing::error!(%request_id, error = %e, "request failed");
            }
            e.to_response(request_id)
        });
        if let Ok(v) = HeaderValue::from_str(request_id) {
            resp.headers_mut().entry("x-amzn-requestid").or_insert(v);
        }
        let elapsed = started.elapsed();
        if route(method, path) != Route::Management {
            self.metrics
                .router
                .invoke_duration
                .observe(elapsed.as_secs_f64());
        }
        tracing::info!(target: "hearth::access", %request_id, %method, path, status = resp.status().as_u16(), micros = elapsed.as_micros() as u64);
        self.phase("respond", started + elapsed);
        resp
    }

    /// Records the time since `since` as one phase.
    fn phase(&self, phase: &'static str, since: Instant) {
        self.metrics
            .router
            .phases
            .get_or_create(&PhaseLabel { phase })
            .observe(since.elapsed().as_secs_f64());
    }

    async fn read_body(req: Request<Body>, limit: usize) -> Result<Bytes, ApiError> {
        let declared = req
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit.saturating_add(DRAIN_LIMIT)) {
            return Err(invoke::too_large(limit));
        }
        let mut body = req.into_body();
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::invalid_content(format!("reading request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buf.len() + data.len() > limit {
                // Read (and drop) a bounded rest, so the client can read the 413.
                let mut drained = buf.len() + data.len();
                while let Some(Ok(f)) = body.frame().await {
                    drained += f.into_data().map(|d| d.len()).unwrap_or(0);
                    if drained > limit.saturating_add(DRAIN_LIMIT) {
                        break;
                    }
                }
                return Err(invoke::too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
        Ok(buf.freeze())
    }

    /// A path the control service owns (management API, function limits, code packages,
    /// queue reads): the body is read within its limit and the request handed to control. A
    /// management path is parsed first, so a bad request is refused before its body is read.
    async fn control_path(
        &self,
        req: Request<Body>,
        management: bool,
        limit: usize,
    ) -> Result<Resp, ApiError> {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let query = req.uri().query().unwrap_or("").to_string();
        if management {
            Action::parse(&method, &path, &query, self.control.account())?;
        }
        let body = if limit == 0 {
            Bytes::new()
        } else {
            Self::read_body(req, limit).await?
        };
        self.control
            .public(PublicRequest {
                method,
                path,
                query,
                body,
                base_url: self.public_base().to_string(),
            })
            .await
    }

    /// `GET /hearth/v1/functions/{name}/logs?tail=BYTES&cursor=…`: the function's logs (the
    /// last `tail` bytes, or what was written since `cursor`), with the next cursor in
    /// `x-hearth-log-cursor`.
    async fn logs(&self, name: &str, query: &str) -> Result<Resp, ApiError> {
        let name = crate::control::decode_segment(name)?;
        self.control.function_exists(&name).await?;
        let q = |k| crate::control::query_param(query, k);
        let tail = match q("tail").map(|t| t.parse::<usize>()) {
            None => 64 * 1024,
            Some(Ok(t)) => t,
            Some(Err(_)) => {
                return Err(ApiError::invalid_parameter(
                    "tail must be a number of bytes",
                ));
            }
        };
        let cursor = q("cursor");
        let (bytes, next) = crate::agent::logs::read_function_logs(
            &self.logs_dir.join(&name),
            cursor.as_deref(),
            tail,
        )
        .map_err(|e| ApiError::service(format!("reading logs: {e}")))?;
        let mut resp = Response::new(Full::new(Bytes::from(bytes)));
        let h = resp.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&next) {
            h.insert("x-hearth-log-cursor", v);
        }
        Ok(resp)
    }

    async fn invoke(
        &self,
        req: Request<Body>,
        name: &str,
        request_id: &str,
    ) -> Result<Resp, ApiError> {
        let parsed = self.parse_invoke(req, name).await;
        let parsed = parsed.inspect_err(|_| self.count("client_error"))?;
        let function = &parsed.function;
        let mut req = self
            .invoke_request(
                &function.name,
                function.qualifier.as_deref(),
                parsed.payload.clone(),
                request_id,
                parsed.trace_id.clone(),
            )
            .await?;
        req.client_context = parsed.client_context.clone();
        req.log_tail = parsed.log_tail;
        match parsed.invocation_type {
            InvocationType::DryRun => Ok(empty(StatusCode::NO_CONTENT)),
            InvocationType::Event => self.invoke_event(req, &parsed).await,
            InvocationType::RequestResponse => self.invoke_sync(req).await,
        }
    }

    /// resolve: the version to run, as the request the agent gets (shared by the Invoke API,
    /// function URLs and asynchronous deliveries).
    async fn invoke_request(
        &self,
        name: &str,
        qualifier: Option<&str>,
        payload: Bytes,
        request_id: &str,
        trace_id: Option<String>,
    ) -> Result<InvokeRequest, ApiError> {
        let t = Instant::now();
        // authenticate: every caller maps to the default tenant until authentication exists.
        self.phase("authenticate", t);
        let t = Instant::now();
        let descriptor = self.resolver.resolve(name, qualifier).await;
        self.phase("resolve", t);
        let descriptor = descriptor.inspect_err(|_| self.count("client_error"))?;
        let invoked_arn = match qualifier {
            Some(q) => format!("{}:{q}", descriptor.function_arn),
            None => descriptor.function_arn.clone(),
        };
        Ok(InvokeRequest {
            request_id: request_id.to_string(),
            descriptor,
            invoked_arn,
            client_context: None,
            trace_id: trace_id.unwrap_or_else(new_trace_id),
            payload,
            log_tail: false,
        })
    }

    /// Reads and parses an Invoke request (the rest of the route phase).
    async fn parse_invoke(
        &self,
        req: Request<Body>,
        name: &str,
    ) -> Result<invoke::ParsedInvoke, ApiError> {
        let t = Instant::now();
        let query = req.uri().query().unwrap_or("").to_string();
        let headers = req.headers().clone();
        let body = Self::read_body(req, self.max_payload).await;
        let parsed = body.and_then(|b| {
            invoke::parse(
                name,
                &query,
                &headers,
                b,
                self.max_payload,
                self.control.account(),
            )
        });
        self.phase("route", t);
        parsed
    }

    /// `Event`: the event is stored on the durable queue (DESIGN.md "The invoke path"); 202
    /// once it is on disk. Delivery workers run it through [`Router::run`] (admitted like a synchronous invoke).
    async fn invoke_event(
        &self,
        req: InvokeRequest,
        parsed: &invoke::ParsedInvoke,
    ) -> Result<Resp, ApiError> {
        let event = crate::events::AsyncEvent {
            request_id: req.request_id,
            function_name: req.descriptor.function_name.clone(),
            qualifier: parsed.function.qualifier.clone(),
            payload_b64: base64::engine::general_purpose::STANDARD.encode(&req.payload),
            accepted_ms: crate::events::now_ms(),
            trace_id: Some(req.trace_id),
            source: None,
        };
        self.control
            .accept_event(&event)
            .await
            .inspect_err(|_| self.count("service_error"))?;
        Ok(empty(StatusCode::ACCEPTED))
    }

    async fn invoke_sync(&self, req: InvokeRequest) -> Result<Resp, ApiError> {
        let version = req.descriptor.version.clone();
        let out = self.run(req).await?;
        Ok(invoke_response(out, &version))
    }

    /// Runs a resolved invocation through admit, place and forward: what a synchronous invoke
    /// does, and what a delivery worker of asynchronous invokes calls. Errors are the Lambda
    /// answers (429 with Reason for throttles and capacity, 500 for platform failures). Every
    /// outcome is counted (per function too), even when the caller has gone away.
    pub async fn run(&self, req: InvokeRequest) -> Result<InvokeResponse, ApiError> {
        let function = &req.descriptor.function_name;
        let permit = self
            .admit(function)
            .await
            .inspect_err(|e| count_outcome(&self.metrics, function, Err(e)))?;
        self.forward(req, permit).await
    }

    /// The admit phase: reserved and account concurrency, rate limits. The permit is held
    /// until the instance finishes the invocation.
    pub async fn admit(&self, function: &str) -> Result<Permit, ApiError> {
        let t = Instant::now();
        let admitted = async {
            let l = self.resolver.limits(function).await?;
            let total = self.resolver.reserved_total().await?;
            self.limits.admit(function, l, total)
        }
        .await;
        self.phase("admit", t);
        admitted
    }

    /// The place and forward phases, in a task that owns `permit`: a caller that goes away
    /// (a client hanging up) leaves the invocation running, and the permit is released only
    /// when the instance is done. The one place the router calls the agent to run an invoke.
    pub async fn forward(
        &self,
        req: InvokeRequest,
        permit: Permit,
    ) -> Result<InvokeResponse, ApiError> {
        let agent = self.agent.clone();
        let metrics = self.metrics.clone();
        let wait = self.place_wait;
        let task = tokio::spawn(async move {
            let function = req.descriptor.function_name.clone();
            let out = place_and_forward(agent.as_ref(), req, wait, &metrics).await;
            drop(permit);
            count_outcome(&metrics, &function, out.as_ref());
            out
        });
        task.await
            .map_err(|e| ApiError::service(format!("forward task failed: {e}")))?
    }

    fn count(&self, outcome: &'static str) {
        self.metrics
            .router
            .invocations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }
}

/// Counts an invocation's outcome: overall, per function, and a throttle by its Reason.
fn count_outcome(metrics: &Metrics, function: &str, out: Result<&InvokeResponse, &ApiError>) {
    let outcome = match out {
        Ok(o) if o.function_error.is_some() => "function_error",
        Ok(_) => "success",
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => "throttled",
        Err(e) if e.status.is_client_error() => "client_error",
        Err(_) => "service_error",
    };
    let r = &metrics.router;
    r.invocations.get_or_create(&OutcomeLabel { outcome }).inc();
    let label = |outcome| FunctionOutcomeLabel {
        function: function.to_string(),
        outcome,
    };
    r.function_invocations.get_or_create(&label(outcome)).inc();
    if let Err(ApiError {
        reason: Some(reason),
        ..
    }) = out
    {
        r.function_throttles.get_or_create(&label(reason)).inc();
    }
}

/// Place (retrying an agent without capacity for up to `wait`) and forward. A refusal means
/// the invocation never started, so retrying it is safe; once started it is never retried.
async fn place_and_forward(
    agent: &dyn AgentClient,
    req: InvokeRequest,
    wait: Duration,
    metrics: &Metrics,
) -> Result<InvokeResponse, ApiError> {
    let phase = |phase, took: Duration| {
        metrics
            .router
            .phases
            .get_or_create(&PhaseLabel { phase })
            .observe(took.as_secs_f64())
    };
    let function = FunctionLabel {
        function: req.descriptor.function_name.clone(),
    };
    let placed = Instant::now();
    let deadline = placed + wait;
    let mut backoff = Duration::from_millis(2);
    loop {
        let t = Instant::now();
        let out = agent.invoke(req.clone()).await;
        match out {
            Err(crate::agent::AgentError::Capacity) if Instant::now() < deadline => {
                tokio::time::sleep(backoff.min(deadline - Instant::now())).await;
                backoff = (backoff * 2).min(Duration::from_millis(50));
            }
            Err(crate::agent::AgentError::Capacity) => {
                return Err(limits::throttle(limits::ACCOUNT_CONCURRENCY, 1));
            }
            Err(other) => return Err(ApiError::service(other.to_string())),
            Ok(out) => {
                phase("place", t.duration_since(placed));
                phase("forward", t.elapsed());
                let r = &metrics.router;
                r.function_duration
                    .get_or_create(&function)
                    .observe(t.elapsed().as_secs_f64());
                if out.cold_start {
                    r.function_cold_starts.get_or_create(&function).inc();
                }
                return Ok(out);
            }
        }
    }
}

/// Asynchronous deliveries run through the same resolve and forward phases as synchronous
/// invokes.
#[async_trait::async_trait]
impl crate::events::Dispatch for Router {
    async fn dispatch(
        &self,
        event: &crate::events::AsyncEvent,
        payload: Bytes,
    ) -> Result<crate::events::Delivered, crate::events::DispatchError> {
        let req = self
            .invoke_request(
                &event.function_name,
                event.qualifier.as_deref(),
                payload,
                &event.request_id,
                event.trace_id.clone(),
            )
            .await?;
        let executed_version = req.descriptor.version.clone();
        let out = self.run(req).await?;
        Ok(crate::events::Delivered {
            body: out.body,
            function_error: out.function_error,
            executed_version,
        })
    }
}

fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// The respond phase of a synchronous invoke: Lambda and hearth headers.
fn invoke_response(out: InvokeResponse, version: &str) -> Resp {
    let mut r = Response::new(Full::new(out.body));
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(version) {
        h.insert("x-amz-executed-version", v);
    }
    if let Some(fe) = out.function_error {
        h.insert("x-amz-function-error", HeaderValue::from_static(fe));
    }
    if let Some(tail) = out.log_tail {
        let b64 = base64::engine::general_purpose::STANDARD.encode(tail);
        if let Ok(v) = HeaderValue::from_str(&b64) {
            h.insert("x-amz-log-result", v);
        }
    }
    h.insert(
        "x-hearth-cold-start",
        HeaderValue::from_static(if out.cold_start { "true" } else { "false" }),
    );
    if let Ok(v) = HeaderValue::from_str(&out.instance_id) {
        h.insert("x-hearth-instance", v);
    }
    h.insert(
        "x-hearth-start-delay-us",
        HeaderValue::from(out.start_delay.as_micros() as u64),
    );
    r
}

/// An X-Ray style trace id: `Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn new_trace_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &a[..24],
        &b[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        use ::http::Method;
        let (get, post) = (Method::GET, Method::POST);
        assert_eq!(
            route(&post, "/2015-03-31/functions/f/invocations"),
            Route::Invoke("f")
        );
        assert_eq!(
            route(&get, "/2015-03-31/functions/f/invocations"),
            Route::Management
        );
        assert_eq!(route(&get, "/2015-03-31/functions/f"), Route::Management);
        assert_eq!(route(&post, "/2015-03-31/functions"), Route::Management);
        assert_eq!(route(&get, "/hearth/v1/code/ab.zip"), Route::Code("ab"));
        assert_eq!(route(&get, "/"), Route::Unknown);
        assert!(matches!(route(&get, "/fn/f:a/x"), Route::Url(p) if p.raw_path == "/x"));
        assert!(matches!(route(&post, "/fn/f"), Route::Url(p) if p.function == "f"));
        assert_eq!(route(&get, "/fn/"), Route::Unknown);
        assert_eq!(
            route(&post, "/2015-03-31/functions/f/invocations/x"),
            Route::Management
        );
    }

    #[test]
    fn trace_id_shape() {
        let t = new_trace_id();
        assert!(t.starts_with("Root=1-") && t.ends_with(";Sampled=0"), "{t}");
    }
}
