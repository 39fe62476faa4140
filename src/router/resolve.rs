//! The resolve phase: (function, qualifier) to an immutable version descriptor, from an
//! in-memory metadata cache (moka) that the control service's change feed keeps exact. An alias
//! is cached as its target versions and weight; which version runs is drawn per invoke. The
//! cache also holds what the admit phase needs: each function's reserved concurrency and
//! rate override, and the tenant's sum of reservations. Unknown functions and versions are
//! cached as negative entries. There is no TTL: a follower task reads the keys (functions)
//! of each new change-feed revision from the changes table, drops exactly those entries
//! (everything on a gap), then acknowledges the revision, so route publication can wait for it.

use crate::api::{ApiError, VersionDescriptor};
use crate::control::ControlClient;
use crate::control::client::ChangeBatch;
use crate::control::is_alias_name;
use crate::metrics::{Metrics, ResultLabel};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Functions whose metadata the cache holds at most (least recently used go first).
const MAX_FUNCTIONS: u64 = 100_000;
/// How long one change-feed request waits for a change.
const FEED_WAIT: Duration = Duration::from_secs(2);
/// Pause after the change feed failed (control unreachable) before asking again.
const FEED_RETRY: Duration = Duration::from_millis(250);

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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
    control: Arc<dyn ControlClient>,
    functions: moka::sync::Cache<String, Arc<FunctionMeta>>,
    /// The tenant's sum of reserved concurrency (for the unreserved pool), generation-tagged.
    reserved_total: Mutex<(u64, Option<u64>)>,
    metrics: Arc<Metrics>,
    applied: Mutex<u64>,
    id: String,
    /// Whether the last change-feed request reached the control service (`/readyz`).
    reachable: AtomicBool,
    /// Why it did not, when it did not.
    unreachable_why: Mutex<String>,
}

impl Resolver {
    /// A resolver at revision `rev` (what the follower asks changes after first). `id` names
    /// the router in route acknowledgements.
    pub fn new(
        control: Arc<dyn ControlClient>,
        metrics: Arc<Metrics>,
        rev: u64,
        id: String,
    ) -> Self {
        Resolver {
            control,
            functions: moka::sync::Cache::new(MAX_FUNCTIONS),
            reserved_total: Mutex::new((0, None)),
            metrics,
            applied: Mutex::new(rev),
            id,
            reachable: AtomicBool::new(true),
            unreachable_why: Mutex::new(String::new()),
        }
    }

    /// `None` while the change feed reaches the control service, else why not.
    pub fn control_unreachable(&self) -> Option<String> {
        (!self.reachable.load(Ordering::SeqCst)).then(|| lock(&self.unreachable_why).clone())
    }

    /// Follows the change feed: drop the changed keys, then acknowledge each revision (asking
    /// for the changes after it does), until shutdown. A failed request marks control
    /// unreachable; the first answer after that flushes everything (changes may have been
    /// missed, e.g. across a control restart).
    pub async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut lost = false;
        loop {
            let after = *lock(&self.applied);
            let asked = tokio::select! {
                r = self.control.changes(&self.id, after, FEED_WAIT) => r,
                _ = shutdown.changed() => break,
            };
            match asked {
                Ok(batch) => {
                    if std::mem::take(&mut lost) {
                        tracing::info!(
                            "control service reachable again: flushing the metadata cache"
                        );
                        self.apply(ChangeBatch {
                            rev: batch.rev,
                            keys: None,
                        });
                    } else {
                        self.apply(batch);
                    }
                    self.reachable.store(true, Ordering::SeqCst);
                }
                Err(e) => {
                    if !lost {
                        tracing::warn!(error = %e, "change feed: control service unreachable; serving from the cache");
                    }
                    lost = true;
                    *lock(&self.unreachable_why) = e.message.clone();
                    self.reachable.store(false, Ordering::SeqCst);
                    tokio::select! {
                        _ = tokio::time::sleep(FEED_RETRY) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            }
        }
        self.control.forget(&self.id).await;
    }

    /// Invalidates what changed up to `batch.rev` (everything on a gap).
    fn apply(&self, batch: ChangeBatch) {
        let mut applied = lock(&self.applied);
        match batch.keys {
            Some(_) if batch.rev <= *applied => return,
            Some(keys) => {
                for k in &keys {
                    self.functions.invalidate(k);
                }
            }
            None => {
                tracing::info!(
                    from = *applied,
                    rev = batch.rev,
                    "change feed gap: flushing the metadata cache"
                );
                self.functions.invalidate_all();
            }
        }
        self.invalidate_reserved_total();
        *applied = batch.rev;
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

    /// In process the control service's revision is known for free: a management call that
    /// answered before this lookup (UpdateAlias, PutFunctionConcurrency, …, which do not wait for
    /// route acknowledgements) is applied here first, so the very next invoke sees it. Over
    /// HTTP the follower's long poll does this.
    async fn catch_up(&self) {
        let Some(rev) = self.control.known_rev() else {
            return;
        };
        let after = *lock(&self.applied);
        if rev <= after {
            return;
        }
        if let Ok(batch) = self.control.changes(&self.id, after, Duration::ZERO).await {
            self.apply(batch);
        }
    }

    fn meta(&self, name: &str) -> Arc<FunctionMeta> {
        self.functions
            .get_with_by_ref(name, || Arc::new(FunctionMeta::default()))
    }

    pub async fn resolve(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Arc<VersionDescriptor>, ApiError> {
        self.catch_up().await;
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
        let target = self.target(name, qualifier).await;
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
    pub async fn limits(&self, name: &str) -> Result<FunctionLimits, ApiError> {
        self.catch_up().await;
        let meta = self.meta(name);
        if let Some(l) = *lock(&meta.limits) {
            self.hit(true);
            return Ok(l);
        }
        self.hit(false);
        self.read();
        self.read();
        let l = self.control.function_limits(name).await?;
        *lock(&meta.limits) = Some(l);
        Ok(l)
    }

    /// The tenant's sum of reserved concurrency, cached.
    pub async fn reserved_total(&self) -> Result<u64, ApiError> {
        self.catch_up().await;
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
        let n = self.control.reserved_total().await?;
        let mut t = lock(&self.reserved_total);
        if t.0 == generation {
            t.1 = Some(n);
        }
        Ok(n)
    }

    /// Reads a version, or an alias and the versions it routes to.
    async fn target(&self, name: &str, qualifier: Option<&str>) -> Result<Target, ApiError> {
        let Some(alias) = qualifier.filter(|q| is_alias_name(q)) else {
            return Ok(Target::Version(self.routable(name, qualifier).await?));
        };
        self.read();
        let a = self.control.alias(name, alias).await?;
        let primary = self.routable(name, Some(&a.function_version)).await?;
        let weights = a
            .routing_config
            .unwrap_or_default()
            .additional_version_weights;
        let additional = match weights.into_iter().next() {
            Some((v, w)) => Some((self.routable(name, Some(&v)).await?, w)),
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

impl Resolver {
    /// What the router may serve for a version (409 while not in service).
    async fn routable(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Arc<VersionDescriptor>, ApiError> {
        self.read();
        let d = self
            .control
            .routable(name, qualifier.unwrap_or("$LATEST"))
            .await;
        d.map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(version: &str) -> Arc<VersionDescriptor> {
        Arc::new(VersionDescriptor::for_tests(version))
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
