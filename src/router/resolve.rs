//! The resolve phase: (function, qualifier) to an immutable version descriptor, from an
//! in-memory metadata cache (moka) that the control service's change feed keeps exact. An alias
//! is cached as its target versions and weight; which version runs is drawn per invoke. The
//! cache also holds what the admit phase needs: each function's reserved concurrency and
//! rate override, and the tenant's sum of reservations. Unknown functions and versions are
//! cached as negative entries. There is no TTL: a follower task reads the keys (functions)
//! of each new change-feed revision from the changes table, drops exactly those entries
//! (everything on a gap), then acknowledges the revision, so route publication can wait for it.

use crate::api::{ApiError, VersionDescriptor};
use crate::control::{Control, is_alias_name};
use crate::metrics::{Metrics, ResultLabel};
use crate::store::resources::kind;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Functions whose metadata the cache holds at most (least recently used go first).
const MAX_FUNCTIONS: u64 = 100_000;
/// More change-feed entries than this in one step flush the whole cache.
const MAX_CHANGES: u64 = 10_000;

/// What a (function, qualifier) resolves to.
#[derive(Debug, Clone)]
enum Target {
    Version(Arc<VersionDescriptor>),
    /// An alias: the primary version, and the additional version with its weight.
    Alias {
        primary: Arc<VersionDescriptor>,
        additional: Option<(Arc<VersionDescriptor>, f64)>,
    },
}

impl Target {
    /// The version to run; `draw` is uniform in [0, 1).
    fn pick(&self, draw: f64) -> Arc<VersionDescriptor> {
        match self {
            Target::Version(d) => d.clone(),
            Target::Alias {
                additional: Some((d, weight)),
                ..
            } if draw < *weight => d.clone(),
            Target::Alias { primary, .. } => primary.clone(),
        }
    }
}

/// The admit phase's view of a function's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunctionLimits {
    /// Reserved concurrency (PutFunctionConcurrency), if set.
    pub reserved: Option<u32>,
    /// Per-function invocation rate override (`hearth limits`), per second.
    pub rate_per_sec: Option<u32>,
}

/// One function's cached metadata. An entry is replaced (never edited) after an invalidation,
/// so a read that raced with a change can only land in an entry nobody sees any more.
#[derive(Default)]
struct FunctionMeta {
    /// By qualifier; a 4xx (unknown function or version, not yet in service) is a negative entry.
    targets: Mutex<HashMap<String, Result<Target, ApiError>>>,
    limits: Mutex<Option<FunctionLimits>>,
}

/// The metadata cache and its change-feed follower.
pub struct Resolver {
    control: Arc<Control>,
    changes: watch::Receiver<u64>,
    functions: moka::sync::Cache<String, Arc<FunctionMeta>>,
    /// The tenant's sum of reserved concurrency (for the unreserved pool), generation-tagged.
    reserved_total: Mutex<(u64, Option<u64>)>,
    metrics: Arc<Metrics>,
    applied: Mutex<u64>,
    id: String,
}

impl Resolver {
    pub fn new(control: Arc<Control>, metrics: Arc<Metrics>) -> Self {
        let changes = control.changes();
        let rev = *changes.borrow();
        control.route_acks().ack("router", rev);
        Resolver {
            control,
            changes,
            functions: moka::sync::Cache::new(MAX_FUNCTIONS),
            reserved_total: Mutex::new((0, None)),
            metrics,
            applied: Mutex::new(rev),
            id: "router".into(),
        }
    }

