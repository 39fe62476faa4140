//! The place phase across several agents: [`Placement`] is an [`AgentClient`] over a list of
//! agents (remote ones in multi-process mode).
//!
//! Order for each invoke: agents that last reported an idle warm instance of the version
//! (from each answer's `x-hearth-idle` and from `GET /v1/state` polling), most idle first;
//! then the rest by fewest invokes in flight from this router. Agents marked down are skipped
//! (unless every agent is down). An agent that refuses before starting (capacity, draining,
//! a failed start) or cannot be reached is skipped and the next one tried; an invocation
//! that may have started ([`AgentError::Lost`]) is returned as is, never retried, and its
//! agent is marked down (its connection broke; a later state poll brings it back). When every
//! agent refused for capacity, the invoke waits and tries again for up to
//! `placement.capacity_wait_ms`, then gets [`AgentError::Capacity`] (429 at the router).
//!
//! Provisioned concurrency is split evenly across the agents that are up when it is set
//! (agent `i` of `k` gets `n / k`, plus one when `i < n % k`); it is not rebalanced when an
//! agent later goes down or comes back, until the next provision call for that config.

use crate::agent::wire::AgentState;
use crate::agent::{AgentClient, AgentError, InvokeRequest, InvokeResponse};
use crate::api::VersionDescriptor;
use crate::config::PlacementConfig;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One agent as placement sees it.
struct Member {
    name: String,
    client: Arc<dyn AgentClient>,
    /// Invokes this router has in flight on the agent.
    in_flight: AtomicUsize,
    /// Skipped until then (it was unreachable).
    down_until: Mutex<Option<Instant>>,
    /// Pool key → idle instances the agent last reported.
    idle: Mutex<HashMap<String, usize>>,
}

impl Member {
    fn is_down(&self, now: Instant) -> bool {
        lock(&self.down_until).is_some_and(|t| t > now)
    }

    fn mark_down(&self, backoff: Duration) {
        *lock(&self.down_until) = Some(Instant::now() + backoff);
    }

    fn mark_up(&self) {
        *lock(&self.down_until) = None;
    }

    fn idle_of(&self, key: &str) -> usize {
        lock(&self.idle).get(key).copied().unwrap_or(0)
    }

    fn set_idle(&self, key: &str, n: usize) {
        let mut idle = lock(&self.idle);
        if n == 0 {
            idle.remove(key);
        } else {
            idle.insert(key.to_string(), n);
        }
    }

