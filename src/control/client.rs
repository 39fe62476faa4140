//! The `ControlClient` seam (DESIGN.md "Seams"): everything the router needs from the control
//! service. [`InProcess`] calls [`Control`] directly (`hearth serve`); the HTTP implementation
//! ([`super::http_client::HttpControl`]) calls a `hearth control` process over HTTP/2.
//!
//! What crosses the seam: the metadata reads of the resolve and admit phases and of function
//! URLs, the change feed (asking for changes after `REV` acknowledges `REV`), route
//! acknowledgements, the public paths control owns (management, limits, code, queue reads,
//! through [`public`]), and event acceptance.

use super::{Action, Control, Reply};
use crate::api::types::{AliasConfiguration, FunctionUrlConfig};
use crate::api::{ApiError, VersionDescriptor};
use crate::events::{Acceptor, AsyncEvent};
use crate::router::resolve::FunctionLimits;
use crate::store::resources::kind;
use bytes::Bytes;
use http::{HeaderValue, Method, Response};
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub type Resp = Response<Full<Bytes>>;

/// More change-feed entries than this in one answer mean a gap (the follower flushes).
pub const MAX_CHANGES: u64 = 10_000;

/// One answer of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    /// The revision the answer brings the follower to.
    pub rev: u64,
    /// The keys (function names of the tenant) changed after the asked revision; `None` is a
    /// gap (too many, or no longer kept): flush everything.
    pub keys: Option<Vec<String>>,
}

/// A request on one of the public paths the control service owns (management API, function
/// limits, code packages, queue reads), with its body already read within the path's limit.
#[derive(Debug, Clone)]
pub struct PublicRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Bytes,
    /// The public base URL (`FunctionUrl`, `Code.Location`).
    pub base_url: String,
}

/// What the router needs from the control service.
#[async_trait::async_trait]
pub trait ControlClient: Send + Sync {
    /// The tenant (account id) and region (configuration, no call).
    fn account(&self) -> &str;
    fn region(&self) -> &str;
    /// The routable descriptor of `name` at `version` (`$LATEST` or a number); 409 while the
    /// function is not in service, 404 when unknown.
    async fn routable(&self, name: &str, version: &str) -> Result<VersionDescriptor, ApiError>;
    async fn alias(&self, name: &str, alias: &str) -> Result<AliasConfiguration, ApiError>;
    /// Reserved concurrency and rate override of a function.
    async fn function_limits(&self, name: &str) -> Result<FunctionLimits, ApiError>;
    /// The tenant's sum of reserved concurrency.
    async fn reserved_total(&self) -> Result<u64, ApiError>;
    async fn url_config(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<FunctionUrlConfig>, ApiError>;
    /// `Ok` when the function exists.
    async fn function_exists(&self, name: &str) -> Result<(), ApiError>;
    /// The change feed: acknowledges `after` for `router`, then answers the changes after it,
    /// waiting up to `wait` for some.
    async fn changes(
        &self,
        router: &str,
        after: u64,
        wait: Duration,
    ) -> Result<ChangeBatch, ApiError>;
    /// The newest change-feed revision when it is known without a request (in process: the
    /// control service's own counter); `None` over HTTP.
    fn known_rev(&self) -> Option<u64> {
        None
    }
    /// A router that stops no longer holds route publications back.
    async fn forget(&self, router: &str);
    /// A public path control owns.
    async fn public(&self, req: PublicRequest) -> Result<Resp, ApiError>;
    /// Stores an asynchronous invocation durably.
    async fn accept_event(&self, event: &AsyncEvent) -> Result<(), ApiError>;
}

/// [`ControlClient`] by direct calls (`hearth serve`, and the control process itself).
pub struct InProcess {
    pub control: Arc<Control>,
    pub events: Acceptor,
}

impl InProcess {
    pub fn new(control: Arc<Control>, events: Acceptor) -> Arc<InProcess> {
        Arc::new(InProcess { control, events })
    }

