//! Instance pools: idle instances per version descriptor (LIFO reuse, so few stay hot and
//! extras expire) and the agent's capacity count.

use super::{AgentError, Instance};
use crate::api::VersionDescriptor;
use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Idle = (Arc<Instance>, Instant);

struct Inner {
    idle: HashMap<String, Vec<Idle>>,
    /// Instances that exist: starting, busy or idle.
    live: usize,
    /// The same, per pool key.
    live_by_key: HashMap<String, usize>,
    /// Provisioned floors: idle instances of these keys never expire below the floor.
    floors: HashMap<String, usize>,
    draining: bool,
}

/// All pools of one agent.
pub struct Pools {
    inner: Mutex<Inner>,
    max: usize,
    /// Idle seconds × memory MB, added whenever an instance stops being idle.
    idle_mb_seconds: Counter<f64, AtomicU64>,
}

impl Pools {
    pub fn new(max: usize, idle_mb_seconds: Counter<f64, AtomicU64>) -> Self {
        let inner = Inner {
            idle: HashMap::new(),
            live: 0,
            live_by_key: HashMap::new(),
            floors: HashMap::new(),
            draining: false,
        };
        Pools {
            inner: Mutex::new(inner),
            max,
            idle_mb_seconds,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An instance leaves the idle list: charge its idle memory-time.
    fn leave(&self, (inst, since): Idle) -> Arc<Instance> {
        let mb = inst.descriptor.memory_mb as f64;
        self.idle_mb_seconds
            .inc_by(since.elapsed().as_secs_f64() * mb);
        inst
    }

    /// The most recently used live idle instance of `key`, or `None` after reserving room
    /// for a new one; refuses when draining or at capacity.
    pub fn take_idle(&self, key: &str) -> Result<Option<Arc<Instance>>, AgentError> {
        let mut g = self.lock();
        if g.draining {
            return Err(AgentError::Draining);
        }
        if let Some(list) = g.idle.get_mut(key)
            && let Some(pos) = list.iter().rposition(|(i, _)| i.alive())
        {
            let entry = list.remove(pos);
            return Ok(Some(self.leave(entry)));
        }
        Self::reserve(&mut g, key, self.max)?;
        Ok(None)
    }

    fn reserve(g: &mut Inner, key: &str, max: usize) -> Result<(), AgentError> {
        if g.live >= max {
            return Err(AgentError::Capacity);
        }
        g.live += 1;
        *g.live_by_key.entry(key.to_string()).or_default() += 1;
        Ok(())
    }

    /// Reserves room for a new instance of `key` (provisioning), refusing at capacity.
    pub fn reserve_new(&self, key: &str) -> Result<(), AgentError> {
        let mut g = self.lock();
        if g.draining {
            return Err(AgentError::Draining);
        }
        Self::reserve(&mut g, key, self.max)
    }

    /// Instances of `key` that exist (starting, busy or idle).
    pub fn live(&self, key: &str) -> usize {
        self.lock().live_by_key.get(key).copied().unwrap_or(0)
    }

    /// Sets the provisioned floors (pool key → instances kept warm).
    pub fn set_floors(&self, floors: HashMap<String, usize>) {
        self.lock().floors = floors;
    }

    /// Returns an instance to its pool; the number of idle instances of `key` after.
    pub fn put_idle(&self, key: String, inst: Arc<Instance>) -> usize {
        let mut g = self.lock();
        let list = g.idle.entry(key).or_default();
        list.push((inst, Instant::now()));
        list.len()
    }

    pub fn idle_count(&self, key: &str) -> usize {
        self.lock().idle.get(key).map_or(0, Vec::len)
    }

    /// An instance (or a reservation) of `key` is gone.
    pub fn forget(&self, key: &str) {
        let mut g = self.lock();
        g.live = g.live.saturating_sub(1);
        if let Some(n) = g.live_by_key.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                g.live_by_key.remove(key);
            }
        }
    }

    /// Removes and returns idle instances past the keep-alive window, and dead ones.
    pub fn expired(&self, idle_timeout: Duration) -> Vec<Arc<Instance>> {
        let mut g = self.lock();
        let mut gone = Vec::new();
        for list in g.idle.values_mut() {
            let (out, keep): (Vec<_>, Vec<_>) = list
                .drain(..)
                .partition(|(i, since)| since.elapsed() >= idle_timeout || !i.alive());
            *list = keep;
            gone.extend(out);
        }
        g.idle.retain(|_, l| !l.is_empty());
        drop(g);
        gone.into_iter().map(|e| self.leave(e)).collect()
    }

    /// Removes idle instances of older descriptors of the same function version (after an
    /// update, the next invoke runs the new code and the old instances stop).
    pub fn stale_versions(&self, d: &VersionDescriptor) -> Vec<Arc<Instance>> {
        let mut g = self.lock();
        let key = d.pool_key();
        let same_version = |i: &Instance| {
            i.descriptor.function_arn == d.function_arn && i.descriptor.version == d.version
        };
        let stale: Vec<String> = g
            .idle
            .iter()
            .filter(|(k, list)| **k != key && list.first().is_some_and(|(i, _)| same_version(i)))
            .map(|(k, _)| k.clone())
            .collect();
        let gone: Vec<Idle> = stale
            .iter()
            .filter_map(|k| g.idle.remove(k))
            .flatten()
            .collect();
        drop(g);
        gone.into_iter().map(|e| self.leave(e)).collect()
    }

    /// Removes every idle instance of a function (all versions).
    pub fn remove_function(&self, function_arn: &str) -> Vec<Arc<Instance>> {
        let mut g = self.lock();
        let mut gone = Vec::new();
        g.idle.retain(|_, list| {
            let of_fn = list
                .first()
                .is_some_and(|(i, _)| i.descriptor.function_arn == function_arn);
            if of_fn {
                gone.append(list);
            }
            !of_fn
        });
        drop(g);
        gone.into_iter().map(|e| self.leave(e)).collect()
    }

    /// Refuses new work from now on and returns every idle instance.
    pub fn drain_all(&self) -> Vec<Arc<Instance>> {
        let mut g = self.lock();
        g.draining = true;
        let gone: Vec<Idle> = g.idle.drain().flat_map(|(_, l)| l).collect();
        drop(g);
        gone.into_iter().map(|e| self.leave(e)).collect()
    }

    /// (live, idle) instance counts.
    pub fn counts(&self) -> (usize, usize) {
        let g = self.lock();
        (g.live, g.idle.values().map(Vec::len).sum())
    }
}
