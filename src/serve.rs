//! `hearth serve`: router, agent and control in one process on embedded defaults
//! (SQLite metadata, local code store), plus the admin port.

use crate::admin::Admin;
use crate::agent::{Agent, AgentClient};
use crate::codestore::LocalCodeStore;
use crate::config::Config;
use crate::control::Control;
use crate::control::steps::Steps;
use crate::control::workflow::{Engine, Faults};
use crate::events::{Acceptor, EventsMetrics, Workers};
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::queue::outbox::Relay;
use crate::queue::sqlite::SqliteQueue;
use crate::router::{Router, http, quic, tls};
use crate::store::sqlite::SqliteStore;
use crate::triggers::scheduler::{Scheduler, clock_from_env};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Runs until `shutdown` resolves, then drains in-flight requests (bounded by
/// `shutdown_grace_secs`) and stops every instance.
pub async fn serve(
    cfg: Config,
    ready_file: Option<PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let embedded = Embedded::open(&cfg)?;
    let (control, code) = (embedded.control.clone(), embedded.code.clone());
    // The in-process agent, or placement across remote agents (`agents`).
    let (agent_client, local_agent, placement): (Arc<dyn AgentClient>, _, _) =
        if cfg.agents.is_empty() {
            let agent = Agent::new(&cfg, Arc::new(code), metrics.clone())?;
            (Arc::new(agent.clone()), Some(agent), None)
        } else {
            let p = Arc::new(remote_placement(&cfg));
            (p.clone(), None, Some(p))
        };
    let agent_for_restore = agent_client.clone();
    let engine = embedded.engine(&cfg, agent_client.clone());
    let events = embedded.acceptor(&metrics);
    let rev = *control.changes().borrow();
    control.route_acks().ack("router", rev);
    let router = Router::new(
        crate::control::client::InProcess::new(control.clone(), events.clone()),
        agent_client,
        metrics.clone(),
        &cfg,
        rev,
        "router".into(),
    );
    let workers = Workers::new(
        embedded.queue.clone(),
        control.clone(),
        router.clone(),
        events.metrics,
        &cfg.events,
    );

    let public =
        http::bind_public(cfg.listen).with_context(|| format!("binding {}", cfg.listen))?;
    let admin =
        http::bind(cfg.admin_listen).with_context(|| format!("binding {}", cfg.admin_listen))?;
    let (public_addr, admin_addr) = (public.local_addr()?, admin.local_addr()?);
    tracing::info!(listener = "public", addr = %public_addr, "listening (HTTP/1.1, h2c)");
    tracing::info!(listener = "admin", addr = %admin_addr, "listening (/healthz, /metrics)");
    let secure = bind_tls(&cfg, &router, public_addr)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    // The engine, relay and change-feed follower stop after the servers have drained.
    let (engine_stop, engine_rx) = watch::channel(false);
    let follower = tokio::spawn(router.follow_changes(engine_rx.clone()));
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let ready = Arc::new(AtomicBool::new(false));
    let admin_service = Admin {
        metrics: metrics.clone(),
        ready: ready.clone(),
        control: control.clone(),
        engine: engine.clone(),
    }
    .service();
    let admin_task = tokio::spawn(http::serve(admin, admin_service, stopped()));
    let (tls_addr, secure_tasks) = spawn_tls(secure, &router, &stopped);
    let public_opts = router.serve_options(cfg.limits.max_connections);
    let public_task = tokio::spawn(http::serve_with(
        public,
        move |req| router.clone().handle(crate::router::boxed(req)),
        stopped(),
        public_opts,
    ));
    let reaper = local_agent
        .clone()
        .map(|a| tokio::spawn(a.run_reaper(stopped())));
    let poller = placement.map(|p| tokio::spawn(p.run_poller(engine_rx.clone())));
    let workers_task = tokio::spawn(workers.run(engine_rx.clone()));
    let background = embedded.spawn(&engine, &engine_rx);
    prepare_runtimes(&cfg).await?;
    prepare_agents(&control, agent_for_restore.as_ref(), &cfg).await;
    ready.store(true, Ordering::SeqCst);
    if let Some(path) = ready_file {
        write_ready_file(&path, public_addr, admin_addr, tls_addr)?;
    }
    tracing::info!("ready");

    shutdown.await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    let mut listeners = vec![public_task, admin_task];
    listeners.extend(secure_tasks);
    drain(grace, listeners).await;
    let _ = engine_stop.send(true);
    // Delivery workers finish the events they are running, within the grace period; an event
    // cut off is delivered again after its lease (at least once).
    let workers_abort = workers_task.abort_handle();
    if tokio::time::timeout(grace, workers_task).await.is_err() {
        workers_abort.abort();
    }
    let _ = follower.await;
    for task in background.into_iter().chain(reaper).chain(poller) {
        let _ = task.await;
    }
    if let Some(agent) = local_agent {
        agent.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Binds the TLS and HTTP/3 listeners when `tls.listen` is set, and tells the router its public
/// base: absolute URLs (FunctionUrl) use https on the TLS port when TLS is on, unless
/// `public_url` says otherwise.
pub(crate) fn bind_tls(
    cfg: &Config,
    router: &Router,
    public_addr: std::net::SocketAddr,
) -> anyhow::Result<Option<Secure>> {
    let secure = match cfg.tls.listen {
        Some(addr) => Some(Secure::bind(cfg, addr)?),
        None => None,
    };
    match &secure {
        Some(s) => router.bound("https", s.tcp.local_addr()?),
        None => router.bound("http", public_addr),
    }
    Ok(secure)
}

/// Starts the TLS and HTTP/3 listeners, if bound: their address and the tasks that end once
/// they have drained.
pub(crate) fn spawn_tls<G, Fut>(
    secure: Option<Secure>,
    router: &Arc<Router>,
    stopped: &G,
) -> (
    Option<std::net::SocketAddr>,
    Vec<tokio::task::JoinHandle<()>>,
)
where
    G: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    match secure {
        Some(s) => {
            let (addr, tasks) = s.spawn(router, stopped);
            (Some(addr), tasks)
        }
        None => (None, Vec::new()),
    }
}

/// The TLS (TCP) and HTTP/3 (UDP) listeners on one port number, with their certificates.
pub(crate) struct Secure {
    tcp: tokio::net::TcpListener,
    quic: quinn::Endpoint,
    certs: Arc<tls::Certs>,
    tcp_config: Arc<rustls::ServerConfig>,
}

impl Secure {
    /// Loads the certificate (or makes the development one) and binds TCP and UDP on the same
    /// port (with port 0, tries a few ports until both are free).
    fn bind(cfg: &Config, addr: std::net::SocketAddr) -> anyhow::Result<Secure> {
        let provider = tls::provider();
        let (cert, key) = match (&cfg.tls.cert, &cfg.tls.key) {
            (Some(c), Some(k)) if !cfg.tls.dev => (c.clone(), k.clone()),
            _ => tls::dev_cert(&cfg.data_dir)?,
        };
        let certs = Arc::new(tls::Certs::load(&cert, &key, provider.clone())?);
        if cfg.tls.dev {
            tracing::info!(cert = %cert.display(), sha256 = %certs.fingerprint(), "development TLS certificate (self-signed)");
        } else {
            tracing::info!(cert = %cert.display(), sha256 = %certs.fingerprint(), "TLS certificate loaded");
        }
        let tcp_config = Arc::new(tls::server_config(
            certs.clone(),
            provider.clone(),
            &[b"h2", b"http/1.1"],
        )?);
        let mut last = None;
        for _ in 0..if addr.port() == 0 { 8 } else { 1 } {
            let tcp = http::bind(addr).with_context(|| format!("binding {addr} (TLS)"))?;
            let bound = tcp.local_addr()?;
            match quic::endpoint(bound, certs.clone(), provider.clone()) {
                Ok(quic) => {
                    return Ok(Secure {
                        tcp,
                        quic,
                        certs,
                        tcp_config,
                    });
                }
                Err(e) => last = Some(e.context(format!("binding {bound}/udp (HTTP/3)"))),
            }
        }
        Err(last.expect("tried at least once"))
    }

    /// Starts both listeners and the certificate watcher; returns the address and the tasks
    /// that end once the listeners have drained.
    fn spawn<G, Fut>(
        self,
        router: &Arc<Router>,
        stopped: &G,
    ) -> (std::net::SocketAddr, Vec<tokio::task::JoinHandle<()>>)
    where
        G: Fn() -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let addr = self.tcp.local_addr().expect("a bound listener");
        tracing::info!(listener = "tls", %addr, "listening (TLS: h2, HTTP/1.1; HTTP/3 on udp)");
        tokio::spawn(self.certs.clone().watch(stopped()));
        let r = router.clone();
        let tcp = tokio::spawn(tls::serve(
            self.tcp,
            self.tcp_config,
            tls::alt_svc(addr.port()),
            move |req| r.clone().handle(crate::router::boxed(req)),
            stopped(),
        ));
        let r = router.clone();
        let udp = tokio::spawn(quic::serve(
            self.quic,
            move |req| r.clone().handle(req),
            stopped(),
        ));
        (addr, vec![tcp, udp])
    }
}

/// Placement across the remote agents of `cfg.agents` (multi-process mode).
pub(crate) fn remote_placement(cfg: &Config) -> crate::router::place::Placement {
    let connect = Duration::from_millis(cfg.placement.connect_timeout_ms);
    let agents = cfg
        .agents
        .iter()
        .map(|url| {
            let remote =
                crate::agent::remote::RemoteAgent::new(url, connect, cfg.limits.max_payload_bytes);
            (url.clone(), Arc::new(remote) as Arc<dyn AgentClient>)
        })
        .collect();
    tracing::info!(agents = ?cfg.agents, "placing invokes on remote agents");
    crate::router::place::Placement::new(agents, &cfg.placement)
}

/// The control service's state on the data directory, as `serve` and `hearth control` both
/// embed it: SQLite metadata, the local code store, the durable queue and the outbox relay
/// that feeds it.
pub(crate) struct Embedded {
    pub control: Arc<Control>,
    pub code: LocalCodeStore,
    pub queue: Arc<dyn Queue>,
    relay: Relay,
}

impl Embedded {
    pub(crate) fn open(cfg: &Config) -> anyhow::Result<Embedded> {
        let data = &cfg.data_dir;
        std::fs::create_dir_all(data)
            .with_context(|| format!("creating data dir {}", data.display()))?;
        let meta = data.join("meta.sqlite");
        let store = Arc::new(SqliteStore::open(&meta)?);
        let code = LocalCodeStore::new(data.join("code"))?;
        code.remove_leftovers()?;
        let queue: Arc<dyn Queue> = Arc::new(SqliteQueue::open(&data.join("queue.sqlite"))?);
        let relay = Relay::open(&meta, queue.clone(), Duration::from_millis(500))?;
        let control = Arc::new(Control::new(cfg, store, code.clone(), relay.clone())?);
        Ok(Embedded {
            control,
            code,
            queue,
            relay,
        })
    }

    /// The workflow engine, its steps reaching the agents through `agent`.
    pub(crate) fn engine(&self, cfg: &Config, agent: Arc<dyn AgentClient>) -> Arc<Engine> {
        let steps = Steps {
            agent,
            runtimes_dir: cfg.runtimes.dir.clone(),
            python: cfg.runtimes.python.clone(),
            ack_timeout: Duration::from_secs(10),
        };
        Engine::new(
            self.control.clone(),
            self.queue.clone(),
            steps,
            Faults::from_env(),
        )
    }

    /// Accepts asynchronous invocations onto the queue.
    pub(crate) fn acceptor(&self, metrics: &Metrics) -> Acceptor {
        Acceptor {
            queue: self.queue.clone(),
            metrics: EventsMetrics::register(metrics),
        }
    }

    /// Starts the background parts, which stop once `stop` turns true: the workflow engine,
    /// the trigger scheduler and the outbox relay.
    pub(crate) fn spawn(
        self,
        engine: &Arc<Engine>,
        stop: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let c = &self.control;
        let scheduler = Arc::new(Scheduler::new(
            c.store().clone(),
            clock_from_env(),
            c.account(),
            c.region(),
            Some(self.relay.clone()),
        ));
        let mut relay_stop = stop.clone();
        vec![
            tokio::spawn(engine.clone().run(stop.clone())),
            tokio::spawn(scheduler.run(stop.clone())),
            tokio::spawn(self.relay.run(async move {
                let _ = relay_stop.wait_for(|s| *s).await;
            })),
        ]
    }
}

/// Before serving: the tenant's small packages into the node caches, and the provisioned
/// concurrency restored on the agents.
pub(crate) async fn prepare_agents(control: &Control, agent: &dyn AgentClient, cfg: &Config) {
    preload(control, agent, cfg.agent.preload_max_bytes).await;
    match control.restore_provisioned(agent).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(instances = n, "provisioned concurrency restored"),
        Err(e) => tracing::error!(error = %e, "restoring provisioned concurrency"),
    }
}