    /// The changes after `after`, up to the current revision (what the long poll answers).
    pub fn batch_after(&self, after: u64) -> ChangeBatch {
        let rev = *self.control.changes().borrow();
        if rev < after {
            // The follower is ahead of this control service (a different data directory).
            return ChangeBatch { rev, keys: None };
        }
        if rev == after {
            return ChangeBatch {
                rev: after,
                keys: Some(Vec::new()),
            };
        }
        let wanted = rev - after;
        let rows = (wanted <= MAX_CHANGES)
            .then(|| self.control.store().changes_after(after, wanted as usize))
            .and_then(Result::ok)
            .filter(|rows| contiguous(after, rev, rows.iter().map(|c| c.rev)));
        let keys = rows.map(|rows| {
            rows.into_iter()
                .filter(|c| c.tenant == self.control.account())
                .map(|c| c.key)
                .collect()
        });
        ChangeBatch { rev, keys }
    }

    /// Waits until the revision passes `after` or `wait` ends.
    pub async fn wait_after(&self, after: u64, wait: Duration) {
        let mut rx = self.control.changes();
        let _ = tokio::time::timeout(wait, rx.wait_for(|r| *r > after)).await;
    }
}

#[async_trait::async_trait]
impl ControlClient for InProcess {
    fn account(&self) -> &str {
        self.control.account()
    }

    fn region(&self) -> &str {
        self.control.region()
    }

    async fn routable(&self, name: &str, version: &str) -> Result<VersionDescriptor, ApiError> {
        routable(&self.control, name, version)
    }

    async fn alias(&self, name: &str, alias: &str) -> Result<AliasConfiguration, ApiError> {
        self.control.alias(name, alias)
    }

    async fn function_limits(&self, name: &str) -> Result<FunctionLimits, ApiError> {
        Ok(FunctionLimits {
            reserved: self.control.reserved_concurrency(name)?,
            rate_per_sec: self.control.rate_override(name)?,
        })
    }

    async fn reserved_total(&self) -> Result<u64, ApiError> {
        reserved_total(&self.control)
    }

