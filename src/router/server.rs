//! `hearth router`: the invoke router as its own process (multi-process mode). It reaches the
//! control service over HTTP/2 ([`HttpControl`]), follows its change feed with a long poll,
//! and places invokes across the remote agents (`--agent`, repeatable). With `tls.listen` it
//! serves TLS (h2, HTTP/1.1) and HTTP/3 exactly as `serve` does.
//!
//! Its admin port answers `/readyz` with 503 and the reason while the control service cannot
//! be reached; invokes keep being served from the metadata cache meanwhile (uncached lookups
//! answer 500 `ServiceException`).
//!
//! [`HttpControl`]: crate::control::http_client::HttpControl

use super::{Router, http};
use crate::config::Config;
use crate::control::http_client::HttpControl;
use crate::metrics::Metrics;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

type Resp = Response<Full<Bytes>>;

/// Runs the router until `shutdown` resolves, then drains in-flight requests.
pub async fn run(
    cfg: Config,
    ready_file: Option<PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !cfg.router.control_url.is_empty(),
        "hearth router needs --control URL (or router.control_url)"
    );
    anyhow::ensure!(
        !cfg.agents.is_empty(),
        "hearth router needs at least one --agent URL"
    );
    let metrics = Arc::new(Metrics::new());
    let control = Arc::new(HttpControl::new(&cfg.router.control_url, &cfg));
    let placement = Arc::new(crate::serve::remote_placement(&cfg));
    let id = format!("router-{}", uuid::Uuid::new_v4());
    tracing::info!(control = %cfg.router.control_url, %id, "following the control service");
    let router = Router::new(control, placement.clone(), metrics.clone(), &cfg, 0, id);

    let public =
        http::bind_public(cfg.listen).with_context(|| format!("binding {}", cfg.listen))?;
    let admin =
        http::bind(cfg.admin_listen).with_context(|| format!("binding {}", cfg.admin_listen))?;
    let (public_addr, admin_addr) = (public.local_addr()?, admin.local_addr()?);
    tracing::info!(listener = "public", addr = %public_addr, "listening (HTTP/1.1, h2c)");
    tracing::info!(listener = "admin", addr = %admin_addr, "listening (/healthz, /readyz, /metrics)");
    let secure = crate::serve::bind_tls(&cfg, &router, public_addr)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (bg_stop, bg_rx) = watch::channel(false);
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
            let (metrics, ready, router) = (metrics.clone(), ready.clone(), router.clone());
            move |req| std::future::ready(admin_reply(&req, &metrics, &ready, &router))
        },
        stopped(),
    ));
    let follower = tokio::spawn(router.follow_changes(bg_rx.clone()));
    let poller = tokio::spawn(placement.run_poller(bg_rx));
    let (tls_addr, secure_tasks) = crate::serve::spawn_tls(secure, &router, &stopped);
    let public_opts = router.serve_options(cfg.limits.max_connections);
    let r = router.clone();
    let public_task = tokio::spawn(http::serve_with(
        public,
        move |req| r.clone().handle(super::boxed(req)),
        stopped(),
        public_opts,
    ));
    ready.store(true, Ordering::SeqCst);
    if let Some(path) = ready_file {
        crate::serve::write_ready_file(&path, public_addr, admin_addr, tls_addr)?;
    }
    tracing::info!("ready");

    shutdown.await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    let mut listeners = vec![public_task, admin_task];
    listeners.extend(secure_tasks);
    crate::serve::drain(grace, listeners).await;
    let _ = bg_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = tokio::join!(follower, poller);
    })
    .await;
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

/// The router's admin port: `/healthz` (the process serves), `/readyz` (and the control
/// service is reachable), `/metrics`.
fn admin_reply(
    req: &Request<Incoming>,
    metrics: &Metrics,
    ready: &AtomicBool,
    router: &Router,
) -> Resp {
    let ready = ready.load(Ordering::SeqCst);
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz" | "/readyz") if !ready => {
            reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "starting\n")
        }
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/readyz") => match router.control_unreachable() {
            None => reply(StatusCode::OK, "text/plain", "ok\n"),
            Some(why) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("control service unreachable (serving from the metadata cache): {why}\n"),
            ),
        },
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}
