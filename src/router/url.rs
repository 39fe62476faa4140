//! Function URLs: `/fn/{name}[:{qualifier}]/{rest}` (any method). The request becomes a
//! payload format 2.0 event (`rawPath` is `/{rest}`), the function runs through the same
//! invoke path as the Invoke API, and its result becomes the HTTP response (`statusCode`,
//! `headers`, `cookies`, `body`, `isBase64Encoded`, or the plain-JSON shortcut). CORS comes
//! from the URL config; preflights are answered here without invoking.
//!
//! The parsers ([`url_path`], [`build_event`], [`http_response`]) are pure and fuzzed by
//! `fuzz/fuzz_targets/url_event.rs`.

use super::{Resp, Router};
use crate::api::types::{Cors, FunctionUrlConfig};
use crate::api::{ApiError, UrlError};
use base64::Engine;
use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};
use std::time::SystemTime;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A function URL path split into the function segment (`name` or `name:qualifier`, still
/// percent-encoded) and the event's `rawPath`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPath<'a> {
    pub function: &'a str,
    pub raw_path: &'a str,
}

/// Matches `/fn/{function}` and `/fn/{function}/{rest}`.
pub fn url_path(path: &str) -> Option<UrlPath<'_>> {
    let rest = path.strip_prefix("/fn/")?;
    let (function, raw_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!function.is_empty()).then_some(UrlPath { function, raw_path })
}

/// The function name and qualifier of a URL's function segment; `None` when it cannot name a
/// function (so no URL config can exist for it).
pub fn url_target(segment: &str) -> Option<(String, Option<String>)> {
    let decoded = crate::control::decode_segment(segment).ok()?;
    let (name, qualifier) = match decoded.split_once(':') {
        Some((n, q)) => (n.to_string(), Some(q.to_string())),
        None => (decoded, None),
    };
    let ok = crate::api::names::valid_name(&name)
        && qualifier
            .as_deref()
            .is_none_or(|q| q != "$LATEST" && crate::api::names::valid_qualifier(q));
    ok.then_some((name, qualifier))
}

/// What the event is built from (everything but the body comes from the request head).
pub struct EventInput<'a> {
    pub method: &'a Method,
    pub raw_path: &'a str,
    pub query: &'a str,
    pub version: http::Version,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    pub request_id: &'a str,
    pub account: &'a str,
    pub now: SystemTime,
}

/// The payload format 2.0 event as JSON bytes; larger than `limit` is 413.
pub fn build_event(i: &EventInput<'_>, limit: usize) -> Result<Bytes, UrlError> {
    if i.body.len() > limit {
        return Err(UrlError::TooLarge(limit));
    }
    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    event.insert("routeKey".into(), "$default".into());
    event.insert("rawPath".into(), i.raw_path.into());
    event.insert("rawQueryString".into(), i.query.into());
    let cookies = cookies(i.headers);
    if !cookies.is_empty() {
        event.insert("cookies".into(), cookies.into());
    }
    event.insert("headers".into(), Value::Object(headers(i.headers)));
    if let Some(q) = query_parameters(i.query) {
        event.insert("queryStringParameters".into(), Value::Object(q));
    }
    event.insert("requestContext".into(), request_context(i));
    let (body, is_b64) = event_body(i.headers, i.body);
    if let Some(b) = body {
        event.insert("body".into(), b.into());
    }
    event.insert("isBase64Encoded".into(), is_b64.into());
    let bytes = serde_json::to_vec(&Value::Object(event)).map_err(|_| UrlError::TooLarge(limit))?;
    if bytes.len() > limit {
        return Err(UrlError::TooLarge(limit));
    }
    Ok(Bytes::from(bytes))
}

