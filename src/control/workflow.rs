//! The workflow engine. A management call writes the desired state, the workflow record and
//! the first step's message (through the outbox) in one transaction. Step workers, one per
//! step topic, run the step's idempotent side effect and report the result as a message; the
//! engine consumes results and sends the next step or ends the workflow. The engine never
//! calls step code directly.

use super::Control;
use super::steps::{StepError, Steps};
use crate::queue::{ConsumerConfig, Message, Queue, pull_wait};
use crate::store::workflow::{Status, StepName, StepRecord, WorkflowKind, WorkflowRecord, now_ms};
use crate::store::{Op, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Topic of step results, consumed by the engine.
pub const RESULTS: &str = "workflow.results";
const ENGINE: &str = "engine";
const WORKER: &str = "worker";

/// A step command.
#[derive(Debug, Serialize, Deserialize)]
struct Command {
    workflow: String,
    step: StepName,
}

/// A step's result.
#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    workflow: String,
    step: StepName,
    ok: bool,
    error: Option<String>,
}

/// A new workflow record for `function` (call [`start_ops`] to schedule it).
pub fn new_workflow(
    tenant: &str,
    function: &str,
    kind: WorkflowKind,
    revision_id: &str,
    code_sha256: &str,
) -> WorkflowRecord {
    let now = now_ms();
    WorkflowRecord {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: tenant.to_string(),
        function: function.to_string(),
        kind,
        status: Status::Running,
        current: 0,
        revision_id: revision_id.to_string(),
        versions: vec![],
        code_sha256: code_sha256.to_string(),
        qualifier: None,
        error: None,
        retries: 0,
        created_ms: now,
        updated_ms: now,
    }
}

/// Ops that record a workflow and send its first step (to commit with the desired state).
pub fn start_ops(w: &WorkflowRecord) -> Vec<Op> {
    let mut ops = vec![Op::PutWorkflow(w.clone())];
    ops.extend(w.current_step().map(|s| command_op(w, s)));
    ops
}

fn command_op(w: &WorkflowRecord, step: StepName) -> Op {
    let payload = serde_json::to_vec(&Command {
        workflow: w.id.clone(),
        step,
    })
    .unwrap_or_default();
    let dedup_id = format!("cmd-{}-{}-{}", w.id, step.as_str(), w.retries);
    Op::Outbox {
        topic: step.topic(),
        payload,
        dedup_id,
    }
}

fn outcome_op(w: &WorkflowRecord, step: StepName, result: &Result<(), StepError>) -> Op {
    let o = Outcome {
        workflow: w.id.clone(),
        step,
        ok: result.is_ok(),
        error: result.as_ref().err().map(|e| e.message.clone()),
    };
    let payload = serde_json::to_vec(&o).unwrap_or_default();
    let dedup_id = format!("res-{}-{}-{}", w.id, step.as_str(), w.retries);
    Op::Outbox {
        topic: RESULTS.into(),
        payload,
        dedup_id,
    }
}

/// Test hooks (never set in production): kill the process right after a step's side effect,
/// slow a step down, or make its first runs fail. Read from `HEARTH_FAULT_KILL_AFTER_STEP`
/// (`step`), `HEARTH_FAULT_DELAY_STEP` (`step:millis`) and `HEARTH_FAULT_FAIL_STEP`
/// (`step:times`).
#[derive(Debug, Default)]
pub struct Faults {
    pub kill_after: Option<StepName>,
    pub delay: Option<(StepName, Duration)>,
    pub fail: Option<(StepName, std::sync::atomic::AtomicU32)>,
}

impl Faults {
    pub fn from_env() -> Faults {
        let kill_after = std::env::var("HEARTH_FAULT_KILL_AFTER_STEP")
            .ok()
            .and_then(|s| StepName::parse(&s));
        let delay = std::env::var("HEARTH_FAULT_DELAY_STEP").ok().and_then(|s| {
            let (step, ms) = s.split_once(':')?;
            Some((
                StepName::parse(step)?,
                Duration::from_millis(ms.parse().ok()?),
            ))
        });
        let fail = std::env::var("HEARTH_FAULT_FAIL_STEP").ok().and_then(|s| {
            let (step, n) = s.split_once(':')?;
            Some((
                StepName::parse(step)?,
                std::sync::atomic::AtomicU32::new(n.parse().ok()?),
            ))
        });
        Faults {
            kill_after,
            delay,
            fail,
        }
    }

