//! The admit phase: Lambda's invocation limits, decided before any work reaches an agent.
//!
//! - Rate limits (governor): per account (`limits.account_rate_per_sec`, Reason
//!   `CallerRateLimitExceeded`) and per function (`limits.function_rate_per_sec` or the
//!   function's `hearth limits` override, Reason `FunctionInvocationRateLimitExceeded`).
//! - Concurrency: a function with reserved concurrency runs at most that many invocations at
//!   once (0 throttles all; Reason `ReservedFunctionConcurrentInvocationLimitExceeded`); the
//!   others share the unreserved pool, `limits.account_concurrency` minus the sum of
//!   reservations (Reason `ConcurrentInvocationLimitExceeded`).
//!
//! An admitted invocation holds a [`Permit`] until the instance is done with it (the forward
//! task owns it, so a client hanging up frees nothing).

use super::resolve::FunctionLimits;
use crate::api::ApiError;
use crate::metrics::{FunctionLabel, Metrics};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

pub const RESERVED_CONCURRENCY: &str = "ReservedFunctionConcurrentInvocationLimitExceeded";
pub const ACCOUNT_CONCURRENCY: &str = "ConcurrentInvocationLimitExceeded";
pub const FUNCTION_RATE: &str = "FunctionInvocationRateLimitExceeded";
pub const ACCOUNT_RATE: &str = "CallerRateLimitExceeded";

/// In-flight counts.
#[derive(Default)]
struct Inflight {
    per_function: HashMap<String, u32>,
    /// Invocations of functions without reserved concurrency.
    unreserved: u64,
}

/// Admission state of one router.
pub struct Limits {
    account_concurrency: u64,
    function_rate: u32,
    account_rate: Option<DefaultDirectRateLimiter>,
    function_rates: Mutex<HashMap<String, Arc<(u32, DefaultDirectRateLimiter)>>>,
    inflight: Mutex<Inflight>,
    metrics: Arc<Metrics>,
}

/// A concurrency slot; released on drop (when the instance finished the invocation).
pub struct Permit {
    limits: Arc<Limits>,
    function: String,
    reserved: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits.release(&self.function, self.reserved);
    }
}

fn limiter(per_sec: u32) -> Option<DefaultDirectRateLimiter> {
    NonZeroU32::new(per_sec).map(|n| governor::RateLimiter::direct(Quota::per_second(n)))
}

/// Checks one limiter; the error carries the seconds until a token is free.
fn check(l: &DefaultDirectRateLimiter) -> Result<(), u32> {
    l.check().map_err(|nu| {
        let wait = nu.wait_time_from(DefaultClock::default().now());
        wait.as_secs_f64().ceil().max(1.0) as u32
    })
}

impl Limits {
    pub fn new(cfg: &crate::config::LimitsConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Limits {
            account_concurrency: cfg.account_concurrency as u64,
            function_rate: cfg.function_rate_per_sec,
            account_rate: limiter(cfg.account_rate_per_sec),
            function_rates: Mutex::default(),
            inflight: Mutex::default(),
            metrics,
        })
    }

    /// Admits one invocation of `function`, or says why not (429 with Reason and Retry-After).
    /// `reserved_total` is the tenant's sum of reserved concurrency.
    pub fn admit(
        self: &Arc<Self>,
        function: &str,
        limits: FunctionLimits,
        reserved_total: u64,
    ) -> Result<Permit, ApiError> {
        if let Some(l) = &self.account_rate {
            check(l).map_err(|secs| throttle(ACCOUNT_RATE, secs))?;
        }
        let rate = limits.rate_per_sec.unwrap_or(self.function_rate);
        if let Some(l) = self.function_limiter(function, rate) {
            check(&l.1).map_err(|secs| throttle(FUNCTION_RATE, secs))?;
        }
        self.acquire(function, limits.reserved, reserved_total)
    }

    fn function_limiter(
        &self,
        function: &str,
        rate: u32,
    ) -> Option<Arc<(u32, DefaultDirectRateLimiter)>> {
        let mut m = lock(&self.function_rates);
        if rate == 0 {
            m.remove(function);
            return None;
        }
        if let Some(l) = m.get(function).filter(|l| l.0 == rate) {
            return Some(l.clone());
        }
        let l = Arc::new((rate, limiter(rate)?));
        m.insert(function.to_string(), l.clone());
        Some(l)
    }

    fn acquire(
        self: &Arc<Self>,
        function: &str,
        reserved: Option<u32>,
        reserved_total: u64,
    ) -> Result<Permit, ApiError> {
        let mut i = lock(&self.inflight);
        let running = i.per_function.get(function).copied().unwrap_or(0);
        match reserved {
            Some(r) if running >= r => return Err(throttle(RESERVED_CONCURRENCY, 1)),
            None if i.unreserved >= self.account_concurrency.saturating_sub(reserved_total) => {
                return Err(throttle(ACCOUNT_CONCURRENCY, 1));
            }
            None => i.unreserved += 1,
            Some(_) => {}
        }
        match i.per_function.get_mut(function) {
            Some(n) => *n += 1,
            None => {
                i.per_function.insert(function.to_string(), 1);
            }
        }
        drop(i);
        self.gauge(function).inc();
        Ok(Permit {
            limits: self.clone(),
            function: function.to_string(),
            reserved: reserved.is_some(),
        })
    }

    fn release(&self, function: &str, reserved: bool) {
        let mut i = lock(&self.inflight);
        if !reserved {
            i.unreserved = i.unreserved.saturating_sub(1);
        }
        if let Some(n) = i.per_function.get_mut(function) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                i.per_function.remove(function);
            }
        }
        drop(i);
        self.gauge(function).dec();
    }

    fn gauge(&self, function: &str) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics
            .router
            .inflight
            .get_or_create(&FunctionLabel {
                function: function.to_string(),
            })
            .clone()
    }

    /// Invocations of `function` holding a permit now.
    pub fn inflight(&self, function: &str) -> u32 {
        let i = lock(&self.inflight);
        i.per_function.get(function).copied().unwrap_or(0)
    }
}