    fn apply_state(&self, s: &AgentState) {
        *lock(&self.idle) = s
            .versions
            .iter()
            .filter(|v| v.idle > 0)
            .map(|v| (v.key.clone(), v.idle))
            .collect();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts an invoke in flight on a member while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Places invokes across several agents.
pub struct Placement {
    members: Vec<Member>,
    capacity_wait: Duration,
    down_backoff: Duration,
    poll: Duration,
}

/// How one round over the agents ended without an answer.
enum Round {
    /// Every agent tried refused for capacity or draining (or was down): worth waiting.
    Capacity,
    /// Some other refusal; the last one.
    Refused(AgentError),
}

impl Placement {
    /// `agents` are (name, client) pairs, in the configured order.
    pub fn new(agents: Vec<(String, Arc<dyn AgentClient>)>, cfg: &PlacementConfig) -> Placement {
        Placement {
            members: agents
                .into_iter()
                .map(|(name, client)| Member {
                    name,
                    client,
                    in_flight: AtomicUsize::new(0),
                    down_until: Mutex::new(None),
                    idle: Mutex::new(HashMap::new()),
                })
                .collect(),
            capacity_wait: Duration::from_millis(cfg.capacity_wait_ms),
            down_backoff: Duration::from_millis(cfg.down_backoff_ms),
            poll: Duration::from_millis(cfg.state_poll_ms),
        }
    }

    /// Names of the agents not marked down.
    pub fn healthy(&self) -> Vec<String> {
        let now = Instant::now();
        self.members
            .iter()
            .filter(|m| !m.is_down(now))
            .map(|m| m.name.clone())
            .collect()
    }

    /// Polls every agent's `/v1/state` (idle instances, health) until `shutdown` flips.
    pub async fn run_poller(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            self.poll_once().await;
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    async fn poll_once(&self) {
        for m in &self.members {
            match tokio::time::timeout(self.poll.max(Duration::from_secs(1)), m.client.state())
                .await
            {
                Ok(Ok(s)) => {
                    m.apply_state(&s);
                    if m.is_down(Instant::now()) {
                        tracing::info!(agent = %m.name, "agent reachable again");
                    }
                    m.mark_up();
                }
                Ok(Err(e)) => {
                    if !m.is_down(Instant::now()) {
                        tracing::warn!(agent = %m.name, error = %e, "agent state poll failed; marked down");
                    }
                    m.mark_down(self.down_backoff);
                }
                Err(_) => m.mark_down(self.down_backoff),
            }
        }
    }

    /// Candidate order for a version: idle warm instances first, then least loaded; agents
    /// marked down only when every agent is.
    fn order(&self, key: &str) -> Vec<&Member> {
        let now = Instant::now();
        let mut up: Vec<&Member> = self.members.iter().filter(|m| !m.is_down(now)).collect();
        if up.is_empty() {
            up = self.members.iter().collect();
        }
        up.sort_by_key(|m| {
            let idle = m.idle_of(key);
            (
                idle == 0,
                usize::MAX - idle,
                m.in_flight.load(Ordering::Relaxed),
            )
        });
        up
    }

    /// One pass over the agents in order.
    async fn round(&self, req: &InvokeRequest, key: &str) -> Result<InvokeResponse, Round> {
        let mut last: Option<AgentError> = None;
        let mut capacity_only = true;
        for m in self.order(key) {
            let result = {
                let _counted = InFlight::new(&m.in_flight);
                m.client.invoke(req.clone()).await
            };
            match result {
                Ok(out) => {
                    m.set_idle(key, out.idle);
                    return Ok(out);
                }
                Err(e @ AgentError::Lost(_)) => {
                    // May have started: never retried. The agent's connection broke, so
                    // the next invokes go elsewhere until a state poll reaches it again.
                    tracing::warn!(agent = %m.name, error = %e, "invocation lost; agent marked down");
                    m.mark_down(self.down_backoff);
                    return Err(Round::Refused(e));
                }
                Err(AgentError::Capacity | AgentError::Draining) => m.set_idle(key, 0),
                Err(e @ AgentError::Unreachable(_)) => {
                    tracing::warn!(agent = %m.name, error = %e, "agent unreachable; marked down");
                    m.mark_down(self.down_backoff);
                    last = Some(e);
                }
                Err(e) => {
                    tracing::warn!(agent = %m.name, error = %e, "agent refused; placing elsewhere");
                    capacity_only = false;
                    last = Some(e);
                }
            }
        }
        if capacity_only && self.members.iter().any(|m| !m.is_down(Instant::now())) {
            Err(Round::Capacity)
        } else {
            Err(Round::Refused(last.unwrap_or(AgentError::Capacity)))
        }
    }
}

/// Splits `n` over `k` agents: agent `i` gets `n / k`, plus one when `i < n % k`.
fn share(n: usize, k: usize, i: usize) -> usize {
    if k == 0 {
        return 0;
    }
    n / k + usize::from(i < n % k)
}

#[async_trait::async_trait]
impl AgentClient for Placement {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, AgentError> {
        let key = req.descriptor.pool_key();
        let give_up = Instant::now() + self.capacity_wait;
        let mut pause = Duration::from_millis(5);
        loop {
            match self.round(&req, &key).await {
                Ok(out) => return Ok(out),
                Err(Round::Refused(e)) => return Err(e),
                Err(Round::Capacity) if Instant::now() + pause >= give_up => {
                    return Err(AgentError::Capacity);
                }
                Err(Round::Capacity) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        }
    }

    async fn prefetch(&self, code_sha256: &str) -> Result<(), String> {
        let mut errors = Vec::new();
        for m in &self.members {
            if let Err(e) = m.client.prefetch(code_sha256).await {
                errors.push(format!("{}: {e}", m.name));
            }
        }
        if errors.len() == self.members.len() && !errors.is_empty() {
            Err(errors.join("; "))
        } else {
            for e in errors {
                tracing::warn!(error = %e, "prefetch on an agent failed");
            }
            Ok(())
        }
    }

    async fn retire_function(&self, function_arn: &str) {
        for m in &self.members {
            m.client.retire_function(function_arn).await;
        }
    }

    async fn provision(
        &self,
        config: &str,
        targets: Vec<(Arc<VersionDescriptor>, usize)>,
    ) -> Result<usize, String> {
        let now = Instant::now();
        let up: Vec<&Member> = self.members.iter().filter(|m| !m.is_down(now)).collect();
        let (mut total, mut errors) = (0, Vec::new());
        for m in &self.members {
            let i = up.iter().position(|u| std::ptr::eq(*u, m));
            let mine: Vec<_> = targets
                .iter()
                .map(|(d, n)| (d.clone(), i.map_or(0, |i| share(*n, up.len(), i))))
                .collect();
            match m.client.provision(config, mine).await {
                Ok(n) => total += n,
                Err(e) if i.is_none() => {
                    tracing::warn!(agent = %m.name, error = %e, "releasing provisioned instances on a down agent");
                }
                Err(e) => errors.push(format!("{}: {e}", m.name)),
            }
        }
        if errors.is_empty() {
            Ok(total)
        } else {
            Err(errors.join("; "))
        }
    }

    async fn provisioned(&self, config: &str) -> usize {
        let mut total = 0;
        for m in &self.members {
            total += m.client.provisioned(config).await;
        }
        total
    }

    async fn state(&self) -> Result<AgentState, AgentError> {
        let mut all = AgentState::default();
        for m in &self.members {
            if let Ok(s) = m.client.state().await {
                all.versions.extend(s.versions);
                all.memory_used_mb += s.memory_used_mb;
                all.memory_capacity_mb += s.memory_capacity_mb;
                all.instances += s.instances;
                all.max_instances += s.max_instances;
            }
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::atomic::AtomicU32;

    /// A scripted agent: answers from a list of outcomes (a fault injector, not a sandbox).
    struct Scripted {
        name: &'static str,
        outcomes: Mutex<Vec<Result<usize, AgentError>>>,
        calls: AtomicU32,
    }

    #[async_trait::async_trait]
    impl AgentClient for Scripted {
        async fn invoke(&self, _req: InvokeRequest) -> Result<InvokeResponse, AgentError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = {
                let mut o = lock(&self.outcomes);
                if o.len() > 1 {
                    o.remove(0)
                } else {
                    o[0].clone()
                }
            };
            next.map(|idle| InvokeResponse {
                body: Bytes::from_static(b"{}"),
                function_error: None,
                cold_start: false,
                instance_id: self.name.to_string(),
                idle,
                start_delay: Duration::ZERO,
                log_tail: None,
            })
        }
        async fn prefetch(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
        async fn retire_function(&self, _: &str) {}
        async fn provision(
            &self,
            _: &str,
            t: Vec<(Arc<VersionDescriptor>, usize)>,
        ) -> Result<usize, String> {
            Ok(t.iter().map(|(_, n)| n).sum())
        }
        async fn provisioned(&self, _: &str) -> usize {
            0
        }
    }

    fn agent(name: &'static str, outcomes: Vec<Result<usize, AgentError>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            name,
            outcomes: Mutex::new(outcomes),
            calls: AtomicU32::new(0),
        })
    }

    fn placement(agents: &[Arc<Scripted>], wait_ms: u64) -> Placement {
        let cfg = PlacementConfig {
            capacity_wait_ms: wait_ms,
            ..PlacementConfig::default()
        };
        Placement::new(
            agents
                .iter()
                .map(|a| (a.name.to_string(), a.clone() as Arc<dyn AgentClient>))
                .collect(),
            &cfg,
        )
    }

    fn request() -> InvokeRequest {
        InvokeRequest {
            request_id: "r".into(),
            descriptor: Arc::new(VersionDescriptor::for_tests("$LATEST")),
            invoked_arn: String::new(),
            client_context: None,
            trace_id: String::new(),
            payload: Bytes::new(),
            log_tail: false,
        }
    }

    #[tokio::test]
    async fn refusals_and_unreachable_go_elsewhere() {
        let a = agent("a", vec![Err(AgentError::Unreachable("down".into()))]);
        let b = agent("b", vec![Ok(0)]);
        let p = placement(&[a.clone(), b.clone()], 0);
        assert_eq!(p.invoke(request()).await.unwrap().instance_id, "b");
        // a is marked down now: skipped without being asked.
        assert_eq!(p.invoke(request()).await.unwrap().instance_id, "b");
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        assert_eq!(p.healthy(), vec!["b".to_string()]);
    }

    #[tokio::test]
    async fn a_started_invocation_is_never_retried() {
        let a = agent("a", vec![Err(AgentError::Lost("reset".into()))]);
        let b = agent("b", vec![Ok(0)]);
        let p = placement(&[a.clone(), b.clone()], 0);
        let e = p.invoke(request()).await.unwrap_err();
        assert!(matches!(e, AgentError::Lost(_)) && e.to_string().contains("may have started"));
        assert_eq!(b.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn idle_warm_instances_are_preferred() {
        let a = agent("a", vec![Ok(0)]);
        let b = agent("b", vec![Ok(2)]);
        let p = placement(&[a.clone(), b.clone()], 0);
        // Least loaded (tie): the first; then b reported idle instances and is preferred.
        let first = p.invoke(request()).await.unwrap().instance_id;
        assert_eq!(first, "a");
        p.members[1].set_idle(&request().descriptor.pool_key(), 2);
        for _ in 0..3 {
            assert_eq!(p.invoke(request()).await.unwrap().instance_id, "b");
        }
    }

    #[tokio::test]
    async fn capacity_everywhere_waits_then_gives_up() {
        let a = agent("a", vec![Err(AgentError::Capacity)]);
        let b = agent("b", vec![Err(AgentError::Capacity), Ok(0)]);
        let p = placement(&[a.clone(), b.clone()], 2000);
        assert_eq!(p.invoke(request()).await.unwrap().instance_id, "b");
        let c = agent("c", vec![Err(AgentError::Capacity)]);
        let p = placement(std::slice::from_ref(&c), 50);
        assert!(matches!(
            p.invoke(request()).await,
            Err(AgentError::Capacity)
        ));
        assert!(
            c.calls.load(Ordering::SeqCst) >= 2,
            "retried within the wait"
        );
    }

    #[test]
    fn shares_add_up() {
        for n in 0..10 {
            for k in 1..4 {
                assert_eq!((0..k).map(|i| share(n, k, i)).sum::<usize>(), n);
            }
        }
    }
}
