//! The admin port: `/healthz`, `/readyz`, `/metrics`, and the workflow views
//! (`GET /admin/workflows?function=&id=&limit=`, `POST /admin/workflows/{id}/retry`).

use crate::control::Control;
use crate::control::workflow::Engine;
use crate::metrics::Metrics;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

type Resp = Response<Full<Bytes>>;

/// What the admin port reads.
#[derive(Clone)]
pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
    pub control: Arc<Control>,
    pub engine: Arc<Engine>,
}

fn reply(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", http::HeaderValue::from_static(ctype));
    r
}

fn json(status: StatusCode, v: serde_json::Value) -> Resp {
    reply(status, "application/json", v.to_string())
}

impl Admin {
    /// The admin service for [`crate::router::http::serve`].
    pub fn service(
        self,
    ) -> impl Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Resp> + Send>>
    + Clone
    + Send
    + Sync
    + 'static {
        move |req| {
            let me = self.clone();
            Box::pin(async move { me.handle(req).await })
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let ready = self.ready.load(Ordering::SeqCst);
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/healthz" | "/readyz") if ready => {
                reply(StatusCode::OK, "text/plain", "ok\n")
            }
            (Method::GET, "/healthz" | "/readyz") => {
                reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "starting\n")
            }
            (Method::GET, "/metrics") => reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics.encode(),
            ),
            (Method::GET, "/admin/workflows") => self.workflows(&query),
            (Method::POST, p) if p.starts_with("/admin/workflows/") && p.ends_with("/retry") => {
                let id = &p["/admin/workflows/".len()..p.len() - "/retry".len()];
                match self.engine.retry(id).await {
                    Ok(w) => json(StatusCode::OK, serde_json::json!({ "Workflow": w })),
                    Err(e) => json(StatusCode::CONFLICT, serde_json::json!({ "message": e })),
                }
            }
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        }
    }

    /// Workflows with their steps, newest first.
    fn workflows(&self, query: &str) -> Resp {
        let q = |k| crate::control::query_param(query, k);
        let store = self.control.store();
        let limit = q("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(100usize)
            .min(1000);
        let records = match q("id") {
            Some(id) => store.workflow(&id).map(|w| w.into_iter().collect()),
            None => store.workflows(self.control.account(), q("function").as_deref(), limit),
        };
        let records = match records {
            Ok(r) => r,
            Err(e) => {
                return json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "message": e.to_string() }),
                );
            }
        };
        let items: Vec<serde_json::Value> = records
            .into_iter()
            .map(|w| {
                let steps = store.steps(&w.id).unwrap_or_default();
                let names: Vec<&str> = w.kind.steps().iter().map(|s| s.as_str()).collect();
                let mut v = serde_json::to_value(&w).unwrap_or_default();
                v["plan"] = names.into();
                v["steps"] = serde_json::to_value(steps).unwrap_or_default();
                v
            })
            .collect();
        json(StatusCode::OK, serde_json::json!({ "Workflows": items }))
    }
}
