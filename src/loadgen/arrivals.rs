//! Trace arrivals: when each invocation is sent and how long it asks the function to run.
//!
//! Within each minute, invocations arrive uniformly at random (a seeded RNG per function,
//! so choosing other functions does not move them), except `timer` functions, which fire at
//! a fixed second offset derived from the function's key; `c` timer invocations in a minute
//! are spaced `60/c` s apart from that offset (wrapping within the minute). Durations are
//! drawn from the function's percentiles, linear between them. `compress` divides both.

use super::trace::{Function, PERCENTILES};
use std::time::Duration;

/// One scheduled invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// Offset from the start of the replay (already compressed).
    pub at: Duration,
    /// Index into the replayed functions.
    pub func: u32,
    /// The `sleep_ms` of the payload (already compressed).
    pub sleep_ms: u32,
    /// The function's first invocation (its cold start is not counted against the policy).
    pub first: bool,
}

/// FNV-1a: a stable hash for seeds and timer offsets.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The second within each minute at which a timer function fires.
pub fn timer_offset_s(key: &str) -> f64 {
    (fnv1a(key) % 60) as f64
}

/// The duration at quantile `u` in [0, 1]: linear between the trace's percentiles.
pub fn duration_at(p: &[f64; 7], u: f64) -> f64 {
    let u = u.clamp(0.0, 1.0);
    for i in 0..PERCENTILES.len() - 1 {
        let (lo, hi) = (PERCENTILES[i].0, PERCENTILES[i + 1].0);
        if u <= hi {
            return p[i] + (p[i + 1] - p[i]) * (u - lo) / (hi - lo);
        }
    }
    p[6]
}

/// Seconds (uncompressed) into the replay of each invocation of `f` in minute `m`.
fn minute_times(
    f: &Function,
    key: &str,
    m: usize,
    count: u32,
    rng: &mut fastrand::Rng,
) -> Vec<f64> {
    let base = m as f64 * 60.0;
    if f.trigger.eq_ignore_ascii_case("timer") {
        let off = timer_offset_s(key);
        (0..count)
            .map(|i| base + (off + f64::from(i) * 60.0 / f64::from(count)) % 60.0)
            .collect()
    } else {
        (0..count).map(|_| base + rng.f64() * 60.0).collect()
    }
}

/// Every invocation of `functions`, in time order.
pub fn arrivals(functions: &[Function], seed: u64, compress: f64) -> Vec<Invocation> {
    let mut out = vec![];
    for (i, f) in functions.iter().enumerate() {
        let key = f.key();
        let mut rng = fastrand::Rng::with_seed(seed ^ fnv1a(&key));
        for (m, &count) in f.counts.iter().enumerate() {
            for t in minute_times(f, &key, m, count, &mut rng) {
                let ms = f.durations.map_or(0.0, |p| duration_at(&p, rng.f64()));
                out.push(Invocation {
                    at: Duration::from_secs_f64(t / compress),
                    func: i as u32,
                    sleep_ms: (ms / compress).round().min(f64::from(u32::MAX)) as u32,
                    first: false,
                });
            }
        }
    }
    out.sort_by_key(|inv| (inv.at, inv.func));
    let mut seen = vec![false; functions.len()];
    for inv in &mut out {
        inv.first = !std::mem::replace(&mut seen[inv.func as usize], true);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn func(key: &str, trigger: &str, counts: &[u32]) -> Function {
        Function {
            hashes: [None, None, Some(key.into())],
            trigger: trigger.into(),
            counts: counts.to_vec(),
            durations: Some([0.0, 10.0, 100.0, 200.0, 300.0, 1000.0, 5000.0]),
            memory_mb: Some(128.0),
        }
    }

    #[test]
    fn interpolates_between_percentiles() {
        let p = [1.0, 2.0, 10.0, 20.0, 40.0, 100.0, 200.0];
        assert_eq!(duration_at(&p, 0.0), 1.0);
        assert_eq!(duration_at(&p, 0.01), 2.0);
        assert_eq!(duration_at(&p, 0.5), 20.0);
        assert_eq!(duration_at(&p, 0.625), 30.0);
        assert_eq!(duration_at(&p, 0.995), 150.0);
        assert_eq!(duration_at(&p, 1.0), 200.0);
        assert_eq!(duration_at(&p, 7.0), 200.0);
        assert!((duration_at(&p, 0.13) - 6.0).abs() < 1e-9);
    }

    #[test]
    fn counts_per_minute_are_preserved() {
        let fs = [
            func("a", "http", &[3, 0, 7, 1]),
            func("b", "timer", &[2, 5, 0, 60]),
        ];
        let inv = arrivals(&fs, 42, 1.0);
        for (i, f) in fs.iter().enumerate() {
            for (m, &c) in f.counts.iter().enumerate() {
                let n = inv
                    .iter()
                    .filter(|v| v.func == i as u32 && (v.at.as_secs_f64() / 60.0) as usize == m)
                    .count();
                assert_eq!(n, c as usize, "function {i} minute {m}");
            }
        }
        assert!(inv.windows(2).all(|w| w[0].at <= w[1].at));
        // Exactly one first invocation per function, and it is the earliest.
        for i in 0..2 {
            let mine: Vec<_> = inv.iter().filter(|v| v.func == i).collect();
            assert!(mine[0].first && mine[1..].iter().all(|v| !v.first));
        }
        // Compression divides times and durations.
        let fast = arrivals(&fs, 42, 60.0);
        for (a, b) in inv.iter().zip(&fast) {
            assert!((a.at.as_secs_f64() / 60.0 - b.at.as_secs_f64()).abs() < 1e-6);
            assert!((f64::from(a.sleep_ms) / 60.0 - f64::from(b.sleep_ms)).abs() <= 1.0);
        }
    }

    #[test]
    fn deterministic_under_a_seed() {
        let fs = [func("a", "http", &[20, 20]), func("c", "queue", &[5, 9])];
        assert_eq!(arrivals(&fs, 7, 1.0), arrivals(&fs, 7, 1.0));
        assert_ne!(arrivals(&fs, 7, 1.0), arrivals(&fs, 8, 1.0));
        // A function's arrivals do not depend on which other functions are replayed.
        let alone: Vec<_> = arrivals(&fs[1..], 7, 1.0)
            .into_iter()
            .map(|v| v.at)
            .collect();
        let with: Vec<_> = arrivals(&fs, 7, 1.0)
            .into_iter()
            .filter(|v| v.func == 1)
            .map(|v| v.at)
            .collect();
        assert_eq!(alone, with);
        assert!(arrivals(&fs, 7, 1.0).iter().all(|v| v.sleep_ms <= 5000));
    }

    #[test]
    fn timers_fire_at_their_offset() {
        let off = timer_offset_s("t");
        let inv = arrivals(&[func("t", "timer", &[1, 4])], 1, 1.0);
        let secs: Vec<f64> = inv.iter().map(|v| v.at.as_secs_f64()).collect();
        let mut want = vec![off];
        want.extend((0..4).map(|i| 60.0 + (off + 15.0 * f64::from(i)) % 60.0));
        want.sort_by(f64::total_cmp);
        assert_eq!(secs, want);
        assert_eq!(timer_offset_s("t"), off);
        assert!((0.0..60.0).contains(&off));
    }
}
