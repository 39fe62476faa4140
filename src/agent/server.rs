//! `hearth agent`: the node agent as its own process. Serves the router-to-agent protocol
//! ([`super::wire`]) over HTTP/2 prior knowledge (h2c; HTTP/1.1 on the same port), fetches
//! code over HTTP ([`crate::codestore::http::HttpCodeSource`]), and has its own admin port
//! (`/healthz`, `/readyz`, `/metrics`).
//!
//! Endpoints: `POST /v1/invoke`, `GET /v1/state`, `POST /v1/prefetch/{sha}`,
//! `POST /v1/retire` (`{"function_arn"}`), `POST /v1/provision` (`{"config","targets"}`),
//! `GET /v1/provisioned?config=`.

use super::wire::{self, Allocated, ProvisionBody, RetireBody};
use super::{Agent, AgentClient};
use crate::api::ApiError;
use crate::codestore::http::HttpCodeSource;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::router::http;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

type Resp = Response<Full<Bytes>>;

/// Largest JSON body of the management endpoints (provision, retire).
const MAX_JSON_BODY: usize = 1024 * 1024;

/// Runs the agent until `shutdown` resolves, then drains in-flight invokes (bounded by
/// `shutdown_grace_secs`) and stops every instance.
pub async fn run(
    cfg: Config,
    ready_file: Option<PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let data = &cfg.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating data dir {}", data.display()))?;
    anyhow::ensure!(
        !cfg.agent.code_url.is_empty(),
        "hearth agent needs --code-url (or agent.code_url)"
    );
    let metrics = Arc::new(Metrics::new());
    let code = HttpCodeSource::new(
        &cfg.agent.code_url,
        cfg.limits.max_zip_bytes,
        Duration::from_secs(cfg.agent.code_fetch_timeout_secs),
    );
    let agent = Agent::new(&cfg, Arc::new(code), metrics.clone())?;
    let listener =
        http::bind(cfg.agent.listen).with_context(|| format!("binding {}", cfg.agent.listen))?;
    let admin =
        http::bind(cfg.admin_listen).with_context(|| format!("binding {}", cfg.admin_listen))?;
    let (addr, admin_addr) = (listener.local_addr()?, admin.local_addr()?);
    tracing::info!(listener = "agent", %addr, "listening (h2c, HTTP/1.1)");
    tracing::info!(listener = "admin", addr = %admin_addr, "listening (/healthz, /metrics)");

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let ready = Arc::new(AtomicBool::new(false));
    let admin_task = tokio::spawn(http::serve(
        admin,
        {
            let (metrics, ready) = (metrics.clone(), ready.clone());
            move |req| std::future::ready(admin_reply(&req, &metrics, &ready))
        },
        stopped(),
    ));
    let service = Service {
        agent: agent.clone(),
        max_payload: cfg.limits.max_payload_bytes,
    };
    let agent_task = tokio::spawn(http::serve(
        listener,
        move |req| service.clone().handle(req),
        stopped(),
    ));
    let reaper = tokio::spawn(agent.clone().run_reaper(stopped()));
    crate::serve::prepare_runtimes(&cfg).await?;
    ready.store(true, Ordering::SeqCst);
    if let Some(path) = ready_file {
        crate::serve::write_ready_file(&path, addr, admin_addr, None)?;
    }
    tracing::info!("ready");

    shutdown.await;
    tracing::info!("shutting down: draining in-flight invokes");
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    crate::serve::drain(grace, vec![agent_task, admin_task]).await;
    let _ = reaper.await;
    agent.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

fn reply(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", ::http::HeaderValue::from_static(ctype));
    r
}

fn json(v: &impl serde::Serialize) -> Resp {
    match serde_json::to_vec(v) {
        Ok(b) => reply(StatusCode::OK, "application/json", b),
        Err(e) => ApiError::service(e.to_string()).to_response(""),
    }
}

/// The agent's admin port.
fn admin_reply(req: &Request<Incoming>, metrics: &Metrics, ready: &AtomicBool) -> Resp {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz" | "/readyz") if ready.load(Ordering::SeqCst) => {
            reply(StatusCode::OK, "text/plain", "ok\n")
        }
        (&Method::GET, "/healthz" | "/readyz") => {
            reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "starting\n")
        }
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// The router-to-agent endpoints.
#[derive(Clone)]
struct Service {
    agent: Arc<Agent>,
    max_payload: usize,
}

