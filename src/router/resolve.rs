//! The resolve phase: (function, qualifier) to an immutable version descriptor, from an
//! in-memory cache that the control service's change feed keeps exact. A follower task flushes
//! the cache on every new revision and acknowledges it, so route publication can wait for it.

use crate::api::{ApiError, VersionDescriptor};
use crate::control::Control;
use crate::store::StoredVersion;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

type Key = (String, String);

/// Descriptor cache, flushed whenever the change-feed revision moves.
pub struct Resolver {
    control: Arc<Control>,
    changes: watch::Receiver<u64>,
    cache: Mutex<(u64, HashMap<Key, Arc<VersionDescriptor>>)>,
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

    /// Follows the change feed: flush, then acknowledge each revision, until the feed ends.
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
            if let Some(d) = c.1.get(&key) {
                return Ok(d.clone());
            }
        }
        let d = Arc::new(self.load(name, &key.1, qualifier)?);
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.0 == rev {
            c.1.insert(key, d.clone());
        }
        Ok(d)
    }

    /// Reads what the router may serve; a function that exists but is not in service yet is
    /// 409, as Lambda answers for a `Pending` function.
    fn load(
        &self,
        name: &str,
        version: &str,
        qualifier: Option<&str>,
    ) -> Result<VersionDescriptor, ApiError> {
        let store = self.control.store();
        let account = self.control.account();
        let err = |e: crate::store::StoreError| ApiError::service(e.to_string());
        if let Some(v) = store.route(account, name, version).map_err(err)? {
            return Ok(descriptor(&v, &self.control));
        }
        let reported = self.control.lookup(name, qualifier)?;
        Err(ApiError::conflict(format!(
            "The operation cannot be performed at this time. The function is currently in the following state: {}",
            reported.config.state
        )))
    }
}

fn descriptor(v: &StoredVersion, control: &Control) -> VersionDescriptor {
    let c = &v.config;
    VersionDescriptor {
        function_arn: crate::api::names::function_arn(
            control.region(),
            control.account(),
            &c.function_name,
        ),
        function_name: c.function_name.clone(),
        version: c.version.clone(),
        code_sha256: v.code_sha256_hex.clone(),
        runtime: c.runtime.clone(),
        handler: c.handler.clone(),
        memory_mb: c.memory_size,
        timeout_secs: c.timeout,
        environment: c
            .environment
            .as_ref()
            .map(|e| e.variables.clone())
            .unwrap_or_default(),
        revision_id: c.revision_id.clone(),
    }
}
