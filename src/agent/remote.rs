//! [`AgentClient`] for an agent in another process: the router-to-agent protocol
//! ([`super::wire`]) over a pooled, multiplexed HTTP/2 connection (h2c, prior knowledge).
//!
//! What an error means for the invocation: a failure to connect (nothing was sent) is
//! [`AgentError::Unreachable`], safe to place elsewhere; a `503` with `x-hearth-refused` is
//! the agent's refusal, also not started; any other failure after the request went out is
//! [`AgentError::Lost`]: it may have started, so it is never retried.

use super::wire::{self, AgentState, Allocated, ProvisionBody, ProvisionTargetBody, RetireBody};
use super::{AgentClient, AgentError, InvokeRequest, InvokeResponse};
use crate::api::VersionDescriptor;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::Arc;
use std::time::Duration;

/// Time an agent gets beyond the function's timeout to answer an invoke.
const ANSWER_MARGIN: Duration = Duration::from_secs(15);
/// Time for the small management calls (state, retire, provisioned).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for provisioning (it starts instances).
const PROVISION_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest non-invoke answer read.
const MAX_SMALL_ANSWER: usize = 4 * 1024 * 1024;

/// A remote node agent at `http://HOST:PORT`.
pub struct RemoteAgent {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Largest invoke answer read (the payload limit plus headroom for error bodies).
    max_answer: usize,
}

/// The outcome of one HTTP exchange.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl RemoteAgent {
    pub fn new(base: &str, connect_timeout: Duration, max_payload: usize) -> RemoteAgent {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_keep_alive_interval(Duration::from_secs(10))
            .http2_keep_alive_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        RemoteAgent {
            base: base.trim_end_matches('/').to_string(),
            client,
            max_answer: max_payload + 1024 * 1024,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request. `Unreachable` when it could not be sent, `Lost` when it was sent and no
    /// full answer came back within `timeout`.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
        limit: usize,
    ) -> Result<Answer, AgentError> {
        let uri = format!("{}{path}", self.base);
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .body(Full::new(body))
            .map_err(|e| AgentError::Unreachable(format!("{uri}: {e}")))?;
        *req.headers_mut() = headers;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    AgentError::Unreachable(format!("{uri}: {e}"))
                } else {
                    AgentError::Lost(format!("agent {}: {e:#}", self.base))
                }
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| AgentError::Lost(format!("agent {}: reading answer: {e}", self.base)))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(AgentError::Lost(format!(
                    "agent {}: no answer within {timeout:?}",
                    self.base
                )))
            })
    }

    /// A small JSON call; errors as text.
    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<T, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let a = self
            .exchange(
                method,
                path,
                headers,
                Bytes::from(body.unwrap_or_default()),
                timeout,
                MAX_SMALL_ANSWER,
            )
            .await
            .map_err(|e| e.to_string())?;
        if !a.status.is_success() {
            return Err(format!(
                "agent {}: {path}: HTTP {}: {}",
                self.base,
                a.status,
                String::from_utf8_lossy(&a.body)
            ));
        }
        serde_json::from_slice(&a.body).map_err(|e| format!("agent {}: {path}: {e}", self.base))
    }
}

#[async_trait::async_trait]
impl AgentClient for RemoteAgent {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, AgentError> {
        let headers = wire::invoke_headers(&req).map_err(AgentError::StartingFailed)?;
        let timeout = Duration::from_secs(req.descriptor.timeout_secs.into()) + ANSWER_MARGIN;
        let a = self
            .exchange(
                Method::POST,
                "/v1/invoke",
                headers,
                req.payload,
                timeout,
                self.max_answer,
            )
            .await?;
        match a.status {
            StatusCode::OK => Ok(wire::parse_response(&a.headers, a.body, req.log_tail)),
            StatusCode::SERVICE_UNAVAILABLE => match wire::parse_refusal(&a.headers) {
                Some(refused) => Err(refused),
                None => Err(AgentError::Lost(format!(
                    "agent {}: 503 without a refusal",
                    self.base
                ))),
            },
            // A 4xx/5xx other than a refusal: the agent did not run it, but say so plainly.
            s => Err(AgentError::StartingFailed(format!(
                "agent {} answered {s}: {}",
                self.base,
                String::from_utf8_lossy(&a.body)
            ))),
        }
    }

    async fn prefetch(&self, code_sha256: &str) -> Result<(), String> {
        let path = format!("/v1/prefetch/{code_sha256}");
        let a = self
            .exchange(
                Method::POST,
                &path,
                HeaderMap::new(),
                Bytes::new(),
                PROVISION_TIMEOUT,
                MAX_SMALL_ANSWER,
            )
            .await
            .map_err(|e| e.to_string())?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "agent {}: prefetch: HTTP {}: {}",
                self.base,
                a.status,
                String::from_utf8_lossy(&a.body)
            ))
        }
    }

    async fn retire_function(&self, function_arn: &str) {
        let body = serde_json::to_vec(&RetireBody {
            function_arn: function_arn.to_string(),
        })
        .unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let r = self
            .exchange(
                Method::POST,
                "/v1/retire",
                headers,
                Bytes::from(body),
                CALL_TIMEOUT,
                MAX_SMALL_ANSWER,
            )
            .await;
        if let Err(e) = r {
            tracing::warn!(agent = %self.base, error = %e, "retiring a function");
        }
    }

    async fn provision(
        &self,
        config: &str,
        targets: Vec<(Arc<VersionDescriptor>, usize)>,
    ) -> Result<usize, String> {
        let body = ProvisionBody {
            config: config.to_string(),
            targets: targets
                .into_iter()
                .map(|(d, count)| ProvisionTargetBody {
                    descriptor: (*d).clone(),
                    count,
                })
                .collect(),
        };
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let a: Allocated = self
            .call_json(Method::POST, "/v1/provision", Some(body), PROVISION_TIMEOUT)
            .await?;
        Ok(a.allocated)
    }

    async fn provisioned(&self, config: &str) -> usize {
        let q: String =
            percent_encoding::utf8_percent_encode(config, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let path = format!("/v1/provisioned?config={q}");
        match self
            .call_json::<Allocated>(Method::GET, &path, None, CALL_TIMEOUT)
            .await
        {
            Ok(a) => a.allocated,
            Err(e) => {
                tracing::warn!(agent = %self.base, error = %e, "reading provisioned instances");
                0
            }
        }
    }

    async fn state(&self) -> Result<AgentState, AgentError> {
        let a = self
            .exchange(
                Method::GET,
                "/v1/state",
                HeaderMap::new(),
                Bytes::new(),
                CALL_TIMEOUT,
                MAX_SMALL_ANSWER,
            )
            .await?;
        if a.status != StatusCode::OK {
            return Err(AgentError::StartingFailed(format!(
                "agent {}: /v1/state: HTTP {}",
                self.base, a.status
            )));
        }
        serde_json::from_slice(&a.body)
            .map_err(|e| AgentError::StartingFailed(format!("agent {}: /v1/state: {e}", self.base)))
    }
}
