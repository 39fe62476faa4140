//! Worker threads: one current-thread tokio runtime per core, each running its share of the
//! workers (one connection each) with one [`Stats`] merged at the end. The open loop feeds
//! each thread's queue (a [`Lane`]) from a scheduler thread; the closed loop needs no queue.

use super::client::{Conn, Failure, Wire, connect};
use super::stats::{ErrorKind, Stats};
use super::target::Source;
use super::{closed_loop, open_loop};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One run of load.
pub struct Plan {
    pub source: Arc<dyn Source>,
    pub addr: SocketAddr,
    pub wire: Wire,
    /// Per request (connect, and send to end of body, each).
    pub timeout: Duration,
    /// Connections: each carries one request at a time.
    pub workers: usize,
    pub load: Load,
    /// A progress line on stderr once a second (only if stderr is a terminal).
    pub progress: bool,
}

pub enum Load {
    /// Requests at fixed offsets from the start: `(offset, request index)`, in order.
    /// Requests scheduled before `measure_from` are sent but not recorded.
    Open {
        schedule: Box<dyn Iterator<Item = (Duration, u32)> + Send>,
        measure_from: Duration,
        /// The last offset (for the drain deadline).
        end: Duration,
    },
    /// Each worker sends its next request when the previous one is done.
    Closed {
        warmup: Duration,
        duration: Duration,
    },
}

/// Merged results.
pub struct Outcome {
    pub stats: Stats,
    /// From the start of measurement to the end of the last measured request.
    pub measured: Duration,
}

/// What every worker of a run shares.
pub(super) struct Ctx {
    pub source: Arc<dyn Source>,
    pub addr: SocketAddr,
    pub wire: Wire,
    pub timeout: Duration,
}

/// A request to send: its scheduled time and index.
#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    pub at: Instant,
    pub idx: u32,
    pub measured: bool,
}

/// One worker thread's queue and live counters.
#[derive(Default)]
pub(super) struct Lane {
    queue: Mutex<VecDeque<Job>>,
    notify: Notify,
    closed: AtomicBool,
    abort: AtomicBool,
    done: AtomicU64,
    errors: AtomicU64,
}

impl Lane {
    pub fn push(&self, job: Job) {
        self.lock().push_back(job);
        self.notify.notify_one();
    }

    /// No more jobs will come.
    pub fn close(&self) {
        self.closed.store(true, Relaxed);
        self.notify.notify_waiters();
    }

    /// Stop taking jobs (the drain deadline passed).
    fn abort(&self) {
        self.abort.store(true, Relaxed);
        self.notify.notify_waiters();
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next queued job, waiting for one; `None` once closed and empty, or aborted.
    pub async fn next(&self) -> Option<Job> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.aborted() {
                return None;
            }
            if let Some(job) = self.lock().pop_front() {
                return Some(job);
            }
            if self.closed.load(Relaxed) {
                return None;
            }
            notified.await;
        }
    }

    fn count(&self, error: bool) {
        self.done.fetch_add(1, Relaxed);
        if error {
            self.errors.fetch_add(1, Relaxed);
        }
    }
}

/// Sends one request on `conn` (opening it first if needed) and records the outcome.
/// Returns false if the connection could not be opened.
pub(super) async fn run_one(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    job: Job,
    stats: &RefCell<Stats>,
    lane: &Lane,
) -> bool {
    if conn.as_ref().is_some_and(Conn::is_closed) {
        *conn = None;
    }
    let c = match conn {
        Some(c) => c,
        None => match tokio::time::timeout(ctx.timeout, connect(ctx.addr, &ctx.wire)).await {
            Ok(Ok(c)) => conn.insert(c),
            _ => {
                record_error(job, ErrorKind::Connect, stats, lane);
                return false;
            }
        },
    };
    let kind = match c.send(&*ctx.source, job.idx, ctx.timeout).await {
        Ok(answer) => {
            let done = Instant::now();
            lane.count(ErrorKind::of(&answer).is_some());
            if job.measured {
                let first = ctx.source.is_first(job.idx);
                let latency = done.saturating_duration_since(job.at);
                stats.borrow_mut().response(&answer, latency, first, done);
            }
            return true;
        }
        Err(Failure::Io) => ErrorKind::Io,
        Err(Failure::Timeout) => ErrorKind::Timeout,
    };
    *conn = None;
    record_error(job, kind, stats, lane);
    true
}

fn record_error(job: Job, kind: ErrorKind, stats: &RefCell<Stats>, lane: &Lane) {
    lane.count(true);
    if job.measured {
        stats.borrow_mut().error(kind, Instant::now());
    }
}

