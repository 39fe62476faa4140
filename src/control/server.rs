//! `hearth control`: the control service as its own process (multi-process mode). Runs the
//! management API, the workflow engine and outbox relay, the trigger scheduler and the delivery
//! workers, on the metadata store, code store and queue of its data directory.
//!
//! Its listener (HTTP/1.1 and h2c) answers the public paths it owns (management API, function
//! limits, `/hearth/v1/code/{sha}.zip` for agents' `--code-url`, queue reads), as routers
//! forward them, and the internal endpoints of [`super::internal`] routers follow. Workflow
//! steps reach the agents (`--agent`, repeatable) through the router's [`Placement`]; delivery
//! workers invoke through a router (`--router`, see [`HttpDispatch`]).
//!
//! [`Placement`]: crate::router::place::Placement
//! [`HttpDispatch`]: crate::events::http_dispatch::HttpDispatch

use super::ControlClient;
use super::client::{self, InProcess, PublicRequest};
use super::internal::{self, ChangesBody, Internal};
use crate::admin::Admin;
use crate::agent::AgentClient;
use crate::api::ApiError;
use crate::config::Config;
use crate::events::Workers;
use crate::events::http_dispatch::HttpDispatch;
use crate::metrics::Metrics;
use crate::router::http;
use crate::serve::Embedded;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

type Resp = Response<Full<Bytes>>;

