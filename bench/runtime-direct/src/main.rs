//! `runtime-direct`: the benchmarks' "runtime direct" baseline.
//!
//! Serving mode: listens for client HTTP on `--listen` (any method and path; the request body
//! is the event) and serves a minimal Lambda Runtime API on `--runtime-listen` to
//! `--instances N` bootstrap processes it spawns itself. A client request goes to whichever
//! bootstrap polls `/next` first; that bootstrap's response body is the client's response.
//! No router, no agent, no isolation: what is left is the cost of the runtime itself, the
//! loopback hops and the HTTP parsing, which is what hearth's added latency is measured against.
//!
//! Cold-start mode (`--cold-starts K`): K times, spawn one bootstrap (a bare fork+exec), hand it
//! one event through the Runtime API and time spawn → response; prints a JSON summary and exits.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Largest event or response body (Lambda's synchronous payload limit).
const MAX_BODY: usize = 6 * 1024 * 1024;

const USAGE: &str = "usage: runtime-direct --bootstrap PATH [--listen ADDR] [--runtime-listen ADDR] \
[--instances N] [--ready-file PATH] [--threads N] [--cold-starts K] [--event JSON]";

struct Args {
    bootstrap: PathBuf,
    listen: SocketAddr,
    runtime_listen: SocketAddr,
    instances: usize,
    ready_file: Option<PathBuf>,
    threads: Option<usize>,
    cold_starts: Option<usize>,
    event: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bootstrap: PathBuf::new(),
        listen: "127.0.0.1:0".parse().unwrap(),
        runtime_listen: "127.0.0.1:0".parse().unwrap(),
        instances: 1,
        ready_file: None,
        threads: None,
        cold_starts: None,
        event: "{}".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        let addr = |v: &str| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("{flag}: not ADDR:PORT: {v}"))
        };
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = value.into(),
            "--listen" => a.listen = addr(&value)?,
            "--runtime-listen" => a.runtime_listen = addr(&value)?,
            "--instances" => a.instances = num(&value)?,
            "--ready-file" => a.ready_file = Some(value.into()),
            "--threads" => a.threads = Some(num(&value)?.max(1)),
            "--cold-starts" => a.cold_starts = Some(num(&value)?.max(1)),
            "--event" => a.event = value,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if a.bootstrap.as_os_str().is_empty() {
        return Err(format!("--bootstrap is required\n{USAGE}"));
    }
    Ok(a)
}

/// An event waiting for a bootstrap's `/next`.
struct Pending {
    payload: Bytes,
    reply: oneshot::Sender<Bytes>,
}

