//! Lambda service errors and the one place they become HTTP responses.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// Longest message kept from an error another process answered.
const MAX_WIRE_MESSAGE: usize = 4096;

/// Every `x-amzn-ErrorType` hearth answers.
const KNOWN_TYPES: &[&str] = &[
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "MethodNotAllowedException",
    "PreconditionFailedException",
    "ProvisionedConcurrencyConfigNotFoundException",
    "RequestTooLargeException",
    "ResourceConflictException",
    "ResourceNotFoundException",
    "ServiceException",
    "TooEarlyException",
    "TooManyRequestsException",
    "UnknownOperationException",
    "UnsupportedMediaTypeException",
];

/// Every 429 `Reason` hearth answers.
const KNOWN_REASONS: &[&str] = &[
    "ReservedFunctionConcurrentInvocationLimitExceeded",
    "ConcurrentInvocationLimitExceeded",
    "FunctionInvocationRateLimitExceeded",
    "CallerRateLimitExceeded",
];

/// A Lambda service error: HTTP status, `x-amzn-ErrorType`, message, and for 429 a `Reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
    /// `Reason` of a 429 TooManyRequestsException.
    pub reason: Option<&'static str>,
    /// `Retry-After` seconds of a 429 (at least 1).
    pub retry_after_secs: u32,
}

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type,
            message: message.into(),
            reason: None,
            retry_after_secs: 1,
        }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        )
    }
    pub fn invalid_content(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            message,
        )
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ResourceConflictException", message)
    }
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException",
            message,
        )
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            message,
        )
    }
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaTypeException",
            message,
        )
    }
    pub fn too_many_requests(reason: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            message,
        );
        e.reason = Some(reason);
        e
    }
    /// The same error with `Retry-After: secs` (at least 1).
    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = secs.max(1);
        self
    }
    /// 404 `ProvisionedConcurrencyConfigNotFoundException`.
    pub fn new_provisioned_not_found(message: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ProvisionedConcurrencyConfigNotFoundException",
            message,
        )
    }
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "UnknownOperationException", message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowedException",
            message,
        )
    }
    /// 425: a non-idempotent request arrived in QUIC 0-RTT data before the handshake was
    /// confirmed (RFC 8470).
    pub fn too_early(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_EARLY, "TooEarlyException", message)
    }
    pub fn service(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            message,
        )
    }

    /// An error another hearth process answered (status, `x-amzn-ErrorType`, body message),
    /// as the same error here. Unknown types become `ServiceException` with the type in the
    /// message; a 429 keeps its `Reason` when it is one hearth gives.
    pub fn from_wire(
        status: StatusCode,
        error_type: &str,
        message: &str,
        reason: Option<&str>,
    ) -> Self {
        let message: String = message.chars().take(MAX_WIRE_MESSAGE).collect();
        let Some(known) = KNOWN_TYPES.iter().find(|t| **t == error_type) else {
            let ty: String = error_type.chars().take(64).collect();
            return Self::service(format!("{ty} ({status}): {message}"));
        };
        let mut e = Self::new(status, known, message);
        e.reason = reason.and_then(|r| KNOWN_REASONS.iter().find(|k| **k == r).copied());
        e
    }

    /// Who is at fault, for the body's `Type` field.
    fn fault(&self) -> &'static str {
        if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        }
    }

    /// The HTTP response: JSON body `{"Type","message"[,"Reason"]}` and `x-amzn-ErrorType`.
    pub fn to_response(&self, request_id: &str) -> Response<Full<Bytes>> {
        let mut body = serde_json::json!({ "Type": self.fault(), "message": self.message });
        if let Some(reason) = self.reason {
            body["Reason"] = reason.into();
        }
        let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.error_type),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-amzn-requestid", v);
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            h.insert("retry-after", HeaderValue::from(self.retry_after_secs));
        }
        resp
    }
}

/// What a function URL answers when it cannot give the function's own response. Function
/// URLs answer like Lambda's URL front end, not with the Invoke API's error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No URL config for this function and qualifier (or no such function): 404.
    #[error("no function URL here")]
    NotFound,
    /// `AuthType: AWS_IAM`: hearth does not verify SigV4 signatures yet: 403.
    #[error("AWS_IAM function URLs are not served")]
    IamNotSupported,
    /// The request (its body, or the event it becomes) exceeds the sync payload limit: 413.
    #[error("request larger than {0} bytes")]
    TooLarge(usize),
    /// The function failed, or its result is not a valid URL response: 502.
    #[error("bad gateway: {0}")]
    BadGateway(String),
}

impl UrlError {
    /// The HTTP response (the request id is added by the respond phase).
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        let (status, body, content_type) = match self {
            UrlError::NotFound => (StatusCode::NOT_FOUND, r#"{"Message":null}"#.to_string(), "application/json"),
            UrlError::IamNotSupported => (
                StatusCode::FORBIDDEN,
                serde_json::json!({ "Message": "Forbidden. hearth does not verify SigV4 signatures yet, so AuthType AWS_IAM URLs refuse every request; use AuthType NONE." }).to_string(),
                "application/json",
            ),
            UrlError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({ "Message": format!("Request must be smaller than {limit} bytes for the InvokeFunction operation") }).to_string(),
                "application/json",
            ),
            UrlError::BadGateway(_) => (StatusCode::BAD_GATEWAY, "Internal Server Error".to_string(), "text/plain"),
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static(content_type));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_error_shapes() {
        assert_eq!(UrlError::NotFound.to_response().status(), 404);
        assert_eq!(UrlError::IamNotSupported.to_response().status(), 403);
        assert_eq!(UrlError::TooLarge(1).to_response().status(), 413);
        let r = UrlError::BadGateway("x".into()).to_response();
        assert_eq!(r.status(), 502);
        assert_eq!(r.headers()["content-type"], "text/plain");
    }

    #[test]
    fn response_shape() {
        let r = ApiError::not_found("Function not found: x").to_response("rid");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-amzn-errortype"], "ResourceNotFoundException");
        assert_eq!(r.headers()["x-amzn-requestid"], "rid");
    }

    #[test]
    fn from_wire_keeps_known_types_only() {
        let e = ApiError::from_wire(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "gone",
            None,
        );
        assert_eq!(e, ApiError::not_found("gone"));
        let e = ApiError::from_wire(StatusCode::IM_A_TEAPOT, "Evil\r\nType", "x", Some("nope"));
        assert_eq!(e.error_type, "ServiceException");
        assert_eq!(e.reason, None);
        let e = ApiError::from_wire(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            &"m".repeat(10_000),
            Some("CallerRateLimitExceeded"),
        );
        assert_eq!(e.reason, Some("CallerRateLimitExceeded"));
        assert_eq!(e.message.len(), MAX_WIRE_MESSAGE);
    }

    #[test]
    fn throttle_has_reason_and_retry_after() {
        let r = ApiError::too_many_requests("ConcurrentInvocationLimitExceeded", "Rate Exceeded.")
            .to_response("r");
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
    }
}
