//! Invoke router (data plane). Phases, in order: accept ([`http`]), route, authenticate,
//! resolve ([`resolve`]), admit, place, forward, respond-and-log (always runs).

pub mod http;
pub mod invoke;
pub mod place;
pub mod resolve;

use crate::agent::{AgentClient, InvokeRequest, InvokeResponse};
use crate::api::ApiError;
use crate::control::{Action, Control, is_management_path};
use crate::metrics::{Metrics, OutcomeLabel};
use ::http::{HeaderValue, Request, Response, StatusCode};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use invoke::InvocationType;
use std::sync::Arc;
use std::time::Instant;

type Resp = Response<Full<Bytes>>;

/// Bytes of an oversized body read and dropped before answering 413.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Where a request goes (the route phase).
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Invoke(&'a str),
    Code(&'a str),
    Logs(&'a str),
    Management,
    Unknown,
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
    } else if is_management_path(path) {
        Route::Management
    } else {
        Route::Unknown
    }
}

/// The router.
pub struct Router {
    control: Arc<Control>,
    agent: Arc<dyn AgentClient>,
    resolver: Arc<resolve::Resolver>,
    metrics: Arc<Metrics>,
    max_payload: usize,
    max_management_body: usize,
    logs_dir: std::path::PathBuf,
}

impl Router {
    pub fn new(
        control: Arc<Control>,
        agent: Arc<dyn AgentClient>,
        metrics: Arc<Metrics>,
        cfg: &crate::config::Config,
    ) -> Arc<Router> {
        Arc::new(Router {
            resolver: Arc::new(resolve::Resolver::new(control.clone())),
            control,
            agent,
            metrics,
            max_payload: cfg.limits.max_payload_bytes,
            max_management_body: cfg.limits.max_management_body_bytes,
            logs_dir: cfg.data_dir.join("logs"),
        })
    }

    /// Follows the control service's change feed (cache flushes and acknowledgements) until
    /// `shutdown` flips to true.
    pub fn follow_changes(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + use<> {
        self.resolver.clone().follow(shutdown)
    }

    /// Handles one request through every phase; never fails (errors become responses).
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let result = match route(&method, &path) {
            Route::Invoke(name) => {
                let name = name.to_string();
                self.invoke(req, &name, &request_id).await
            }
            Route::Code(sha) => self.code(sha),
            Route::Logs(name) => self.logs(name, req.uri().query().unwrap_or("")),
            Route::Management => self.management(req).await,
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
        resp
    }

    async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
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

    async fn management(&self, req: Request<Incoming>) -> Result<Resp, ApiError> {
        let action = Action::parse(
            req.method(),
            req.uri().path(),
            req.uri().query().unwrap_or(""),
            self.control.account(),
        )?;
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_string();
        let base_url = format!("http://{host}");
        let body = Self::read_body(req, self.max_management_body).await?;
        let reply = self.control.handle(action, body, &base_url).await?;
        let body = reply
            .body
            .map(|b| Bytes::from(b.to_string()))
            .unwrap_or_default();
        let mut resp = Response::new(Full::new(body));
        *resp.status_mut() = reply.status;
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        Ok(resp)
    }

    /// `GET /hearth/v1/functions/{name}/logs?tail=BYTES&cursor=…`: the function's logs (the
    /// last `tail` bytes, or what was written since `cursor`), with the next cursor in
    /// `x-hearth-log-cursor`.
    fn logs(&self, name: &str, query: &str) -> Result<Resp, ApiError> {
        let name = crate::control::decode_segment(name)?;
        self.control.lookup(&name, None)?;
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

    fn code(&self, sha: &str) -> Result<Resp, ApiError> {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::not_found("No such code package"));
        }
        let zip = self
            .control
            .code_store()
            .get(sha)
            .map_err(|_| ApiError::not_found("No such code package"))?;
        let mut resp = Response::new(Full::new(Bytes::from(zip)));
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/zip"));
        Ok(resp)
    }

    async fn invoke(
        &self,
        req: Request<Incoming>,
        name: &str,
        request_id: &str,
    ) -> Result<Resp, ApiError> {
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
        let parsed = parsed.inspect_err(|_| self.count("client_error"))?;
        // authenticate: every caller maps to the default tenant until authentication exists.
        let descriptor = self
            .resolver
            .resolve(&parsed.function.name, parsed.function.qualifier.as_deref());
        let descriptor = descriptor.inspect_err(|_| self.count("client_error"))?;
        let invoked_arn = match &parsed.function.qualifier {
            Some(q) => format!("{}:{q}", descriptor.function_arn),
            None => descriptor.function_arn.clone(),
        };
        let req = InvokeRequest {
            request_id: request_id.to_string(),
            descriptor,
            invoked_arn,
            client_context: parsed.client_context.clone(),
            trace_id: parsed.trace_id.clone().unwrap_or_else(new_trace_id),
            payload: parsed.payload.clone(),
            log_tail: parsed.log_tail,
        };
        match parsed.invocation_type {
            InvocationType::DryRun => Ok(empty(StatusCode::NO_CONTENT)),
            InvocationType::Event => Ok(self.invoke_event(req)),
            InvocationType::RequestResponse => self.invoke_sync(req).await,
        }
    }

    /// `Event`: accepted at once, run in the background (not yet durable: the queue comes
    /// with the async-invoke issue).
    fn invoke_event(&self, mut req: InvokeRequest) -> Resp {
        req.log_tail = false;
        req.client_context = None;
        let agent = self.agent.clone();
        tokio::spawn(async move {
            if let Err(e) = agent.invoke(req).await {
                tracing::warn!(error = %e, "async invocation was not run");
            }
        });
        empty(StatusCode::ACCEPTED)
    }

    async fn invoke_sync(&self, req: InvokeRequest) -> Result<Resp, ApiError> {
        let version = req.descriptor.version.clone();
        // admit + place: one agent in `serve`; a refusal means the invocation never started.
        let out = self.agent.invoke(req).await.map_err(|e| {
            self.count("service_error");
            match e {
                crate::agent::AgentError::Capacity => ApiError::too_many_requests(
                    "ConcurrentInvocationLimitExceeded",
                    "Rate Exceeded.",
                ),
                other => ApiError::service(other.to_string()),
            }
        })?;
        self.count(if out.function_error.is_some() {
            "function_error"
        } else {
            "success"
        });
        Ok(invoke_response(out, &version))
    }

    fn count(&self, outcome: &'static str) {
        self.metrics
            .router
            .invocations
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
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