    /// Follows the change feed: drop the changed keys, then acknowledge each revision, until
    /// shutdown.
    pub async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.changes.clone();
        loop {
            let rev = *changes.borrow_and_update();
            self.apply(rev);
            self.control.route_acks().ack(&self.id, rev);
            tokio::select! {
                r = changes.changed() => if r.is_err() { break },
                _ = shutdown.changed() => break,
            }
        }
        self.control.route_acks().forget(&self.id);
    }

    /// Invalidates what changed between the applied revision and `rev`.
    fn apply(&self, rev: u64) {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        if rev <= *applied {
            return;
        }
        let from = *applied;
        let wanted = rev - from;
        let rows = (wanted <= MAX_CHANGES)
            .then(|| self.control.store().changes_after(from, wanted as usize))
            .and_then(Result::ok)
            .filter(|rows| contiguous(from, rev, rows.iter().map(|c| c.rev)));
        match rows {
            Some(rows) => {
                for c in rows.iter().filter(|c| c.tenant == self.control.account()) {
                    self.functions.invalidate(&c.key);
                }
            }
            None => {
                tracing::info!(from, rev, "change feed gap: flushing the metadata cache");
                self.functions.invalidate_all();
            }
        }
        self.invalidate_reserved_total();
        *applied = rev;
    }

    fn invalidate_reserved_total(&self) {
        let mut t = self
            .reserved_total
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *t = (t.0 + 1, None);
    }

    fn hit(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.metrics
            .router
            .metadata_cache
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    fn read(&self) {
        self.metrics.router.metadata_reads.inc();
    }

    fn meta(&self, name: &str) -> Arc<FunctionMeta> {
        self.functions
            .get_with_by_ref(name, || Arc::new(FunctionMeta::default()))
    }

    pub fn resolve(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Arc<VersionDescriptor>, ApiError> {
        let q = qualifier.unwrap_or("$LATEST");
        let meta = self.meta(name);
        if let Some(t) = lock(&meta.targets).get(q) {
            self.hit(true);
            return t
                .as_ref()
                .map(|t| t.pick(fastrand::f64()))
                .map_err(Clone::clone);
        }
        self.hit(false);
        let target = self.target(name, qualifier);
        let cacheable = match &target {
            Ok(_) => true,
            Err(e) => e.status.is_client_error(),
        };
        if cacheable {
            lock(&meta.targets).insert(q.to_string(), target.clone());
        }
        target.map(|t| t.pick(fastrand::f64()))
    }

    /// The function's limits (reserved concurrency, rate override), cached.
    pub fn limits(&self, name: &str) -> Result<FunctionLimits, ApiError> {
        let meta = self.meta(name);
        if let Some(l) = *lock(&meta.limits) {
            self.hit(true);
            return Ok(l);
        }
        self.hit(false);
        self.read();
        let reserved = self.control.reserved_concurrency(name)?;
        self.read();
        let rate_per_sec = self.control.rate_override(name)?;
        let l = FunctionLimits {
            reserved,
            rate_per_sec,
        };
        *lock(&meta.limits) = Some(l);
        Ok(l)
    }

    /// The tenant's sum of reserved concurrency, cached.
    pub fn reserved_total(&self) -> Result<u64, ApiError> {
        let generation = {
            let t = lock(&self.reserved_total);
            if let Some(n) = t.1 {
                self.hit(true);
                return Ok(n);
            }
            t.0
        };
        self.hit(false);
        self.read();
        let docs = self
            .control
            .store()
            .tenant_resources(self.control.account(), kind::CONCURRENCY)
            .map_err(|e| ApiError::service(e.to_string()))?;
        let n = docs
            .iter()
            .filter_map(|(_, _, j)| serde_json::from_str::<serde_json::Value>(j).ok())
            .filter_map(|v| v["ReservedConcurrentExecutions"].as_u64())
            .sum();
        let mut t = lock(&self.reserved_total);
        if t.0 == generation {
            t.1 = Some(n);
        }
        Ok(n)
    }

    /// Reads a version, or an alias and the versions it routes to.
    fn target(&self, name: &str, qualifier: Option<&str>) -> Result<Target, ApiError> {
        let version = |q: Option<&str>| self.routable(name, q).map(Arc::new);
        let Some(alias) = qualifier.filter(|q| is_alias_name(q)) else {
            return Ok(Target::Version(version(qualifier)?));
        };
        self.read();
        let a = self.control.alias(name, alias)?;
        let primary = version(Some(&a.function_version))?;
        let weights = a
            .routing_config
            .unwrap_or_default()
            .additional_version_weights;
        let additional = match weights.into_iter().next() {
            Some((v, w)) => Some((version(Some(&v))?, w)),
            None => None,
        };
        Ok(Target::Alias {
            primary,
            additional,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `revs` are exactly `from + 1 ..= to`.
fn contiguous(from: u64, to: u64, revs: impl Iterator<Item = u64>) -> bool {
    let mut next = from + 1;
    for r in revs {
        if r != next {
            return false;
        }
        next += 1;
    }
    next == to + 1
}

impl Resolver {
    /// What the router may serve for a version; a function that exists but is not in service
    /// yet is 409, as Lambda answers for a `Pending` function.
    fn routable(&self, name: &str, qualifier: Option<&str>) -> Result<VersionDescriptor, ApiError> {
        let store = self.control.store();
        let version = qualifier.unwrap_or("$LATEST");
        self.read();
        let route = store.route(self.control.account(), name, version);
        if let Some(v) = route.map_err(|e| ApiError::service(e.to_string()))? {
            return Ok(self.control.descriptor(&v));
        }
        self.read();
        let reported = self.control.lookup(name, qualifier)?;
        Err(ApiError::conflict(format!(
            "The operation cannot be performed at this time. The function is currently in the following state: {}",
            reported.config.state
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(version: &str) -> Arc<VersionDescriptor> {
        Arc::new(VersionDescriptor {
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            function_name: "f".into(),
            version: version.into(),
            code_sha256: String::new(),
            runtime: "provided".into(),
            handler: String::new(),
            memory_mb: 128,
            timeout_secs: 3,
            environment: Default::default(),
            revision_id: version.into(),
            egress: false,
        })
    }

    #[test]
    fn contiguous_revisions() {
        assert!(contiguous(3, 5, [4, 5].into_iter()));
        assert!(!contiguous(3, 5, [4].into_iter()));
        assert!(!contiguous(3, 5, [5].into_iter()));
        assert!(!contiguous(3, 5, [4, 6].into_iter()));
        assert!(contiguous(3, 3, [].into_iter()));
    }

    #[test]
    fn weighted_alias_draws() {
        let t = Target::Alias {
            primary: d("1"),
            additional: Some((d("2"), 0.1)),
        };
        assert_eq!(t.pick(0.0).version, "2");
        assert_eq!(t.pick(0.0999).version, "2");
        assert_eq!(t.pick(0.1).version, "1");
        assert_eq!(t.pick(0.9999).version, "1");
        let n = 100_000;
        let twos = (0..n)
            .filter(|_| t.pick(fastrand::f64()).version == "2")
            .count();
        let share = twos as f64 / n as f64;
        assert!((0.09..0.11).contains(&share), "{share}");
        let none = Target::Alias {
            primary: d("1"),
            additional: Some((d("2"), 0.0)),
        };
        assert!((0..1000).all(|_| none.pick(fastrand::f64()).version == "1"));
        let all = Target::Alias {
            primary: d("1"),
            additional: Some((d("2"), 1.0)),
        };
        assert!((0..1000).all(|_| all.pick(fastrand::f64()).version == "2"));
    }
}
