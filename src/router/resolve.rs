//! The resolve phase: (function, qualifier) to an immutable version descriptor, from an
//! in-memory cache that the control service's change feed keeps exact.

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
}

impl Resolver {
    pub fn new(control: Arc<Control>) -> Self {
        let changes = control.changes();
        let rev = *changes.borrow();
        Resolver {
            control,
            changes,
            cache: Mutex::new((rev, HashMap::new())),
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
            if c.0 != rev {
                *c = (rev, HashMap::new());
            }
            if let Some(d) = c.1.get(&key) {
                return Ok(d.clone());
            }
        }
        let v = self.control.lookup(name, qualifier)?;
        let d = Arc::new(descriptor(&v, &self.control));
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.0 == rev {
            c.1.insert(key, d.clone());
        }
        Ok(d)
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