/// Header values as text (bytes outside UTF-8 are replaced).
fn text(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// Every header but `cookie` (it becomes `cookies`), lower-case names, repeats comma-joined.
fn headers(h: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for name in h.keys().filter(|n| *n != http::header::COOKIE) {
        let joined: Vec<String> = h.get_all(name).iter().map(text).collect();
        out.insert(name.as_str().to_string(), joined.join(",").into());
    }
    out
}

/// The `Cookie` headers split into single cookies.
fn cookies(h: &HeaderMap) -> Vec<Value> {
    h.get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| {
            text(v)
                .split(';')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .map(Value::from)
        .collect()
}

fn decode_query_part(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Decoded query parameters, repeats comma-joined; `None` when there are none.
fn query_parameters(query: &str) -> Option<Map<String, Value>> {
    let mut out: Map<String, Value> = Map::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let (k, v) = (decode_query_part(k), decode_query_part(v));
        match out.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                out.insert(k, v.into());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn request_context(i: &EventInput<'_>) -> Value {
    let header = |n: &str| i.headers.get(n).map(text).unwrap_or_default();
    let domain = header("host");
    let prefix = domain.split(['.', ':']).next().unwrap_or("").to_string();
    let epoch_ms = i
        .now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    serde_json::json!({
        "accountId": i.account,
        "apiId": prefix,
        "domainName": domain,
        "domainPrefix": prefix,
        "http": {
            "method": i.method.as_str(),
            "path": i.raw_path,
            "protocol": format!("{:?}", i.version),
            "sourceIp": i.source_ip,
            "userAgent": header("user-agent"),
        },
        "requestId": i.request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": clf_time(i.now),
        "timeEpoch": epoch_ms,
    })
}

/// `12/Mar/2020:19:03:58 +0000`.
fn clf_time(t: SystemTime) -> String {
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::from(t).format(&f).unwrap_or_default()
}

/// Whether a content type is sent to the function as text.
pub fn is_text_type(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || [
            "application/json",
            "application/xml",
            "application/javascript",
            "application/x-www-form-urlencoded",
            "application/graphql",
            "application/yaml",
        ]
        .contains(&mime.as_str())
}

/// The event's `body` and `isBase64Encoded`: text content types as text (when UTF-8),
/// everything else base64; no body field for an empty body.
fn event_body(h: &HeaderMap, body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let text_type = h
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| is_text_type(&text(v)));
    match std::str::from_utf8(body) {
        Ok(s) if text_type => (Some(s.to_string()), false),
        _ => (Some(B64.encode(body)), true),
    }
}

/// Headers a function may not set (hearth frames the response itself).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn bad(why: impl Into<String>) -> UrlError {
    UrlError::BadGateway(why.into())
}

/// The function's result as the HTTP response: an object with `statusCode` is a response
/// description; any other JSON is the plain-JSON shortcut (200, `application/json`).
pub fn http_response(result: &[u8]) -> Result<Resp, UrlError> {
    let value: Value = serde_json::from_slice(result)
        .map_err(|e| bad(format!("function result is not JSON: {e}")))?;
    match value {
        Value::Object(o) if o.contains_key("statusCode") => described(o),
        _ => {
            let mut r = Response::new(Full::new(Bytes::copy_from_slice(result)));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
    }
}

/// `{statusCode, headers, cookies, body, isBase64Encoded}` as a response.
fn described(o: Map<String, Value>) -> Result<Resp, UrlError> {
    let status = o["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .ok_or_else(|| bad("statusCode must be an HTTP status"))?;
    let body = match o.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let body = match o.get("isBase64Encoded") {
        Some(Value::Bool(true)) => B64
            .decode(body.as_bytes())
            .map_err(|e| bad(format!("body is not base64: {e}")))?,
        None | Some(Value::Bool(false)) | Some(Value::Null) => body.into_bytes(),
        Some(_) => return Err(bad("isBase64Encoded must be a boolean")),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    response_headers(r.headers_mut(), o.get("headers"))?;
    set_cookies(r.headers_mut(), o.get("cookies"))?;
    Ok(r)
}

fn response_headers(out: &mut HeaderMap, headers: Option<&Value>) -> Result<(), UrlError> {
    let Some(headers) = headers.filter(|h| !h.is_null()) else {
        return Ok(());
    };
    let headers = headers
        .as_object()
        .ok_or_else(|| bad("headers must be an object"))?;
    for (k, v) in headers {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => return Err(bad(format!("header {k:?} must be a string"))),
        };
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| bad(format!("{k:?} is not a header name")))?;
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_str(&v)
            .map_err(|_| bad(format!("header {k:?} has a value that is not valid")))?;
        out.insert(name, value);
    }
    Ok(())
}

fn set_cookies(out: &mut HeaderMap, cookies: Option<&Value>) -> Result<(), UrlError> {
    let Some(cookies) = cookies.filter(|c| !c.is_null()) else {
        return Ok(());
    };
    let cookies = cookies
        .as_array()
        .ok_or_else(|| bad("cookies must be an array"))?;
    for c in cookies {
        let value = c
            .as_str()
            .and_then(|s| HeaderValue::from_str(s).ok())
            .ok_or_else(|| bad("a cookie is not a valid Set-Cookie value"))?;
        out.append(http::header::SET_COOKIE, value);
    }
    Ok(())
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(method: &Method, h: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && h.contains_key(http::header::ORIGIN)
        && h.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The request's `Origin` when the config allows it.
fn allowed_origin<'a>(cors: &Cors, h: &'a HeaderMap) -> Option<&'a str> {
    let origin = h.get(http::header::ORIGIN)?.to_str().ok()?;
    let origins = cors.allow_origins.as_deref().unwrap_or_default();
    origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
        .then_some(origin)
}

/// `Access-Control-Allow-Origin`: `*` when every origin is allowed without credentials,
/// else the request's origin.
fn allow_origin_value(cors: &Cors, origin: &str) -> Option<HeaderValue> {
    let any = cors.allow_origins.iter().flatten().any(|o| o == "*");
    if any && cors.allow_credentials != Some(true) {
        return Some(HeaderValue::from_static("*"));
    }
    HeaderValue::from_str(origin).ok()
}

fn insert_list(out: &mut HeaderMap, name: HeaderName, list: Option<&[String]>) {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&list.join(",")) {
        out.insert(name, v);
    }
}

/// Answers a preflight from the config: 200, with the allow headers when the origin matches.
pub fn preflight(cors: &Cors, req: &HeaderMap) -> Resp {
    use http::header as h;
    let mut r = Response::new(Full::new(Bytes::new()));
    let out = r.headers_mut();
    out.insert(h::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = allowed_origin(cors, req) else {
        return r;
    };
    if let Some(v) = allow_origin_value(cors, origin) {
        out.insert(h::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    let echo = |n: &HeaderName| req.get(n).cloned();
    let methods = cors.allow_methods.as_deref();
    match methods.filter(|m| m.iter().any(|x| x == "*")) {
        Some(_) => {
            if let Some(m) = echo(&h::ACCESS_CONTROL_REQUEST_METHOD) {
                out.insert(h::ACCESS_CONTROL_ALLOW_METHODS, m);
            }
        }
        None => insert_list(out, h::ACCESS_CONTROL_ALLOW_METHODS, methods),
    }
    let headers = cors.allow_headers.as_deref();
    match headers.filter(|l| l.iter().any(|x| x == "*")) {
        Some(_) => {
            if let Some(v) = echo(&h::ACCESS_CONTROL_REQUEST_HEADERS) {
                out.insert(h::ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        None => insert_list(out, h::ACCESS_CONTROL_ALLOW_HEADERS, headers),
    }
    if let Some(age) = cors.max_age {
        out.insert(h::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    if cors.allow_credentials == Some(true) {
        out.insert(
            h::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    r
}

/// Adds the CORS headers of the config to an actual response when the origin matches (they
/// replace any the function set).
pub fn apply_cors(cors: &Cors, req: &HeaderMap, resp: &mut Resp) {
    use http::header as h;
    let Some(origin) = allowed_origin(cors, req) else {
        return;
    };
    let out = resp.headers_mut();
    if let Some(v) = allow_origin_value(cors, origin) {
        out.insert(h::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    insert_list(
        out,
        h::ACCESS_CONTROL_EXPOSE_HEADERS,
        cors.expose_headers.as_deref(),
    );
    if cors.allow_credentials == Some(true) {
        out.insert(
            h::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    out.append(h::VARY, HeaderValue::from_static("Origin"));
}

/// The URL config of a function and qualifier, or `None` (the lookup the metadata cache will
/// take over). Store failures stay errors; anything else that cannot name a URL is `None`.
async fn lookup(
    router: &Router,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Option<FunctionUrlConfig>, ApiError> {
    match router.control.url_config(name, qualifier).await {
        Ok(c) => Ok(c),
        Err(e) if e.status.is_server_error() => Err(e),
        Err(_) => Ok(None),
    }
}

impl Router {
    /// Serves one function URL request (route phase matched `/fn/…`).
    pub(super) async fn function_url(
        &self,
        req: Request<crate::router::Body>,
        path: UrlPath<'_>,
        request_id: &str,
    ) -> Result<Resp, ApiError> {
        let Some((name, qualifier)) = url_target(path.function) else {
            return Ok(UrlError::NotFound.to_response());
        };
        let Some(config) = lookup(self, &name, qualifier.as_deref()).await? else {
            return Ok(UrlError::NotFound.to_response());
        };
        if config.auth_type != "NONE" {
            return Ok(UrlError::IamNotSupported.to_response());
        }
        let cors = config.cors.unwrap_or_default();
        if config_has_cors(&cors) && is_preflight(req.method(), req.headers()) {
            return Ok(preflight(&cors, req.headers()));
        }
        let head = req.headers().clone();
        let mut resp = match self
            .url_invoke(req, path.raw_path, &name, qualifier.as_deref(), request_id)
            .await?
        {
            Ok(r) => r,
            Err(e) => {
                if let UrlError::BadGateway(why) = &e {
                    tracing::debug!(%request_id, function = %name, why, "function URL: 502");
                }
                e.to_response()
            }
        };
        apply_cors(&cors, &head, &mut resp);
        Ok(resp)
    }

    /// Builds the event, invokes (the Invoke API's path), and maps the result. The outer
    /// error is a platform answer (throttle, not ready), the inner one a URL answer.
    async fn url_invoke(
        &self,
        req: Request<crate::router::Body>,
        raw_path: &str,
        name: &str,
        qualifier: Option<&str>,
        request_id: &str,
    ) -> Result<Result<Resp, UrlError>, ApiError> {
        let source_ip = req
            .extensions()
            .get::<super::http::RemoteAddr>()
            .map(|a| a.0.ip().to_string())
            .unwrap_or_default();
        let (parts, body) = req.into_parts();
        let mut body = Request::new(body);
        if let Some(len) = parts.headers.get(http::header::CONTENT_LENGTH) {
            body.headers_mut()
                .insert(http::header::CONTENT_LENGTH, len.clone());
        }
        let body = match Self::read_body(body, self.max_payload).await {
            Ok(b) => b,
            Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
                return Ok(Err(UrlError::TooLarge(self.max_payload)));
            }
            Err(e) => return Err(e),
        };
        let mut headers = parts.headers;
        // HTTP/2 carries the host as `:authority`; the event shows it as `host`, as on HTTP/1.1.
        if let Some(a) = parts
            .uri
            .authority()
            .filter(|_| !headers.contains_key(HOST))
            && let Ok(v) = HeaderValue::from_str(a.as_str())
        {
            headers.insert(HOST, v);
        }
        let input = EventInput {
            method: &parts.method,
            raw_path,
            query: parts.uri.query().unwrap_or(""),
            version: parts.version,
            headers: &headers,
            body: &body,
            source_ip,
            request_id,
            account: self.control.account(),
            now: SystemTime::now(),
        };
        let event = match build_event(&input, self.max_payload) {
            Ok(e) => e,
            Err(e) => return Ok(Err(e)),
        };
        let invoke = self
            .invoke_request(name, qualifier, event, request_id, None)
            .await?;
        let out = self.run(invoke).await?;
        if let Some(fe) = out.function_error {
            return Ok(Err(bad(format!("function error ({fe})"))));
        }
        Ok(http_response(&out.body))
    }
}

/// Whether the URL config has any CORS setting (without one, `OPTIONS` goes to the function).
fn config_has_cors(c: &Cors) -> bool {
    c.allow_origins.as_deref().is_some_and(|o| !o.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        method: &'a Method,
        headers: &'a HeaderMap,
        query: &'a str,
        body: &'a [u8],
    ) -> EventInput<'a> {
        EventInput {
            method,
            raw_path: "/a/b",
            query,
            version: http::Version::HTTP_11,
            headers,
            body,
            source_ip: "10.1.2.3".into(),
            request_id: "rid",
            account: "000000000000",
            now: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_584_039_838),
        }
    }

    fn event(i: &EventInput<'_>) -> Value {
        serde_json::from_slice(&build_event(i, 1 << 20).unwrap()).unwrap()
    }

    #[test]
    fn paths() {
        let p = url_path("/fn/f:live/x/y").unwrap();
        assert_eq!((p.function, p.raw_path), ("f:live", "/x/y"));
        assert_eq!(url_path("/fn/f").unwrap().raw_path, "/");
        assert_eq!(url_path("/fn/f/").unwrap().raw_path, "/");
        assert!(url_path("/fn/").is_none() && url_path("/fn//x").is_none());
        assert!(url_path("/fnx/f").is_none());
        assert_eq!(
            url_target("f%3Alive"),
            Some(("f".into(), Some("live".into())))
        );
        assert_eq!(url_target("f"), Some(("f".into(), None)));
        for bad in ["f:", "f:$LATEST", "a b", "f:x:y", "%ff"] {
            assert_eq!(url_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn event_shape() {
        let mut h = HeaderMap::new();
        h.append("x-multi", HeaderValue::from_static("a"));
        h.append("x-multi", HeaderValue::from_static("b"));
        h.append("cookie", HeaderValue::from_static("c1=1; c2=2"));
        h.append("cookie", HeaderValue::from_static("c3=3"));
        h.insert("host", HeaderValue::from_static("abc.example.com:8080"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let m = Method::POST;
        let e = event(&input(&m, &h, "a=1&b=x%20y&a=2&c", b"{\"k\":1}"));
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawPath"], "/a/b");
        assert_eq!(e["rawQueryString"], "a=1&b=x%20y&a=2&c");
        assert_eq!(e["headers"]["x-multi"], "a,b");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["cookies"], serde_json::json!(["c1=1", "c2=2", "c3=3"]));
        assert_eq!(
            e["queryStringParameters"],
            serde_json::json!({"a":"1,2","b":"x y","c":""})
        );
        let rc = &e["requestContext"];
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["sourceIp"], "10.1.2.3");
        assert_eq!(rc["http"]["protocol"], "HTTP/1.1");
        assert_eq!(rc["domainPrefix"], "abc");
        assert_eq!(rc["time"], "12/Mar/2020:19:03:58 +0000");
        assert_eq!(rc["timeEpoch"], 1_584_039_838_000u64);
        assert_eq!(e["body"], "{\"k\":1}");
        assert_eq!(e["isBase64Encoded"], false);
    }

    #[test]
    fn binary_and_empty_bodies() {
        let m = Method::GET;
        let h = HeaderMap::new();
        let e = event(&input(&m, &h, "", b""));
        assert!(e.get("body").is_none() && e.get("queryStringParameters").is_none());
        let e = event(&input(&m, &h, "", b"plain"));
        assert_eq!(
            (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
            (Some("cGxhaW4="), Some(true))
        );
        let mut t = HeaderMap::new();
        t.insert(
            "content-type",
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let e = event(&input(&m, &t, "", &[0xff, 0xfe]));
        assert_eq!(
            e["isBase64Encoded"], true,
            "invalid UTF-8 goes base64 even for text"
        );
        let big = vec![b'x'; 100];
        let i = input(&m, &t, "", &big);
        assert_eq!(build_event(&i, 99), Err(UrlError::TooLarge(99)));
        assert!(matches!(build_event(&i, 150), Err(UrlError::TooLarge(150))));
    }

    #[test]
    fn hostile_requests() {
        let m = Method::from_bytes(b"WEIRD").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-bin",
            HeaderValue::from_bytes(&[0x80, 0xff, b'a']).unwrap(),
        );
        h.insert("cookie", HeaderValue::from_static(";;; ;"));
        h.insert("host", HeaderValue::from_static(":::"));
        let q = "%zz=%ff&&=&a=%&%%%=1&".to_string() + &"k=v&".repeat(1000);
        let e = event(&input(&m, &h, &q, b""));
        assert_eq!(e["headers"]["x-bin"], "\u{fffd}\u{fffd}a");
        assert!(e.get("cookies").is_none());
        assert_eq!(e["queryStringParameters"]["%zz"], "\u{fffd}");
        assert_eq!(
            e["queryStringParameters"]["k"].as_str().unwrap().len(),
            1999
        );
        assert_eq!(e["requestContext"]["http"]["method"], "WEIRD");
        assert_eq!(e["requestContext"]["domainPrefix"], "");
        // A query that blows the event past the limit is refused, not truncated.
        let big = "a=b&".repeat(300_000);
        assert_eq!(
            build_event(&input(&m, &h, &big, b""), 1 << 20),
            Err(UrlError::TooLarge(1 << 20))
        );
    }

    #[test]
    fn responses() {
        let r = http_response(br#"{"statusCode":201,"headers":{"x-a":"1","n":2},"cookies":["a=1","b=2"],"body":"hi"}"#).unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers()["n"], "2");
        assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
        let r =
            http_response(br#"{"statusCode":200,"body":"AAH/","isBase64Encoded":true}"#).unwrap();
        let body = http_body_util::BodyExt::collect(r.into_body());
        let bytes = collect(body);
        assert_eq!(bytes, vec![0, 1, 0xff]);
        let r = http_response(br#"{"message":"hi"}"#).unwrap();
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(http_response(b"null").unwrap().status(), 200);
        for bad in [
            &br#"not json"#[..],
            br#"{"statusCode":"200"}"#,
            br#"{"statusCode":99999}"#,
            br#"{"statusCode":200,"headers":{"x":"a\nb"}}"#,
            br#"{"statusCode":200,"headers":{"bad name":"v"}}"#,
            br#"{"statusCode":200,"headers":[]}"#,
            br#"{"statusCode":200,"cookies":[1]}"#,
            br#"{"statusCode":200,"body":"!!","isBase64Encoded":true}"#,
        ] {
            let e = http_response(bad).unwrap_err();
            assert!(
                matches!(e, UrlError::BadGateway(_)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let r = http_response(br#"{"statusCode":200,"headers":{"content-length":"999","transfer-encoding":"chunked"}}"#).unwrap();
        assert!(r.headers().get("content-length").is_none());
    }

    fn collect(
        f: impl std::future::Future<
            Output = Result<http_body_util::Collected<Bytes>, std::convert::Infallible>,
        >,
    ) -> Vec<u8> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[test]
    fn cors() {
        let cors = Cors {
            allow_origins: Some(vec!["https://a.example".into()]),
            allow_methods: Some(vec!["GET".into(), "POST".into()]),
            allow_headers: Some(vec!["x-custom".into()]),
            expose_headers: Some(vec!["x-out".into()]),
            max_age: Some(60),
            allow_credentials: Some(true),
        };
        let mut h = HeaderMap::new();
        h.insert("origin", HeaderValue::from_static("https://a.example"));
        h.insert(
            "access-control-request-method",
            HeaderValue::from_static("POST"),
        );
        assert!(is_preflight(&Method::OPTIONS, &h) && !is_preflight(&Method::GET, &h));
        let r = preflight(&cors, &h);
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://a.example"
        );
        assert_eq!(r.headers()["access-control-allow-methods"], "GET,POST");
        assert_eq!(r.headers()["access-control-allow-headers"], "x-custom");
        assert_eq!(r.headers()["access-control-max-age"], "60");
        assert_eq!(r.headers()["access-control-allow-credentials"], "true");
        let mut resp = Response::new(Full::new(Bytes::new()));
        apply_cors(&cors, &h, &mut resp);
        assert_eq!(resp.headers()["access-control-expose-headers"], "x-out");
        h.insert("origin", HeaderValue::from_static("https://evil.example"));
        assert!(
            preflight(&cors, &h)
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        let any = Cors {
            allow_origins: Some(vec!["*".into()]),
            ..Default::default()
        };
        assert_eq!(
            preflight(&any, &h).headers()["access-control-allow-origin"],
            "*"
        );
    }
}
