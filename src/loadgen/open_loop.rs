//! Open loop: requests are scheduled by the clock, not by the answers. A scheduler thread
//! hands each due request to a worker thread's queue; a free connection takes it; latency
//! runs from the *scheduled* time, so time spent queued behind a slow server is counted
//! (no coordinated omission).

use super::client::Conn;
use super::engine::{Ctx, Job, Lane, run_one};
use super::stats::Stats;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Feeds `lanes` round-robin with each request when its time comes, then closes them.
pub(super) fn schedule(
    lanes: &[Arc<Lane>],
    schedule: Box<dyn Iterator<Item = (Duration, u32)> + Send>,
    t0: Instant,
    measure_from: Duration,
) {
    // Sleep precisely: the default 50 µs timer slack would show up in every latency.
    let _ = nix::sys::prctl::set_timerslack(1_000);
    let mut next_lane = 0;
    let mut schedule = schedule.peekable();
    while let Some(&(offset, idx)) = schedule.peek() {
        if lanes[next_lane].aborted() {
            break;
        }
        let at = t0 + offset;
        let now = Instant::now();
        if at > now {
            std::thread::sleep((at - now).min(Duration::from_millis(100)));
            continue;
        }
        schedule.next();
        let measured = offset >= measure_from;
        lanes[next_lane].push(Job { at, idx, measured });
        next_lane = (next_lane + 1) % lanes.len();
    }
    lanes.iter().for_each(|l| l.close());
}

/// One connection: takes queued requests until the queue is closed and empty.
pub(super) async fn worker(ctx: &Ctx, mut conn: Option<Conn>, stats: &RefCell<Stats>, lane: &Lane) {
    while let Some(job) = lane.next().await {
        run_one(ctx, &mut conn, job, stats, lane).await;
    }
}

/// Offsets of `rate` requests per second for `total`, all to request 0.
pub fn fixed_rate(rate: f64, total: Duration) -> impl Iterator<Item = (Duration, u32)> + Send {
    let interval = 1.0 / rate;
    let count = (total.as_secs_f64() * rate).round() as u64;
    (0..count).map(move |k| (Duration::from_secs_f64(k as f64 * interval), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_rate_spaces_requests_evenly() {
        let v: Vec<_> = fixed_rate(1000.0, Duration::from_secs(2)).collect();
        assert_eq!(v.len(), 2000);
        assert_eq!(v[0].0, Duration::ZERO);
        assert_eq!(v[1].0, Duration::from_millis(1));
        assert_eq!(v[1999].0, Duration::from_millis(1999));
        assert_eq!(fixed_rate(0.5, Duration::from_secs(4)).count(), 2);
    }
}
