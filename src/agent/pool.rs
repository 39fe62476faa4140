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
    /// Memory (MB) of every live instance and reservation.
    mem_used: u64,
    draining: bool,
}

/// The outcome of asking for an instance.
pub enum Taken {
    /// A warm instance of the key.
    Warm(Arc<Instance>),
    /// Room was reserved for a new instance.
    Reserved,
    /// No room: stop this idle instance (least recently used) and ask again.
    Evict(Arc<Instance>),
}

/// All pools of one agent.
pub struct Pools {
    inner: Mutex<Inner>,
    max: usize,
    /// Memory capacity (MB) shared by all instances.
    mem_capacity: u64,
    /// Idle seconds × memory MB, added whenever an instance stops being idle.
    idle_mb_seconds: Counter<f64, AtomicU64>,
}

impl Pools {
    pub fn new(max: usize, mem_capacity: u64, idle_mb_seconds: Counter<f64, AtomicU64>) -> Self {
        let inner = Inner {
            idle: HashMap::new(),
            live: 0,
            live_by_key: HashMap::new(),
            floors: HashMap::new(),
            mem_used: 0,
            draining: false,
        };
        Pools {
            inner: Mutex::new(inner),
            max,
            mem_capacity,
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

    /// The most recently used live idle instance of `key`; or room reserved for a new one of
    /// `mem` MB; or, when the agent is full, an idle instance to evict first (least recently
    /// used, never one a provisioned floor keeps). Refuses when draining or when nothing can
    /// make room.
    pub fn take(&self, key: &str, mem: u64) -> Result<Taken, AgentError> {
        let mut g = self.lock();
        if g.draining {
            return Err(AgentError::Draining);
        }
        if let Some(list) = g.idle.get_mut(key)
            && let Some(pos) = list.iter().rposition(|(i, _)| i.alive())
        {
            let entry = list.remove(pos);
            return Ok(Taken::Warm(self.leave(entry)));
        }
        self.reserve_or_evict(&mut g, key, mem)
    }

    fn reserve_or_evict(&self, g: &mut Inner, key: &str, mem: u64) -> Result<Taken, AgentError> {
        if g.live < self.max && g.mem_used + mem <= self.mem_capacity {
            g.live += 1;
            g.mem_used += mem;
            *g.live_by_key.entry(key.to_string()).or_default() += 1;
            return Ok(Taken::Reserved);
        }
        match Self::least_recently_used(g) {
            Some((k, pos)) => {
                let entry = g
                    .idle
                    .get_mut(&k)
                    .map(|l| l.remove(pos))
                    .ok_or(AgentError::Capacity)?;
                Ok(Taken::Evict(self.leave(entry)))
            }
            None => Err(AgentError::Capacity),
        }
    }

    /// The idle instance used longest ago among those above their key's provisioned floor.
    fn least_recently_used(g: &Inner) -> Option<(String, usize)> {
        g.idle
            .iter()
            .filter(|(k, l)| l.len() > g.floors.get(*k).copied().unwrap_or(0))
            .filter_map(|(k, l)| l.first().map(|(_, since)| (k.clone(), *since)))
            .min_by_key(|(_, since)| *since)
            .map(|(k, _)| (k, 0))
    }

    /// Reserves room for a new instance of `key` (provisioning), or names one to evict.
    pub fn reserve_new(&self, key: &str, mem: u64) -> Result<Taken, AgentError> {
        let mut g = self.lock();
        if g.draining {
            return Err(AgentError::Draining);
        }
        self.reserve_or_evict(&mut g, key, mem)
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

    /// An instance (or a reservation) of `key` with `mem` MB is gone.
    pub fn forget(&self, key: &str, mem: u64) {
        let mut g = self.lock();
        g.live = g.live.saturating_sub(1);
        g.mem_used = g.mem_used.saturating_sub(mem);
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
    pub fn stale_versions(&self, d: &VersionDescriptor, key: &str) -> Vec<Arc<Instance>> {
        let mut g = self.lock();
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

    /// Memory (MB) reserved by live instances.
    pub fn memory_used(&self) -> u64 {
        self.lock().mem_used
    }

    /// (live, idle) instance counts.
    pub fn counts(&self) -> (usize, usize) {
        let g = self.lock();
        (g.live, g.idle.values().map(Vec::len).sum())
    }

    /// Per-version idle and busy counts, memory and instance totals (`GET /v1/state`).
    pub fn state(&self) -> super::wire::AgentState {
        let g = self.lock();
        let versions = g
            .live_by_key
            .iter()
            .map(|(key, live)| {
                let idle = g.idle.get(key).map_or(0, Vec::len);
                super::wire::VersionState {
                    key: key.clone(),
                    idle,
                    busy: live.saturating_sub(idle),
                }
            })
            .collect();
        super::wire::AgentState {
            versions,
            memory_used_mb: g.mem_used,
            memory_capacity_mb: self.mem_capacity,
            instances: g.live,
            max_instances: self.max,
            draining: g.draining,
        }
    }
}
