//! Per-worker-thread results: latency and start-delay histograms (µs) and counters, merged
//! once at the end.

use super::client::Answer;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Why a request did not succeed. Names are the JSON report's `errors` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// TCP connect or protocol handshake failed.
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection failed mid-request.
    Io,
    Http1xx,
    Http3xx,
    Http4xx,
    Http5xx,
    /// 2xx with `x-amz-function-error`.
    FunctionError,
    /// Still queued (never sent) when the run was stopped.
    Unsent,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Io,
        ErrorKind::Http1xx,
        ErrorKind::Http3xx,
        ErrorKind::Http4xx,
        ErrorKind::Http5xx,
        ErrorKind::FunctionError,
        ErrorKind::Unsent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::Http1xx => "http_1xx",
            ErrorKind::Http3xx => "http_3xx",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::FunctionError => "function_error",
            ErrorKind::Unsent => "unsent",
        }
    }

    /// The error a response stands for, if any (status class first).
    pub fn of(a: &Answer) -> Option<ErrorKind> {
        match a.status {
            100..=199 => Some(ErrorKind::Http1xx),
            200..=299 if a.function_error => Some(ErrorKind::FunctionError),
            200..=299 => None,
            300..=399 => Some(ErrorKind::Http3xx),
            400..=499 => Some(ErrorKind::Http4xx),
            _ => Some(ErrorKind::Http5xx),
        }
    }
}

/// Largest recordable value: one hour in µs (larger values are clamped).
const MAX_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds")
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Results of one worker thread (or, after [`Stats::merge`], of the whole run).
pub struct Stats {
    /// Scheduled (open loop) or send (closed loop) time to the end of the response body.
    pub latency: Histogram<u64>,
    /// `x-hearth-start-delay-us` of each response that had it.
    pub start_delay: Histogram<u64>,
    /// Measured requests with an outcome (response or error).
    pub requests: u64,
    /// 2xx without a function error.
    pub ok: u64,
    pub errors: [u64; ErrorKind::ALL.len()],
    pub cold_starts: u64,
    /// Responses, and cold starts among them, of invocations that are not their
    /// function's first (trace replay).
    pub responses_excl_first: u64,
    pub cold_starts_excl_first: u64,
    /// When the last measured request finished.
    pub last_done: Option<Instant>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency: new_histogram(),
            start_delay: new_histogram(),
            requests: 0,
            ok: 0,
            errors: [0; ErrorKind::ALL.len()],
            cold_starts: 0,
            responses_excl_first: 0,
            cold_starts_excl_first: 0,
            last_done: None,
        }
    }
}

impl Stats {
    /// Records a response that took `latency`; `first` marks a function's first invocation.
    pub fn response(&mut self, a: &Answer, latency: Duration, first: bool, done: Instant) {
        self.latency.saturating_record(micros(latency));
        if let Some(us) = a.start_delay_us {
            self.start_delay.saturating_record(us.clamp(1, MAX_US));
        }
        match ErrorKind::of(a) {
            Some(kind) => self.errors[kind as usize] += 1,
            None => self.ok += 1,
        }
        self.cold_starts += u64::from(a.cold_start);
        if !first {
            self.responses_excl_first += 1;
            self.cold_starts_excl_first += u64::from(a.cold_start);
        }
        self.finish(done);
    }

    /// Records a request that got no response.
    pub fn error(&mut self, kind: ErrorKind, done: Instant) {
        self.errors[kind as usize] += 1;
        self.finish(done);
    }

    fn finish(&mut self, done: Instant) {
        self.requests += 1;
        self.last_done = self.last_done.max(Some(done));
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn merge(&mut self, o: &Stats) {
        // Same bounds on both sides: `add` cannot fail.
        let _ = self.latency.add(&o.latency);
        let _ = self.start_delay.add(&o.start_delay);
        self.requests += o.requests;
        self.ok += o.ok;
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        self.cold_starts += o.cold_starts;
        self.responses_excl_first += o.responses_excl_first;
        self.cold_starts_excl_first += o.cold_starts_excl_first;
        self.last_done = self.last_done.max(o.last_done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, cold: bool, fe: bool) -> Answer {
        Answer {
            status,
            cold_start: cold,
            function_error: fe,
            start_delay_us: Some(if cold { 5000 } else { 3 }),
        }
    }

    #[test]
    fn classifies_and_merges() {
        let now = Instant::now();
        let mut a = Stats::default();
        a.response(
            &answer(200, true, false),
            Duration::from_millis(5),
            true,
            now,
        );
        a.response(
            &answer(200, false, true),
            Duration::from_millis(1),
            false,
            now,
        );
        a.error(ErrorKind::Timeout, now);
        let mut b = Stats::default();
        b.response(
            &answer(503, false, false),
            Duration::from_micros(10),
            false,
            now,
        );
        b.response(
            &answer(200, true, false),
            Duration::from_millis(2),
            false,
            now,
        );
        a.merge(&b);
        assert_eq!(a.requests, 5);
        assert_eq!(a.ok, 2);
        assert_eq!(a.errors[ErrorKind::FunctionError as usize], 1);
        assert_eq!(a.errors[ErrorKind::Http5xx as usize], 1);
        assert_eq!(a.errors[ErrorKind::Timeout as usize], 1);
        assert_eq!(a.ok + a.error_count(), a.requests);
        assert_eq!((a.cold_starts, a.cold_starts_excl_first), (2, 1));
        assert_eq!(a.responses_excl_first, 3);
        assert_eq!(a.latency.len(), 4);
        assert_eq!(a.start_delay.len(), 4);
    }
}