/// Waits for the listeners' tasks to finish their in-flight requests, at most `grace`.
pub(crate) async fn drain(grace: Duration, tasks: Vec<tokio::task::JoinHandle<()>>) {
    let all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!("drain deadline passed; stopping anyway");
    }
}

/// Puts the tenant's small packages into the node cache before serving, so scale-outs never
/// wait for a download.
async fn preload(control: &Control, agent: &dyn AgentClient, max_bytes: u64) {
    let shas = match control.small_packages(max_bytes) {
        Ok(s) => s,
        Err(e) => return tracing::warn!(error = %e, "listing packages to preload"),
    };
    for sha in &shas {
        if let Err(e) = agent.prefetch(sha).await {
            tracing::warn!(sha, error = %e, "preloading a package");
        }
    }
    if !shas.is_empty() {
        tracing::info!(packages = shas.len(), "node cache preloaded");
    }
}

/// Prepares the configured runtimes (a fresh data directory needs no setup step).
pub(crate) async fn prepare_runtimes(cfg: &Config) -> anyhow::Result<()> {
    for rt in cfg.runtimes.prepare.clone() {
        let (dir, python) = (cfg.runtimes.dir.clone(), cfg.runtimes.python.clone());
        tokio::task::spawn_blocking(move || crate::runtimes::ensure(&dir, &python, &rt)).await??;
    }
    Ok(())
}

/// Writes `{"listen": ..., "admin_listen": ..., "tls_listen": ...}` atomically (`tls_listen`
/// only with TLS on; the same port serves HTTP/3 over UDP).
pub(crate) fn write_ready_file(
    path: &Path,
    public: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    tls: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut json = serde_json::json!({ "listen": public.to_string(), "admin_listen": admin.to_string(), "pid": std::process::id() });
    if let Some(tls) = tls {
        json["tls_listen"] = tls.to_string().into();
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json.to_string())?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
