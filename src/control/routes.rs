//! Route publication acknowledgements: the publish-route step completes only once every live
//! router has seen (and flushed its cache for) the change-feed revision that made the new
//! configuration routable (DESIGN.md "Change feed").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A remote router not heard from for this long is no longer live: publications stop waiting
/// for it (its long polls come back at least every few seconds while it runs).
pub const REMOTE_STALE_AFTER: Duration = Duration::from_secs(6);

/// How often a waiting publication re-checks which remote routers are still live.
const STALE_CHECK: Duration = Duration::from_millis(500);

/// One router's newest acknowledgement; a remote router's also when it was last heard from.
#[derive(Debug, Clone, Copy)]
struct Ack {
    rev: u64,
    /// `None` for the in-process router (live until it says otherwise).
    seen: Option<Instant>,
}

/// The newest revision each live router has acknowledged.
pub struct RouteAcks {
    routers: Mutex<HashMap<String, Ack>>,
    changed: watch::Sender<()>,
    stale_after: Duration,
}

impl Default for RouteAcks {
    fn default() -> Self {
        RouteAcks::with_stale_after(REMOTE_STALE_AFTER)
    }
}

impl RouteAcks {
    pub fn with_stale_after(stale_after: Duration) -> RouteAcks {
        RouteAcks {
            routers: Mutex::default(),
            changed: watch::Sender::default(),
            stale_after,
        }
    }

    /// Registers (or refreshes) the in-process router's acknowledgement.
    pub fn ack(&self, router: &str, rev: u64) {
        self.record(router, rev, None);
    }

    /// Registers (or refreshes) a remote router's acknowledgement; it counts as live for
    /// [`REMOTE_STALE_AFTER`].
    pub fn ack_remote(&self, router: &str, rev: u64) {
        self.record(router, rev, Some(Instant::now()));
    }

    fn record(&self, router: &str, rev: u64, seen: Option<Instant>) {
        let mut r = self.routers.lock().unwrap_or_else(|p| p.into_inner());
        let slot = r.entry(router.to_string()).or_insert(Ack { rev: 0, seen });
        slot.rev = slot.rev.max(rev);
        slot.seen = seen;
        drop(r);
        self.changed.send_replace(());
    }

    /// The routers counted as live now.
    pub fn live(&self) -> usize {
        let now = Instant::now();
        self.routers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|a| is_live(a, now, self.stale_after))
            .count()
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
        let now = Instant::now();
        let mut r = self.routers.lock().unwrap_or_else(|p| p.into_inner());
        r.retain(|_, a| is_live(a, now, self.stale_after));
        r.values().all(|a| a.rev >= rev)
    }

    /// Waits until every live router acknowledged `rev`; `false` on timeout.
    pub async fn wait_all(&self, rev: u64, timeout: Duration) -> bool {
        let mut rx = self.changed.subscribe();
        tokio::time::timeout(timeout, async {
            while !self.all_at_least(rev) {
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    // A remote router may go stale without any acknowledgement arriving.
                    _ = tokio::time::sleep(STALE_CHECK) => {}
                }
            }
        })
        .await
        .is_ok()
            && self.all_at_least(rev)
    }
}

fn is_live(a: &Ack, now: Instant, stale_after: Duration) -> bool {
    a.seen.is_none_or(|s| now.duration_since(s) < stale_after)
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

    #[tokio::test]
    async fn a_silent_remote_router_is_forgotten() {
        let acks = RouteAcks::with_stale_after(Duration::from_millis(300));
        acks.ack("local", 9);
        acks.ack_remote("remote", 3);
        assert_eq!(acks.live(), 2);
        assert!(!acks.wait_all(9, Duration::from_millis(50)).await);
        // Nothing heard from the remote router for longer than its stale time.
        assert!(acks.wait_all(9, Duration::from_secs(30)).await);
        assert_eq!(acks.live(), 1);
    }
}