    async fn url_config(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Option<FunctionUrlConfig>, ApiError> {
        self.control.url_config(name, qualifier)
    }

    async fn function_exists(&self, name: &str) -> Result<(), ApiError> {
        self.control.lookup(name, None).map(|_| ())
    }

    async fn changes(
        &self,
        router: &str,
        after: u64,
        wait: Duration,
    ) -> Result<ChangeBatch, ApiError> {
        self.control.route_acks().ack(router, after);
        self.wait_after(after, wait).await;
        Ok(self.batch_after(after))
    }

    fn known_rev(&self) -> Option<u64> {
        Some(*self.control.changes().borrow())
    }

    async fn forget(&self, router: &str) {
        self.control.route_acks().forget(router);
    }

    async fn public(&self, req: PublicRequest) -> Result<Resp, ApiError> {
        public(&self.control, &self.events, req).await
    }

    async fn accept_event(&self, event: &AsyncEvent) -> Result<(), ApiError> {
        crate::events::accept(&self.events, event).await
    }
}

/// What the router may serve for a version; a function that exists but is not in service yet
/// is 409, as Lambda answers for a `Pending` function.
pub fn routable(
    control: &Control,
    name: &str,
    version: &str,
) -> Result<VersionDescriptor, ApiError> {
    let route = control.store().route(control.account(), name, version);
    if let Some(v) = route.map_err(|e| ApiError::service(e.to_string()))? {
        return Ok(control.descriptor(&v));
    }
    let qualifier = (version != "$LATEST").then_some(version);
    let reported = control.lookup(name, qualifier)?;
    Err(ApiError::conflict(format!(
        "The operation cannot be performed at this time. The function is currently in the following state: {}",
        reported.config.state
    )))
}

/// The tenant's sum of reserved concurrency.
pub fn reserved_total(control: &Control) -> Result<u64, ApiError> {
    let docs = control
        .store()
        .tenant_resources(control.account(), kind::CONCURRENCY)
        .map_err(|e| ApiError::service(e.to_string()))?;
    Ok(docs
        .iter()
        .filter_map(|(_, _, j)| serde_json::from_str::<serde_json::Value>(j).ok())
        .filter_map(|v| v["ReservedConcurrentExecutions"].as_u64())
        .sum())
}

/// Whether `revs` are exactly `from + 1 ..= to`.
pub fn contiguous(from: u64, to: u64, revs: impl Iterator<Item = u64>) -> bool {
    let mut next = from + 1;
    for r in revs {
        if r != next {
            return false;
        }
        next += 1;
    }
    next == to + 1
}

/// The public paths control owns, in the router's route order.
#[derive(Debug, PartialEq, Eq)]
pub enum PublicPath<'a> {
    Code(&'a str),
    QueueRead(&'a str),
    Limits(&'a str),
    Management,
}

/// Which public path (if any) `path` is.
pub fn public_path<'a>(method: &Method, path: &'a str) -> Option<PublicPath<'a>> {
    if let Some(sha) = path
        .strip_prefix("/hearth/v1/code/")
        .and_then(|s| s.strip_suffix(".zip"))
    {
        Some(PublicPath::Code(sha))
    } else if let Some(name) =
        crate::events::read::read_path(path).filter(|_| method == Method::GET)
    {
        Some(PublicPath::QueueRead(name))
    } else if let Some(name) = path
        .strip_prefix("/hearth/v1/functions/")
        .and_then(|s| s.strip_suffix("/limits"))
    {
        Some(PublicPath::Limits(name))
    } else if super::is_management_path(path) {
        Some(PublicPath::Management)
    } else {
        None
    }
}

/// Serves one public path (the handlers the router of `hearth serve` calls, and what a
/// `hearth control` process answers for a router).
pub async fn public(
    control: &Control,
    events: &Acceptor,
    req: PublicRequest,
) -> Result<Resp, ApiError> {
    match public_path(&req.method, &req.path) {
        Some(PublicPath::Code(sha)) => code(control, sha),
        Some(PublicPath::QueueRead(name)) => {
            let r = crate::events::read::parse_read(name, &req.query)?;
            let body = crate::events::read::read(&events.queue, r).await?;
            Ok(json_response(
                http::StatusCode::OK,
                Bytes::from(body.to_string()),
            ))
        }
        Some(PublicPath::Limits(name)) => {
            let name = super::decode_segment(name)?;
            let reply = match req.method {
                Method::PUT => control.put_limits(&name, &req.body)?,
                Method::GET => control.get_limits(&name)?,
                Method::DELETE => control.delete_limits(&name)?,
                m => {
                    return Err(ApiError::method_not_allowed(format!(
                        "{m} is not allowed on function limits"
                    )));
                }
            };
            Ok(reply_response(reply))
        }
        Some(PublicPath::Management) => {
            let action = Action::parse(&req.method, &req.path, &req.query, control.account())?;
            let reply = control.handle(action, req.body, &req.base_url).await?;
            Ok(reply_response(reply))
        }
        None => Err(ApiError::unknown_operation(format!(
            "Unknown operation: {} {}",
            req.method, req.path
        ))),
    }
}

fn code(control: &Control, sha: &str) -> Result<Resp, ApiError> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("No such code package"));
    }
    let zip = control
        .code_store()
        .get(sha)
        .map_err(|_| ApiError::not_found("No such code package"))?;
    let mut resp = Response::new(Full::new(Bytes::from(zip)));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/zip"));
    Ok(resp)
}

fn json_response(status: http::StatusCode, body: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

/// A management reply as a response.
pub fn reply_response(reply: Reply) -> Resp {
    let body = reply
        .body
        .map(|b| Bytes::from(b.to_string()))
        .unwrap_or_default();
    json_response(reply.status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_revisions() {
        assert!(contiguous(3, 5, [4, 5].into_iter()));
        assert!(!contiguous(3, 5, [4].into_iter()));
        assert!(!contiguous(3, 5, [5].into_iter()));
        assert!(!contiguous(3, 5, [4, 6].into_iter()));
        assert!(contiguous(3, 3, [].into_iter()));
    }

    #[test]
    fn public_paths() {
        let get = Method::GET;
        assert_eq!(
            public_path(&get, "/hearth/v1/code/ab.zip"),
            Some(PublicPath::Code("ab"))
        );
        assert_eq!(
            public_path(&Method::PUT, "/hearth/v1/functions/f/limits"),
            Some(PublicPath::Limits("f"))
        );
        assert_eq!(
            public_path(&get, "/2015-03-31/functions"),
            Some(PublicPath::Management)
        );
        assert_eq!(public_path(&get, "/nope"), None);
    }
}
