//! Closed loop: each worker sends its next request as soon as the previous one is answered;
//! latency runs from the actual send. (A stalled server slows the senders down, so the
//! stall mostly hides from the percentiles: use the open loop for latency under load.)

use super::client::Conn;
use super::engine::{Ctx, Job, Lane, run_one};
use super::stats::Stats;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// One worker until `end`; requests started before `measure_from` are not recorded.
pub(super) async fn worker(
    ctx: &Ctx,
    mut conn: Option<Conn>,
    stats: &RefCell<Stats>,
    lane: &Lane,
    measure_from: Instant,
    end: Instant,
) {
    loop {
        let at = Instant::now();
        if at >= end || lane.aborted() {
            return;
        }
        let job = Job {
            at,
            idx: 0,
            measured: at >= measure_from,
        };
        if !run_one(ctx, &mut conn, job, stats, lane).await {
            // Cannot connect: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