impl Service {
    async fn handle(self, req: Request<Incoming>) -> Resp {
        let request_id = req
            .headers()
            .get(wire::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        self.route(req)
            .await
            .unwrap_or_else(|e| e.to_response(&request_id))
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Resp, ApiError> {
        let path = req.uri().path().to_string();
        match (req.method().clone(), path.as_str()) {
            (Method::POST, "/v1/invoke") => self.invoke(req).await,
            (Method::GET, "/v1/state") => Ok(json(&Agent::state(&self.agent))),
            (Method::POST, p) if p.starts_with("/v1/prefetch/") => {
                let sha = &p["/v1/prefetch/".len()..];
                if !crate::codestore::is_sha256_hex(sha) {
                    return Err(ApiError::invalid_parameter("not a SHA-256 hex"));
                }
                self.agent.prefetch(sha).await.map_err(ApiError::service)?;
                Ok(reply(StatusCode::NO_CONTENT, "text/plain", ""))
            }
            (Method::POST, "/v1/retire") => {
                let body: RetireBody = json_body(req).await?;
                self.agent.retire_function(&body.function_arn).await;
                Ok(reply(StatusCode::NO_CONTENT, "text/plain", ""))
            }
            (Method::POST, "/v1/provision") => {
                let body: ProvisionBody = json_body(req).await?;
                let targets = body
                    .targets
                    .into_iter()
                    .map(|t| (Arc::new(t.descriptor), t.count))
                    .collect();
                let allocated = self
                    .agent
                    .provision(&body.config, targets)
                    .await
                    .map_err(ApiError::service)?;
                Ok(json(&Allocated { allocated }))
            }
            (Method::GET, "/v1/provisioned") => {
                let query = req.uri().query().unwrap_or("");
                let config = crate::control::query_param(query, "config")
                    .ok_or_else(|| ApiError::invalid_parameter("config: required"))?;
                let allocated = self.agent.provisioned(&config).await;
                Ok(json(&Allocated { allocated }))
            }
            _ => Err(ApiError::not_found(format!(
                "no agent endpoint {} {path}",
                req.method()
            ))),
        }
    }

    /// `POST /v1/invoke`. The invocation runs in its own task (inside
    /// [`AgentClient::invoke`]): if the router goes away it still runs to completion and
    /// frees its instance; only the answer is lost.
    async fn invoke(&self, req: Request<Incoming>) -> Result<Resp, ApiError> {
        let (parts, body) = req.into_parts();
        let payload = read_limited(body, self.max_payload).await?;
        let parsed = wire::parse_invoke(&parts.headers, payload)?;
        match self.agent.invoke(parsed.request).await {
            Ok(out) => {
                let mut r = reply(StatusCode::OK, "application/json", out.body.clone());
                wire::response_headers(&out, r.headers_mut());
                Ok(r)
            }
            Err(e) => Ok(refusal(&e)),
        }
    }
}

/// `503` + `x-hearth-refused`: the invocation did not start.
fn refusal(e: &super::AgentError) -> Resp {
    let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", e.to_string());
    let h = r.headers_mut();
    h.insert(wire::REFUSED, ::http::HeaderValue::from_static(e.refused()));
    if let super::AgentError::StartingFailed(detail) = e {
        let clean: String = detail
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(512)
            .collect();
        if let Ok(v) = ::http::HeaderValue::from_str(&clean) {
            h.insert(wire::REFUSED_DETAIL, v);
        }
    }
    r
}

async fn read_limited(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(format!(
            "request body larger than {limit} bytes"
        ))),
        Err(e) => Err(ApiError::invalid_content(format!(
            "reading request body: {e}"
        ))),
    }
}

async fn json_body<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, ApiError> {
    let bytes = read_limited(req.into_body(), MAX_JSON_BODY).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid_content(format!("bad JSON body: {e}")))
}