/// The Runtime API's state, shared by every bootstrap.
///
/// Hand-over is LIFO, like hearth's instance pools: an event goes to the bootstrap that most
/// recently polled `/next`, so at low concurrency the same (cache-hot) process answers.
struct Runtime {
    queues: Mutex<Queues>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Bytes>>>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Queues {
    /// Events no bootstrap has taken yet (FIFO).
    events: VecDeque<Pending>,
    /// Bootstraps waiting in `/next` (LIFO).
    pollers: Vec<oneshot::Sender<Pending>>,
}

impl Runtime {
    fn new() -> Arc<Runtime> {
        Arc::new(Runtime {
            queues: Mutex::new(Queues::default()),
            in_flight: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event and waits for a bootstrap's answer.
    async fn invoke(&self, payload: Bytes) -> Option<Bytes> {
        let (reply, rx) = oneshot::channel();
        let mut p = Pending { payload, reply };
        loop {
            let mut q = self.queues();
            match q.pollers.pop() {
                Some(poller) => match poller.send(p) {
                    Ok(()) => break,
                    // That poller's connection went away; try the next one.
                    Err(back) => p = back,
                },
                None => {
                    q.events.push_back(p);
                    break;
                }
            }
        }
        rx.await.ok()
    }

    /// Waits for the next event (a bootstrap's `/next`).
    async fn next(&self) -> Option<Pending> {
        let rx = {
            let mut q = self.queues();
            if let Some(p) = q.events.pop_front() {
                return Some(p);
            }
            let (tx, rx) = oneshot::channel();
            q.pollers.push(tx);
            rx
        };
        rx.await.ok()
    }
}

type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

async fn body_of(req: Request<Incoming>) -> Option<Bytes> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .ok()
        .map(|b| b.to_bytes())
}

/// The Runtime API: `/next` and `/<id>/response` (and `/<id>/error`, answered like a response).
async fn runtime_api(rt: Arc<Runtime>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") else {
        return respond(StatusCode::NOT_FOUND, r#"{"errorType":"InvalidRequest"}"#);
    };
    if req.method() == Method::GET && rest == "next" {
        let Some(p) = rt.next().await else {
            return respond(StatusCode::INTERNAL_SERVER_ERROR, "{}");
        };
        let id = format!("rd-{}", rt.next_id.fetch_add(1, Ordering::Relaxed));
        rt.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), p.reply);
        let mut r = respond(StatusCode::OK, p.payload);
        let h = r.headers_mut();
        h.insert(
            "lambda-runtime-aws-request-id",
            http::HeaderValue::from_str(&id).expect("ascii id"),
        );
        h.insert(
            "lambda-runtime-deadline-ms",
            http::HeaderValue::from_static("99999999999999"),
        );
        return r;
    }
    if req.method() == Method::POST
        && let Some((id, what)) = rest.split_once('/')
        && (what == "response" || what == "error")
    {
        let id = id.to_string();
        let Some(body) = body_of(req).await else {
            return respond(StatusCode::PAYLOAD_TOO_LARGE, "{}");
        };
        let reply = rt
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        return match reply {
            Some(tx) => {
                let _ = tx.send(body);
                respond(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
            }
            None => respond(
                StatusCode::BAD_REQUEST,
                r#"{"errorType":"InvalidRequestID"}"#,
            ),
        };
    }
    respond(StatusCode::NOT_FOUND, r#"{"errorType":"InvalidRequest"}"#)
}

/// A client request: its body is the event, the bootstrap's answer is the response.
async fn client(rt: Arc<Runtime>, req: Request<Incoming>) -> Resp {
    let Some(payload) = body_of(req).await else {
        return respond(StatusCode::PAYLOAD_TOO_LARGE, "{}");
    };
    match rt.invoke(payload).await {
        Some(body) => respond(StatusCode::OK, body),
        None => respond(StatusCode::SERVICE_UNAVAILABLE, "{}"),
    }
}

/// Serves HTTP/1.1 with keep-alive on `listener`, one task per connection.
async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Resp> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, std::convert::Infallible>(fut.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn spawn_bootstrap(
    args: &Args,
    runtime_addr: SocketAddr,
) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new(&args.bootstrap)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_addr.to_string())
        .env("_HANDLER", "noop")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn cold_starts(args: &Args, k: usize) -> Result<(), String> {
    let listener = TcpListener::bind(args.runtime_listen)
        .await
        .map_err(|e| format!("bind {}: {e}", args.runtime_listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let rt = Runtime::new();
    let api = rt.clone();
    tokio::spawn(serve(listener, move |req| runtime_api(api.clone(), req)));
    let mut samples = Vec::with_capacity(k);
    for _ in 0..k {
        let start = Instant::now();
        let mut child = spawn_bootstrap(args, addr).map_err(|e| format!("spawn: {e}"))?;
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            rt.invoke(Bytes::from(args.event.clone())),
        )
        .await;
        let took = start.elapsed();
        let _ = child.kill().await;
        match answer {
            Ok(Some(_)) => samples.push(took.as_micros() as u64),
            _ => return Err("the bootstrap did not answer within 10 s".into()),
        }
    }
    samples.sort_unstable();
    let mean = samples.iter().sum::<u64>() / samples.len() as u64;
    println!(
        "{{\"mode\":\"cold-starts\",\"samples\":{},\"latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"min\":{},\"max\":{},\"mean\":{}}}}}",
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 90.0),
        percentile(&samples, 99.0),
        samples[0],
        samples[samples.len() - 1],
        mean
    );
    Ok(())
}

async fn serve_mode(args: &Args) -> Result<(), String> {
    let runtime_listener = TcpListener::bind(args.runtime_listen)
        .await
        .map_err(|e| format!("bind {}: {e}", args.runtime_listen))?;
    let runtime_addr = runtime_listener.local_addr().map_err(|e| e.to_string())?;
    let client_listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", args.listen))?;
    let client_addr = client_listener.local_addr().map_err(|e| e.to_string())?;
    let rt = Runtime::new();
    let api = rt.clone();
    tokio::spawn(serve(runtime_listener, move |req| {
        runtime_api(api.clone(), req)
    }));
    let mut children = Vec::new();
    for _ in 0..args.instances.max(1) {
        children.push(spawn_bootstrap(args, runtime_addr).map_err(|e| format!("spawn: {e}"))?);
    }
    let front = rt.clone();
    tokio::spawn(serve(client_listener, move |req| {
        client(front.clone(), req)
    }));
    eprintln!(
        "runtime-direct: clients on {client_addr}, Runtime API on {runtime_addr}, {} bootstraps",
        children.len()
    );
    if let Some(path) = &args.ready_file {
        let json = format!(
            "{{\"listen\":\"{client_addr}\",\"runtime_listen\":\"{runtime_addr}\",\"pid\":{}}}\n",
            std::process::id()
        );
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("ready file: {e}"))?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    for mut c in children {
        let _ = c.kill().await;
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("runtime-direct: {e}");
            std::process::exit(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n);
    }
    let rt = builder.enable_all().build().expect("tokio runtime");
    let outcome = rt.block_on(async {
        match args.cold_starts {
            Some(k) => cold_starts(&args, k).await,
            None => serve_mode(&args).await,
        }
    });
    if let Err(e) = outcome {
        eprintln!("runtime-direct: {e}");
        std::process::exit(1);
    }
}