/// Runs the control service until `shutdown` resolves.
pub async fn run(
    cfg: Config,
    ready_file: Option<PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !cfg.agents.is_empty(),
        "hearth control needs at least one --agent URL (workflow steps run on agents)"
    );
    let metrics = Arc::new(Metrics::new());
    let embedded = Embedded::open(&cfg)?;
    let control = embedded.control.clone();
    let placement = Arc::new(crate::serve::remote_placement(&cfg));
    let agent: Arc<dyn AgentClient> = placement.clone();
    let engine = embedded.engine(&cfg, agent.clone());
    let events = embedded.acceptor(&metrics);
    let inproc = InProcess::new(control.clone(), events.clone());
    let workers = match cfg.control.router_url.as_str() {
        "" => {
            tracing::warn!("no --router: asynchronous invokes are stored but not delivered");
            None
        }
        url => Some(Workers::new(
            embedded.queue.clone(),
            control.clone(),
            Arc::new(HttpDispatch::new(url, cfg.limits.max_payload_bytes)),
            events.metrics.clone(),
            &cfg.events,
        )),
    };

    let listener = http::bind(cfg.control.listen)
        .with_context(|| format!("binding {}", cfg.control.listen))?;
    let admin =
        http::bind(cfg.admin_listen).with_context(|| format!("binding {}", cfg.admin_listen))?;
    let (addr, admin_addr) = (listener.local_addr()?, admin.local_addr()?);
    tracing::info!(listener = "control", %addr, "listening (HTTP/1.1, h2c)");
    tracing::info!(listener = "admin", addr = %admin_addr, "listening (/healthz, /metrics)");

    let (stop_tx, stop_rx) = watch::channel(false);
    let (engine_stop, engine_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let ready = Arc::new(AtomicBool::new(false));
    let admin_service = Admin {
        metrics: metrics.clone(),
        ready: ready.clone(),
        control: control.clone(),
        engine: engine.clone(),
    }
    .service();
    let admin_task = tokio::spawn(http::serve(admin, admin_service, stopped()));
    let service = Service {
        inproc,
        base_url: format!("http://{addr}"),
        max_body: cfg
            .limits
            .max_management_body_bytes
            .max(cfg.limits.max_payload_bytes * 2),
    };
    let task = tokio::spawn(http::serve(
        listener,
        move |req| service.clone().handle(req),
        stopped(),
    ));
    let poller = tokio::spawn(placement.run_poller(engine_rx.clone()));
    let workers_task = workers.map(|w| tokio::spawn(w.run(engine_rx.clone())));
    let background = embedded.spawn(&engine, &engine_rx);
    crate::serve::prepare_agents(&control, agent.as_ref(), &cfg).await;
    ready.store(true, Ordering::SeqCst);
    if let Some(path) = ready_file {
        crate::serve::write_ready_file(&path, addr, admin_addr, None)?;
    }
    tracing::info!("ready");

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    crate::serve::drain(grace, vec![task, admin_task]).await;
    let _ = engine_stop.send(true);
    if let Some(w) = workers_task {
        let abort = w.abort_handle();
        if tokio::time::timeout(grace, w).await.is_err() {
            abort.abort();
        }
    }
    for task in background.into_iter().chain([poller]) {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The control listener.
#[derive(Clone)]
struct Service {
    inproc: Arc<InProcess>,
    /// Public base URL when a request does not say the router's.
    base_url: String,
    max_body: usize,
}

impl Service {
    async fn handle(self, req: Request<Incoming>) -> Resp {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut resp = self
            .route(req)
            .await
            .unwrap_or_else(|e| e.to_response(&request_id));
        if let Ok(v) = ::http::HeaderValue::from_str(&request_id) {
            resp.headers_mut().entry("x-amzn-requestid").or_insert(v);
        }
        resp
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Resp, ApiError> {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let query = req.uri().query().unwrap_or("").to_string();
        if let Some(internal) = internal::parse(&method, &path, &query)? {
            return self.internal(internal, req).await;
        }
        if client::public_path(&method, &path).is_none() {
            return Err(ApiError::unknown_operation(format!(
                "Unknown operation: {method} {path}"
            )));
        }
        let base_url = req
            .headers()
            .get(super::http_client::PUBLIC_BASE)
            .and_then(|v| v.to_str().ok())
            .filter(|b| b.len() <= 256 && crate::config::valid_public_url(b))
            .unwrap_or(&self.base_url)
            .to_string();
        let body = read_limited(req.into_body(), self.max_body).await?;
        self.inproc
            .public(PublicRequest {
                method,
                path,
                query,
                body,
                base_url,
            })
            .await
    }

    async fn internal(&self, r: Internal, req: Request<Incoming>) -> Result<Resp, ApiError> {
        let c = &self.inproc.control;
        match r {
            Internal::Changes {
                router,
                after,
                wait,
            } => {
                c.route_acks().ack_remote(&router, after);
                self.inproc.wait_after(after, wait).await;
                let b = self.inproc.batch_after(after);
                json(
                    StatusCode::OK,
                    &ChangesBody {
                        rev: b.rev,
                        gap: b.keys.is_none(),
                        keys: b.keys.unwrap_or_default(),
                    },
                )
            }
            Internal::Ack => {
                let body = read_limited(req.into_body(), internal::MAX_ACK_BODY).await?;
                let ack = internal::parse_ack(&body)?;
                if ack.forget {
                    c.route_acks().forget(&ack.router);
                } else {
                    c.route_acks().ack_remote(&ack.router, ack.rev);
                }
                json(StatusCode::OK, &serde_json::json!({}))
            }
            Internal::Route { name, version } => json(
                StatusCode::OK,
                &self.inproc.routable(&name, &version).await?,
            ),
            Internal::Alias { name, alias } => {
                json(StatusCode::OK, &self.inproc.alias(&name, &alias).await?)
            }
            Internal::Limits { name } => {
                json(StatusCode::OK, &self.inproc.function_limits(&name).await?)
            }
            Internal::ReservedTotal => json(
                StatusCode::OK,
                &serde_json::json!({ "total": self.inproc.reserved_total().await? }),
            ),
            Internal::Url { name, qualifier } => json(
                StatusCode::OK,
                &self.inproc.url_config(&name, qualifier.as_deref()).await?,
            ),
            Internal::Function { name } => {
                self.inproc.function_exists(&name).await?;
                json(StatusCode::OK, &serde_json::json!({}))
            }
            Internal::Event => {
                let body = read_limited(req.into_body(), self.max_body).await?;
                let ev = internal::parse_event(&body)?;
                self.inproc.accept_event(&ev).await?;
                json(StatusCode::ACCEPTED, &serde_json::json!({}))
            }
        }
    }
}

fn json(status: StatusCode, v: &impl serde::Serialize) -> Result<Resp, ApiError> {
    let body = serde_json::to_vec(v).map_err(|e| ApiError::service(e.to_string()))?;
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        ::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
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