/// Runs the plan to the end and merges every thread's results.
pub fn execute(plan: Plan) -> anyhow::Result<Outcome> {
    let workers = plan.workers.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(workers);
    let ctx = Arc::new(Ctx {
        source: plan.source,
        addr: plan.addr,
        wire: plan.wire,
        timeout: plan.timeout,
    });
    let lanes: Vec<Arc<Lane>> = (0..threads).map(|_| Arc::default()).collect();
    let ready = Arc::new(Barrier::new(threads + 1));
    let closed = match plan.load {
        Load::Closed { warmup, duration } => Some((warmup, duration)),
        Load::Open { .. } => None,
    };
    let mut handles = Vec::with_capacity(threads);
    for (i, lane) in lanes.iter().enumerate() {
        let n = workers / threads + usize::from(i < workers % threads);
        let (ctx, lane, ready) = (ctx.clone(), lane.clone(), ready.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-{i}"))
                .spawn(move || worker_thread(&ctx, &lane, n, &ready, closed))?,
        );
    }
    ready.wait();
    let t0 = Instant::now();
    let (measure_from, end, scheduler) = match plan.load {
        Load::Open {
            schedule,
            measure_from,
            end,
        } => {
            let lanes = lanes.clone();
            let s = std::thread::Builder::new()
                .name("loadgen-schedule".into())
                .spawn(move || open_loop::schedule(&lanes, schedule, t0, measure_from))?;
            (measure_from, end, Some(s))
        }
        Load::Closed { warmup, duration } => (warmup, warmup + duration, None),
    };
    let deadline = t0 + end + plan.timeout * 2 + Duration::from_secs(1);
    watch(&lanes, &handles, t0, deadline, plan.progress);
    if let Some(s) = scheduler {
        let _ = s.join();
    }
    let mut stats = Stats::default();
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load worker thread panicked"))??;
        stats.merge(&s);
    }
    let start = t0 + measure_from;
    let measured = stats
        .last_done
        .map_or(Duration::ZERO, |d| d.saturating_duration_since(start));
    Ok(Outcome { stats, measured })
}

/// Waits for the workers, printing progress; aborts the lanes at `deadline`.
fn watch(
    lanes: &[Arc<Lane>],
    handles: &[std::thread::JoinHandle<anyhow::Result<Stats>>],
    t0: Instant,
    deadline: Instant,
    progress: bool,
) {
    let progress = progress && std::io::stderr().is_terminal();
    let mut next_print = t0 + Duration::from_secs(1);
    let mut last_done = 0;
    let mut aborted = false;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if !aborted && now >= deadline {
            lanes.iter().for_each(|l| l.abort());
            aborted = true;
        }
        if progress && now >= next_print {
            next_print += Duration::from_secs(1);
            let done: u64 = lanes.iter().map(|l| l.done.load(Relaxed)).sum();
            let errors: u64 = lanes.iter().map(|l| l.errors.load(Relaxed)).sum();
            let secs = now.duration_since(t0).as_secs();
            eprint!(
                "\r[{secs:>4}s] {done} requests, {} req/s, {errors} errors   ",
                done - last_done
            );
            let _ = std::io::stderr().flush();
            last_done = done;
        }
    }
    if progress {
        eprintln!();
    }
}

/// One worker thread: connect `n` workers, wait for the others, run, count what was never
/// sent.
fn worker_thread(
    ctx: &Arc<Ctx>,
    lane: &Arc<Lane>,
    n: usize,
    ready: &Barrier,
    closed: Option<(Duration, Duration)>,
) -> anyhow::Result<Stats> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            ready.wait();
            return Err(e.into());
        }
    };
    let local = tokio::task::LocalSet::new();
    let stats = Rc::new(RefCell::new(Stats::default()));
    // Connections are opened before the clock starts; a failure is retried (and counted)
    // by the first request.
    let conns = local.block_on(&rt, async {
        let opens: Vec<_> = (0..n)
            .map(|_| {
                let ctx = ctx.clone();
                tokio::task::spawn_local(async move {
                    tokio::time::timeout(ctx.timeout, connect(ctx.addr, &ctx.wire))
                        .await
                        .ok()
                        .and_then(Result::ok)
                })
            })
            .collect();
        let mut conns = Vec::with_capacity(n);
        for open in opens {
            conns.push(open.await.ok().flatten());
        }
        conns
    });
    ready.wait();
    let t0 = Instant::now();
    local.block_on(&rt, async {
        let mut tasks = Vec::with_capacity(n);
        for conn in conns {
            let (ctx, lane, stats) = (ctx.clone(), lane.clone(), stats.clone());
            tasks.push(tokio::task::spawn_local(async move {
                match closed {
                    Some((warmup, duration)) => {
                        closed_loop::worker(
                            &ctx,
                            conn,
                            &stats,
                            &lane,
                            t0 + warmup,
                            t0 + warmup + duration,
                        )
                        .await
                    }
                    None => open_loop::worker(&ctx, conn, &stats, &lane).await,
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    // This thread's HTTP/3 connection (if any) closes with its runtime.
    super::h3::reset();
    let mut stats = stats.take();
    let now = Instant::now();
    let unsent = lane.lock().drain(..).filter(|j| j.measured).count();
    for _ in 0..unsent {
        stats.error(ErrorKind::Unsent, now);
    }
    Ok(stats)
}
