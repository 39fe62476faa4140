//! A thin HTTP client of hearth's public API (the client commands never touch SQLite).

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters kept as-is in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Percent-encodes a path segment (function names may be ARNs with `:`).
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A response as the commands need it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// `Err` with `Type: message` for a Lambda error response.
    pub fn ok(self) -> anyhow::Result<Reply> {
        if self.status.is_success() {
            return Ok(self);
        }
        let kind = self
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("Error")
            .to_string();
        let msg = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("Message"))
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        anyhow::bail!("{kind} (HTTP {}): {msg}", self.status.as_u16())
    }
}

/// Client bound to one endpoint.
pub struct Client {
    endpoint: String,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(endpoint: &str) -> anyhow::Result<Client> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !endpoint.starts_with("http://") {
            anyhow::bail!("endpoint {endpoint:?} must be an http:// URL");
        }
        Ok(Client {
            endpoint,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = self.http.request(req.body(Full::new(body))?).await.map_err(|e| {
            anyhow::anyhow!("cannot reach hearth at {}: {e} (is `hearth serve` running? set --endpoint or HEARTH_ENDPOINT)", self.endpoint)
        })?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let reply = self
            .send(
                method,
                path,
                &[("content-type", "application/json".into())],
                body,
            )
            .await?
            .ok()?;
        if reply.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        Ok(serde_json::from_slice(&reply.body)?)
    }
}
