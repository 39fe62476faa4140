//! Route publication acknowledgements: the publish-route step completes only once every live
//! router has seen (and flushed its cache for) the change-feed revision that made the new
//! configuration routable (DESIGN.md "Change feed").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// The newest revision each live router has acknowledged.
#[derive(Default)]
pub struct RouteAcks {
    routers: Mutex<HashMap<String, u64>>,
    changed: watch::Sender<()>,
}

impl RouteAcks {
    /// Registers (or refreshes) a router's acknowledgement.
    pub fn ack(&self, router: &str, rev: u64) {
        let mut r = self.routers.lock().unwrap_or_else(|p| p.into_inner());
        let slot = r.entry(router.to_string()).or_insert(0);
        *slot = (*slot).max(rev);
        drop(r);
        self.changed.send_replace(());
    }

    /// A router that stopped no longer holds publications back.
    pub fn forget(&self, router: &str) {
        self.routers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(router);
        self.changed.send_replace(());
    }

    fn all_at_least(&self, rev: u64) -> bool {
        self.routers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .all(|r| *r >= rev)
    }

    /// Waits until every live router acknowledged `rev`; `false` on timeout.
    pub async fn wait_all(&self, rev: u64, timeout: Duration) -> bool {
        let mut rx = self.changed.subscribe();
        tokio::time::timeout(timeout, async {
            while !self.all_at_least(rev) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
            && self.all_at_least(rev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_every_router() {
        let acks = std::sync::Arc::new(RouteAcks::default());
        assert!(
            acks.wait_all(5, Duration::from_millis(10)).await,
            "no routers: nothing to wait for"
        );
        acks.ack("a", 4);
        acks.ack("b", 5);
        assert!(!acks.wait_all(5, Duration::from_millis(20)).await);
        let a2 = acks.clone();
        tokio::spawn(async move { a2.ack("a", 6) });
        assert!(acks.wait_all(5, Duration::from_secs(5)).await);
        acks.forget("b");
        assert!(acks.wait_all(6, Duration::from_millis(10)).await);
    }
}
