//! [`Dispatch`] through a router process (what the delivery workers of `hearth control` use):
//! a synchronous Invoke (`X-Amz-Invocation-Type: RequestResponse`) on the router's public
//! port, so deliveries are resolved, admitted, placed and forwarded exactly like any invoke.
//!
//! How answers map onto the workers' retry semantics: `200` is a run (a function error is
//! `X-Amz-Function-Error`); `429` and `5xx` (throttles, no capacity, platform errors) and a
//! router that cannot be reached are [`DispatchError::Retry`] (no attempt used up); any other
//! `4xx` (function or qualifier gone) is [`DispatchError::Gone`]. The one ambiguity: a
//! connection lost after the request went out may have run the function, which then runs
//! again (at least once, as Lambda's own delivery).

use super::AsyncEvent;
use super::worker::{Delivered, Dispatch, DispatchError};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// Time a delivery gets beyond the longest function timeout (900 s).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(915);

/// Delivers through the router at `base`.
pub struct HttpDispatch {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    max_answer: usize,
}

impl HttpDispatch {
    pub fn new(base: &str, max_payload: usize) -> HttpDispatch {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        HttpDispatch {
            base: base.trim_end_matches('/').to_string(),
            client,
            max_answer: max_payload + 1024 * 1024,
        }
    }

    fn request(
        &self,
        event: &AsyncEvent,
        payload: Bytes,
    ) -> Result<Request<Full<Bytes>>, DispatchError> {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut uri = format!(
            "{}/2015-03-31/functions/{}/invocations",
            self.base,
            enc(&event.function_name)
        );
        if let Some(q) = &event.qualifier {
            uri.push_str(&format!("?Qualifier={}", enc(q)));
        }
        let mut req = Request::new(Full::new(payload));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri
            .parse()
            .map_err(|e| DispatchError::Gone(format!("function name makes no URI: {e}")))?;
        let h = req.headers_mut();
        h.insert(
            "x-amz-invocation-type",
            HeaderValue::from_static("RequestResponse"),
        );
        if let Some(t) = event
            .trace_id
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            h.insert("x-amzn-trace-id", t);
        }
        Ok(req)
    }
}

#[async_trait::async_trait]
impl Dispatch for HttpDispatch {
    async fn dispatch(
        &self,
        event: &AsyncEvent,
        payload: Bytes,
    ) -> Result<Delivered, DispatchError> {
        let req = self.request(event, payload)?;
        let retry = |e: String| DispatchError::Retry(format!("router: {e}"));
        let answer = tokio::time::timeout(DELIVERY_TIMEOUT, async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| retry(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, self.max_answer)
                .collect()
                .await
                .map_err(|e| retry(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, DispatchError>((parts, body))
        })
        .await
        .map_err(|_| retry("no answer in time".into()))??;
        let (parts, body) = answer;
        let header = |k: &str| parts.headers.get(k).and_then(|v| v.to_str().ok());
        classify(parts.status, header("x-amzn-errortype").unwrap_or(""))?;
        Ok(Delivered {
            function_error: header("x-amz-function-error").map(|_| "Unhandled"),
            executed_version: header("x-amz-executed-version")
                .unwrap_or("$LATEST")
                .to_string(),
            body,
        })
    }
}

/// What a router's answer status means for the delivery.
fn classify(status: StatusCode, error_type: &str) -> Result<(), DispatchError> {
    if status.is_success() {
        Ok(())
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(DispatchError::Retry(format!("{status} {error_type}")))
    } else {
        Err(DispatchError::Gone(format!("{status} {error_type}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_onto_retries() {
        assert!(classify(StatusCode::OK, "").is_ok());
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
            Err(DispatchError::Retry(_))
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, ""),
            Err(DispatchError::Retry(_))
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, "ResourceNotFoundException"),
            Err(DispatchError::Gone(_))
        ));
        assert!(matches!(
            classify(StatusCode::CONFLICT, "ResourceConflictException"),
            Err(DispatchError::Gone(_))
        ));
    }
}