/// A 429 `TooManyRequestsException` with `reason` and `Retry-After: secs`.
pub fn throttle(reason: &'static str, secs: u32) -> ApiError {
    ApiError::too_many_requests(reason, "Rate Exceeded.").with_retry_after(secs)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cfg: crate::config::LimitsConfig) -> Arc<Limits> {
        Limits::new(&cfg, Arc::new(Metrics::new()))
    }

    fn reserved(n: u32) -> FunctionLimits {
        FunctionLimits {
            reserved: Some(n),
            rate_per_sec: None,
        }
    }

    #[test]
    fn reserved_concurrency() {
        let l = limits(Default::default());
        assert_eq!(
            l.admit("f", reserved(0), 0).err().unwrap().reason,
            Some(RESERVED_CONCURRENCY)
        );
        let a = l.admit("f", reserved(2), 2).unwrap();
        let _b = l.admit("f", reserved(2), 2).unwrap();
        let e = l.admit("f", reserved(2), 2).err().unwrap();
        assert_eq!(
            (e.status.as_u16(), e.reason),
            (429, Some(RESERVED_CONCURRENCY))
        );
        assert_eq!(l.inflight("f"), 2);
        drop(a);
        assert_eq!(l.inflight("f"), 1);
        assert!(l.admit("f", reserved(2), 2).is_ok());
    }

    #[test]
    fn unreserved_pool_is_account_minus_reservations() {
        let l = limits(crate::config::LimitsConfig {
            account_concurrency: 5,
            ..Default::default()
        });
        let free = FunctionLimits::default();
        let held: Vec<_> = (0..2).map(|_| l.admit("g", free, 3).unwrap()).collect();
        let e = l.admit("h", free, 3).err().unwrap();
        assert_eq!(e.reason, Some(ACCOUNT_CONCURRENCY));
        // A reserved function does not draw from the pool.
        assert!(l.admit("r", reserved(3), 3).is_ok());
        drop(held);
        assert!(l.admit("h", free, 3).is_ok());
    }

    #[test]
    fn rate_limits() {
        let l = limits(crate::config::LimitsConfig {
            function_rate_per_sec: 2,
            ..Default::default()
        });
        let free = FunctionLimits::default();
        let _p: Vec<_> = (0..2).map(|_| l.admit("f", free, 0).unwrap()).collect();
        let e = l.admit("f", free, 0).err().unwrap();
        assert_eq!(e.reason, Some(FUNCTION_RATE));
        assert!(e.retry_after_secs >= 1);
        // Another function has its own bucket; an override replaces the default.
        assert!(l.admit("g", free, 0).is_ok());
        let over = FunctionLimits {
            reserved: None,
            rate_per_sec: Some(100),
        };
        assert!(l.admit("f", over, 0).is_ok());
        let acct = limits(crate::config::LimitsConfig {
            account_rate_per_sec: 1,
            ..Default::default()
        });
        assert!(acct.admit("a", free, 0).is_ok());
        let e = acct.admit("b", free, 0).err().unwrap();
        assert_eq!(e.reason, Some(ACCOUNT_RATE));
    }
}