    /// Whether this run of `step` must fail (and counts it).
    fn take_failure(&self, step: StepName) -> bool {
        use std::sync::atomic::Ordering;
        self.fail.as_ref().is_some_and(|(s, left)| {
            *s == step
                && left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
        })
    }
}

/// The engine and its step workers.
pub struct Engine {
    control: Arc<Control>,
    queue: Arc<dyn Queue>,
    steps: Steps,
    consumer: ConsumerConfig,
    faults: Faults,
}

impl Engine {
    pub fn new(
        control: Arc<Control>,
        queue: Arc<dyn Queue>,
        steps: Steps,
        faults: Faults,
    ) -> Arc<Engine> {
        // A short lease, extended while a step runs: after a crash, its command is delivered
        // again within seconds.
        let consumer = ConsumerConfig {
            lease: LEASE,
            max_deliveries: 0,
            dead_letter_topic: None,
        };
        Arc::new(Engine {
            control,
            queue,
            steps,
            consumer,
            faults,
        })
    }

    /// Runs the engine loop and one worker per step until `shutdown` flips to true.
    pub async fn run(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(
            self.clone()
                .consume(RESULTS.to_string(), ENGINE, shutdown.clone()),
        );
        for step in StepName::ALL {
            tasks.spawn(self.clone().consume(step.topic(), WORKER, shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn consume(
        self: Arc<Self>,
        topic: String,
        consumer: &'static str,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pulled = tokio::select! {
                _ = shutdown.changed() => return,
                r = pull_wait(&self.queue, &topic, consumer, 8, &self.consumer, Duration::from_secs(1)) => r,
            };
            match pulled {
                Ok(messages) => {
                    for m in messages {
                        self.handle(&topic, consumer, m).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(topic, error = %e, "workflow queue pull failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    async fn handle(&self, topic: &str, consumer: &str, m: Message) {
        let done = if consumer == ENGINE {
            match serde_json::from_slice::<Outcome>(&m.payload) {
                Ok(o) => self.on_outcome(o).await,
                Err(e) => Err(format!("bad result message: {e}")),
            }
        } else {
            match serde_json::from_slice::<Command>(&m.payload) {
                Ok(c) => self.on_command(c, &m).await,
                Err(e) => Err(format!("bad step message: {e}")),
            }
        };
        let q = self.queue.clone();
        let (topic, consumer, seq) = (topic.to_string(), consumer.to_string(), m.seq);
        let settle = match done {
            Ok(Settle::Ack) => {
                tokio::task::spawn_blocking(move || q.ack(&topic, &consumer, seq)).await
            }
            Ok(Settle::Retry(delay)) => {
                tokio::task::spawn_blocking(move || q.nak(&topic, &consumer, seq, delay)).await
            }
            Err(e) => {
                tracing::error!(error = %e, "workflow message dropped");
                tokio::task::spawn_blocking(move || q.term(&topic, &consumer, seq)).await
            }
        };
        if let Ok(Err(e)) = settle {
            tracing::warn!(error = %e, "settling a workflow message");
        }
    }

    /// Commits ops and wakes the relay; publishes the new revision to the change feed.
    async fn commit(&self, tenant: &str, ops: Vec<Op>) -> Result<(), StoreError> {
        self.control.commit(tenant, ops).await.map(|_| ())
    }

    fn load(&self, id: &str) -> Result<Option<WorkflowRecord>, String> {
        self.control.store().workflow(id).map_err(|e| e.to_string())
    }

    /// A step command: run the step once per (workflow, step, retry generation).
    async fn on_command(&self, c: Command, m: &Message) -> Result<Settle, String> {
        let Some(w) = self.load(&c.workflow)? else {
            return Ok(Settle::Ack);
        };
        if w.status != Status::Running || w.current_step() != Some(c.step) {
            return Ok(Settle::Ack);
        }
        let prior = self
            .control
            .store()
            .steps(&w.id)
            .map_err(|e| e.to_string())?;
        let prior = prior.into_iter().find(|s| s.step == c.step);
        if prior
            .as_ref()
            .is_some_and(|s| s.status == Status::Succeeded)
        {
            // Done before a crash: its result was committed with it (outbox).
            return Ok(Settle::Ack);
        }
        let mut rec = prior.unwrap_or_else(|| StepRecord {
            workflow_id: w.id.clone(),
            step: c.step,
            status: Status::Pending,
            attempts: 0,
            started_ms: None,
            finished_ms: None,
            error: None,
        });
        rec.status = Status::Running;
        rec.attempts += 1;
        rec.started_ms = Some(now_ms());
        rec.finished_ms = None;
        self.commit(&w.tenant, vec![Op::PutStep(rec.clone())])
            .await
            .map_err(|e| e.to_string())?;
        let heartbeat = self.heartbeat(c.step.topic(), m.seq);
        let result = self.run_step(&w, c.step).await;
        heartbeat.abort();
        if let Err(e) = &result
            && e.retryable
            && m.deliveries < MAX_ATTEMPTS
        {
            rec.error = Some(e.message.clone());
            self.commit(&w.tenant, vec![Op::PutStep(rec)])
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Settle::Retry(backoff(m.deliveries)));
        }
        rec.status = if result.is_ok() {
            Status::Succeeded
        } else {
            Status::Failed
        };
        rec.finished_ms = Some(now_ms());
        rec.error = result.as_ref().err().map(|e| e.message.clone());
        let ops = vec![Op::PutStep(rec), outcome_op(&w, c.step, &result)];
        self.commit(&w.tenant, ops)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Settle::Ack)
    }

    /// Keeps a running step's command leased (JetStream's in-progress ack).
    fn heartbeat(&self, topic: String, seq: u64) -> tokio::task::JoinHandle<()> {
        let q = self.queue.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                let (q, t) = (q.clone(), topic.clone());
                let _ = tokio::task::spawn_blocking(move || q.in_progress(&t, WORKER, seq, LEASE))
                    .await;
            }
        })
    }

    async fn run_step(&self, w: &WorkflowRecord, step: StepName) -> Result<(), StepError> {
        if let Some((s, d)) = self.faults.delay
            && s == step
        {
            tokio::time::sleep(d).await;
        }
        if self.faults.take_failure(step) {
            return Err(StepError {
                message: format!("injected failure of {}", step.as_str()),
                retryable: false,
            });
        }
        let result = self.steps.run(&self.control, w, step).await;
        if self.faults.kill_after == Some(step) && result.is_ok() {
            tracing::error!(
                step = step.as_str(),
                "fault injection: killing the process after the step"
            );
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        result
    }

    /// A step result: next step, success or failure.
    async fn on_outcome(&self, o: Outcome) -> Result<Settle, String> {
        let Some(mut w) = self.load(&o.workflow)? else {
            return Ok(Settle::Ack);
        };
        if w.status != Status::Running || w.current_step() != Some(o.step) {
            return Ok(Settle::Ack);
        }
        w.updated_ms = now_ms();
        let mut ops = Vec::new();
        if !o.ok {
            w.status = Status::Failed;
            w.error = o.error.clone();
            ops.extend(self.control.fail_ops(
                &w,
                o.step,
                o.error.as_deref().unwrap_or("step failed"),
            ));
        } else if w.current + 1 < w.kind.steps().len() {
            w.current += 1;
            ops.extend(w.current_step().map(|s| command_op(&w, s)));
        } else {
            w.current = w.kind.steps().len();
            w.status = Status::Succeeded;
            ops.extend(self.control.finish_ops(&w));
        }
        ops.push(Op::PutWorkflow(w.clone()));
        self.commit(&w.tenant, ops)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Settle::Ack)
    }

    /// Sends a failed workflow's failed step again (`hearth admin workflows retry`).
    pub async fn retry(&self, id: &str) -> Result<WorkflowRecord, String> {
        let mut w = self.load(id)?.ok_or_else(|| format!("no workflow {id}"))?;
        if w.status != Status::Failed {
            return Err(format!("workflow {id} is {:?}, not failed", w.status));
        }
        w.status = Status::Running;
        w.error = None;
        w.retries += 1;
        w.updated_ms = now_ms();
        let step = w.current_step().ok_or("workflow has no step to retry")?;
        let ops = vec![Op::PutWorkflow(w.clone()), command_op(&w, step)];
        self.commit(&w.tenant, ops)
            .await
            .map_err(|e| e.to_string())?;
        Ok(w)
    }
}

/// How long a pulled message stays leased without a heartbeat.
const LEASE: Duration = Duration::from_secs(3);

/// Deliveries of one step command before its failure is final.
const MAX_ATTEMPTS: u32 = 3;

fn backoff(deliveries: u32) -> Duration {
    Duration::from_millis(200 << deliveries.min(6))
}

/// What to do with a message once handled.
enum Settle {
    Ack,
    Retry(Duration),
}
