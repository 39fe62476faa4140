//! [`ControlClient`] over HTTP/2 (h2c, prior knowledge, one pooled multiplexed connection):
//! what a `hearth router` process uses to reach `hearth control`. The internal endpoints are
//! listed in [`super::internal`]; the public paths control owns are forwarded as they came.
//!
//! A control service that cannot be reached is a 500 `ServiceException` ("control service
//! unreachable: …"): the router answers uncached lookups with it and keeps serving what its
//! metadata cache holds.

use super::client::{ChangeBatch, ControlClient, PublicRequest, Resp};
use super::internal::{AckBody, ChangesBody};
use crate::api::types::{AliasConfiguration, FunctionUrlConfig};
use crate::api::{ApiError, VersionDescriptor};
use crate::events::AsyncEvent;
use crate::router::resolve::FunctionLimits;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// Header carrying the router's public base URL on forwarded public paths.
pub const PUBLIC_BASE: &str = "x-hearth-public-base";
/// Time for a metadata read.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a forwarded public request (a create uploads and checks a package).
const PUBLIC_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest metadata answer read.
const MAX_READ_ANSWER: usize = 4 * 1024 * 1024;

/// A control service at `http://HOST:PORT`.
pub struct HttpControl {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    account: String,
    region: String,
    /// Largest forwarded answer read (code packages, management answers).
    max_public_answer: usize,
}

/// One HTTP answer.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl HttpControl {
    pub fn new(base: &str, cfg: &crate::config::Config) -> HttpControl {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(
            cfg.placement.connect_timeout_ms,
        )));
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_keep_alive_interval(Duration::from_secs(5))
            .http2_keep_alive_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        HttpControl {
            base: base.trim_end_matches('/').to_string(),
            client,
            account: cfg.account_id.clone(),
            region: cfg.region.clone(),
            max_public_answer: cfg
                .limits
                .max_management_body_bytes
                .max(cfg.limits.max_zip_bytes as usize)
                + 1024 * 1024,
        }
    }

    async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
        timeout: Duration,
        limit: usize,
    ) -> Result<Answer, ApiError> {
        let unreachable =
            |e: String| ApiError::service(format!("control service unreachable: {e}"));
        let sent = tokio::time::timeout(timeout, async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        })
        .await;
        sent.unwrap_or_else(|_| Err(unreachable(format!("no answer within {timeout:?}"))))
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = format!("{}{path}", self.base)
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("http://invalid.invalid/"));
        req.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        req
    }

    /// An internal call with a JSON answer; an error status becomes the same error here.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let a = self
            .exchange(self.request(method, path, body), timeout, MAX_READ_ANSWER)
            .await?;
        if !a.status.is_success() {
            return Err(error_of(&a));
        }
        serde_json::from_slice(&a.body)
            .map_err(|e| ApiError::service(format!("bad answer from the control service: {e}")))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(Method::GET, path, Bytes::new(), READ_TIMEOUT)
            .await
    }
}

/// The error an answer carries (`x-amzn-errortype`, body `message`, `Reason`).
fn error_of(a: &Answer) -> ApiError {
    let ty = a
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("ServiceException");
    let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let message = body["message"].as_str().unwrap_or("");
    ApiError::from_wire(a.status, ty, message, body["Reason"].as_str())
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[async_trait::async_trait]
impl ControlClient for HttpControl {
    fn account(&self) -> &str {
        &self.account
    }

    fn region(&self) -> &str {
        &self.region
    }

    async fn routable(&self, name: &str, version: &str) -> Result<VersionDescriptor, ApiError> {
        self.get(&format!(
            "/internal/v1/routes/{}/{}",
            seg(name),
            seg(version)
        ))
        .await
    }

    async fn alias(&self, name: &str, alias: &str) -> Result<AliasConfiguration, ApiError> {
        self.get(&format!(
            "/internal/v1/aliases/{}/{}",
            seg(name),
            seg(alias)
        ))
        .await
    }

    async fn function_limits(&self, name: &str) -> Result<FunctionLimits, ApiError> {
        self.get(&format!("/internal/v1/limits/{}", seg(name)))
            .await
    }

    async fn reserved_total(&self) -> Result<u64, ApiError> {
        let v: serde_json::Value = self.get("/internal/v1/reserved-total").await?;
        v["total"]
            .as_u64()
            .ok_or_else(|| ApiError::service("bad reserved total from the control service"))
    }

    async fn url_config(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<FunctionUrlConfig>, ApiError> {
        let q = qualifier
            .map(|q| format!("?qualifier={}", seg(q)))
            .unwrap_or_default();
        self.get(&format!("/internal/v1/urls/{}{q}", seg(name)))
            .await
    }

    async fn function_exists(&self, name: &str) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .get(&format!("/internal/v1/functions/{}", seg(name)))
            .await?;
        Ok(())
    }

    async fn changes(
        &self,
        router: &str,
        after: u64,
        wait: Duration,
    ) -> Result<ChangeBatch, ApiError> {
        let path = format!(
            "/internal/v1/changes?router={}&after={after}&wait_ms={}",
            seg(router),
            wait.as_millis()
        );
        let b: ChangesBody = self
            .call(Method::GET, &path, Bytes::new(), wait + READ_TIMEOUT)
            .await?;
        Ok(ChangeBatch {
            rev: b.rev,
            keys: (!b.gap).then_some(b.keys),
        })
    }

    async fn forget(&self, router: &str) {
        let body = AckBody {
            router: router.to_string(),
            rev: 0,
            forget: true,
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let r: Result<serde_json::Value, _> = self
            .call(Method::POST, "/internal/v1/acks", body, READ_TIMEOUT)
            .await;
        if let Err(e) = r {
            tracing::debug!(error = %e, "telling control this router stops");
        }
    }

    async fn public(&self, req: PublicRequest) -> Result<Resp, ApiError> {
        let path = match req.query.as_str() {
            "" => req.path.clone(),
            q => format!("{}?{q}", req.path),
        };
        let mut out = self.request(req.method, &path, req.body);
        if let Ok(v) = HeaderValue::from_str(&req.base_url) {
            out.headers_mut().insert(PUBLIC_BASE, v);
        }
        let a = self
            .exchange(out, PUBLIC_TIMEOUT, self.max_public_answer)
            .await?;
        let mut resp = Response::new(Full::new(a.body));
        *resp.status_mut() = a.status;
        for (k, v) in &a.headers {
            // Hop-by-hop headers, and control's request id (the router's own is the one its
            // access log and the client see).
            let hop = matches!(
                k.as_str(),
                "content-length"
                    | "transfer-encoding"
                    | "connection"
                    | "date"
                    | "keep-alive"
                    | "x-amzn-requestid"
            );
            if !hop {
                resp.headers_mut().append(k.clone(), v.clone());
            }
        }
        Ok(resp)
    }

    async fn accept_event(&self, event: &AsyncEvent) -> Result<(), ApiError> {
        let body = serde_json::to_vec(event).map_err(|e| ApiError::service(e.to_string()))?;
        let r: serde_json::Value = self
            .call(
                Method::POST,
                "/internal/v1/events",
                body.into(),
                READ_TIMEOUT,
            )
            .await?;
        drop(r);
        Ok(())
    }
}
