//! The Lambda Runtime API of one instance (`127.0.0.1:9001` inside its network namespace),
//! served from the host side on the listener the sandbox driver bound there.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};

/// What the runtime answered for an invocation.
#[derive(Debug)]
pub enum RuntimeReply {
    Response(Bytes),
    Error {
        body: Bytes,
        error_type: Option<String>,
    },
    /// The runtime's response exceeded the limit.
    TooLarge,
}

/// An invocation waiting for the runtime's `/next`.
pub struct Pending {
    pub request_id: String,
    pub payload: Bytes,
    pub invoked_arn: String,
    pub client_context: Option<String>,
    pub trace_id: String,
    pub timeout: Duration,
    /// Told the moment `/next` hands the event over.
    pub delivered: oneshot::Sender<Instant>,
    pub result: oneshot::Sender<RuntimeReply>,
}

struct Current {
    request_id: String,
    result: Option<oneshot::Sender<RuntimeReply>>,
}

/// State shared by the agent and the instance's Runtime API server.
pub struct RuntimeChannel {
    pub next_tx: mpsc::Sender<Pending>,
    next_rx: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    current: Mutex<Option<Current>>,
    /// Set when the runtime reports `/runtime/init/error`.
    pub init_error: watch::Sender<Option<(Bytes, Option<String>)>>,
    /// When the runtime first called `/next` (the end of its cold start).
    pub first_next: watch::Sender<Option<Instant>>,
    /// Called right before an event is handed over (writes the START line).
    pub on_deliver: Box<dyn Fn(&str) + Send + Sync>,
    max_response: usize,
}

impl RuntimeChannel {
    pub fn new(max_response: usize, on_deliver: Box<dyn Fn(&str) + Send + Sync>) -> Arc<Self> {
        let (next_tx, next_rx) = mpsc::channel(1);
        Arc::new(RuntimeChannel {
            next_tx,
            next_rx: tokio::sync::Mutex::new(next_rx),
            current: Mutex::new(None),
            init_error: watch::Sender::new(None),
            first_next: watch::Sender::new(None),
            on_deliver,
            max_response,
        })
    }
}

type Resp = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: serde_json::Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, error_type: &str, message: &str) -> Resp {
    reply(
        status,
        serde_json::json!({ "errorType": error_type, "errorMessage": message }),
    )
}

fn accepted() -> Resp {
    reply(StatusCode::ACCEPTED, serde_json::json!({ "status": "OK" }))
}

/// Serves the Runtime API on `listener` until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, chan: Arc<RuntimeChannel>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let chan = chan.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let chan = chan.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&chan, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

async fn route(chan: &RuntimeChannel, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return error(StatusCode::NOT_FOUND, "InvalidRequest", "unknown path");
    };
    let segs: Vec<&str> = rest.split('/').collect();
    match (req.method().clone(), segs.as_slice()) {
        (Method::GET, ["invocation", "next"]) => next(chan).await,
        (Method::POST, ["invocation", id, "response"]) => {
            let id = id.to_string();
            match read_body(req, chan.max_response).await {
                Ok(body) => finish(chan, &id, RuntimeReply::Response(body)),
                Err(()) => {
                    let _ = finish(chan, &id, RuntimeReply::TooLarge);
                    error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RequestEntityTooLarge",
                        "response too large",
                    )
                }
            }
        }
        (Method::POST, ["invocation", id, "error"]) => {
            let id = id.to_string();
            let error_type = error_type_header(&req);
            let body = read_body(req, chan.max_response).await.unwrap_or_default();
            finish(chan, &id, RuntimeReply::Error { body, error_type })
        }
        (Method::POST, ["init", "error"]) => {
            let error_type = error_type_header(&req);
            let body = read_body(req, chan.max_response).await.unwrap_or_default();
            chan.init_error.send_replace(Some((body, error_type)));
            accepted()
        }
        _ => error(StatusCode::NOT_FOUND, "InvalidRequest", "unknown path"),
    }
}

fn error_type_header(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ()> {
    Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| ())
}

/// Long-polls for the next invocation and hands it over with Lambda's headers.
async fn next(chan: &RuntimeChannel) -> Resp {
    chan.first_next
        .send_if_modified(|t| t.is_none() && t.replace(Instant::now()).is_none());
    let pending = {
        let mut rx = chan.next_rx.lock().await;
        match rx.recv().await {
            Some(p) => p,
            None => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Runtime.Stopped",
                    "instance stopping",
                );
            }
        }
    };
    let deadline = SystemTime::now() + pending.timeout;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    (chan.on_deliver)(&pending.request_id);
    *chan.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Current {
        request_id: pending.request_id.clone(),
        result: Some(pending.result),
    });
    let _ = pending.delivered.send(Instant::now());
    let mut r = Response::new(Full::new(pending.payload));
    let h = r.headers_mut();
    let mut set = |k: &'static str, v: &str| {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    set("content-type", "application/json");
    set("lambda-runtime-aws-request-id", &pending.request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &pending.invoked_arn);
    set("lambda-runtime-trace-id", &pending.trace_id);
    if let Some(cc) = &pending.client_context {
        set("lambda-runtime-client-context", cc);
    }
    r
}

/// Records the runtime's answer for the current invocation (RIE's state checks).
fn finish(chan: &RuntimeChannel, id: &str, outcome: RuntimeReply) -> Resp {
    let mut cur = chan.current.lock().unwrap_or_else(|p| p.into_inner());
    let Some(current) = cur.as_mut() else {
        return error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "no invocation in progress",
        );
    };
    if current.request_id != id {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "unknown request id",
        );
    }
    let Some(tx) = current.result.take() else {
        return error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "invocation already answered",
        );
    };
    let _ = tx.send(outcome);
    accepted()
}
