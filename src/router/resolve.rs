//! The resolve phase: (function, qualifier) to an immutable version descriptor, from an
//! in-memory cache that the control service's change feed keeps exact. An alias is cached as
//! its target versions and weight; which version runs is drawn per invoke. A follower task
//! flushes the cache on every new revision and acknowledges it, so route publication can wait
//! for it.

use crate::api::{ApiError, VersionDescriptor};
use crate::control::{Control, is_alias_name};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

type Key = (String, String);

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

/// Descriptor cache, flushed whenever the change-feed revision moves.
pub struct Resolver {
    control: Arc<Control>,
    changes: watch::Receiver<u64>,
    cache: Mutex<(u64, HashMap<Key, Target>)>,
    id: String,
}

impl Resolver {
    pub fn new(control: Arc<Control>) -> Self {
        let changes = control.changes();
        let rev = *changes.borrow();
        control.route_acks().ack("router", rev);
        Resolver {
            control,
            changes,
            cache: Mutex::new((rev, HashMap::new())),
            id: "router".into(),
        }
    }

    /// Follows the change feed: flush, then acknowledge each revision, until shutdown.
    pub async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.changes.clone();
        loop {
            let rev = *changes.borrow_and_update();
            self.flush(rev);
            self.control.route_acks().ack(&self.id, rev);
            tokio::select! {
                r = changes.changed() => if r.is_err() { break },
                _ = shutdown.changed() => break,
            }
        }
        self.control.route_acks().forget(&self.id);
    }

    fn flush(&self, rev: u64) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.0 < rev {
            *c = (rev, HashMap::new());
        }
    }

    pub fn resolve(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Arc<VersionDescriptor>, ApiError> {
        let key = (name.to_string(), qualifier.unwrap_or("$LATEST").to_string());
        let rev = *self.changes.borrow();
        {
            let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if c.0 < rev {
                *c = (rev, HashMap::new());
            }
            if let Some(t) = c.1.get(&key) {
                return Ok(t.pick(fastrand::f64()));
            }
        }
        let target = self.target(name, qualifier)?;
        let picked = target.pick(fastrand::f64());
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.0 == rev {
            c.1.insert(key, target);
        }
        Ok(picked)
    }

    /// Reads a version, or an alias and the versions it routes to.
    fn target(&self, name: &str, qualifier: Option<&str>) -> Result<Target, ApiError> {
        let version = |q: Option<&str>| self.routable(name, q).map(Arc::new);
        let Some(alias) = qualifier.filter(|q| is_alias_name(q)) else {
            return Ok(Target::Version(version(qualifier)?));
        };
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

impl Resolver {
    /// What the router may serve for a version; a function that exists but is not in service
    /// yet is 409, as Lambda answers for a `Pending` function.
    fn routable(&self, name: &str, qualifier: Option<&str>) -> Result<VersionDescriptor, ApiError> {
        let store = self.control.store();
        let version = qualifier.unwrap_or("$LATEST");
        let route = store.route(self.control.account(), name, version);
        if let Some(v) = route.map_err(|e| ApiError::service(e.to_string()))? {
            return Ok(self.control.descriptor(&v));
        }
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
