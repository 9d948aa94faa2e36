//! Budgets for things an anonymous caller can repeat: requests per client address, sign-in
//! attempts per user name or per pending request.
//!
//! [`RateLimitStore`] is the contract; [`LocalRateLimiter`] keeps the budgets in this process
//! (governor's GCRA), and a shared store (Redis) keeps them where several instances spend one
//! budget. A budget is a GCRA bucket: `burst` units at once, refilled evenly over `period`.
//!
//! Budgets measure elapsed time, not expiries, so [`LocalRateLimiter`] reads a monotonic clock
//! rather than [`Clock`](crate::Clock): a step of the wall clock must neither reset nor freeze
//! anyone's budget.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};

use crate::StorageError;
use crate::limits::{MAX_QUOTAS, MAX_TRACKED_KEYS};

/// The key new keys share once [`MAX_TRACKED_KEYS`] are tracked.
const OVERFLOW_KEY: &str = "\0overflow";

/// A budget: `burst` units available at once, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    burst: NonZeroU32,
    period: Duration,
}

impl Quota {
    /// `burst` units, refilled over `period` (one unit every `period / burst`).
    pub fn new(burst: NonZeroU32, period: Duration) -> Self {
        Self {
            burst,
            period: period.max(Duration::from_millis(1)),
        }
    }

    /// `count` units per `period`, or `None` for 0 (no limit).
    pub fn per_period(count: u32, period: Duration) -> Option<Self> {
        NonZeroU32::new(count).map(|burst| Self::new(burst, period))
    }

    /// Units available at once.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// The time to refill one unit.
    pub fn replenish_interval(&self) -> Duration {
        (self.period / self.burst.get()).max(Duration::from_nanos(1))
    }

    fn governor(&self) -> governor::Quota {
        // `with_period` refuses only a zero period, which `replenish_interval` never is.
        governor::Quota::with_period(self.replenish_interval())
            .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
            .allow_burst(self.burst)
    }
}

/// Whether one unit was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum RateDecision {
    /// Taken.
    Allowed,
    /// The budget is spent; one unit is back after `retry_after`.
    Limited {
        /// The wait before a unit is available.
        retry_after: Duration,
    },
}

/// Where budgets are kept.
///
/// `acquire` atomically takes one unit of `key`'s budget under `quota`, or reports when one
/// will be available: two concurrent calls on a budget with one unit left MUST NOT both be
/// allowed. The same key always comes with the same quota; callers put the quota's purpose in
/// the key (`"token:203.0.113.9"`).
#[async_trait]
pub trait RateLimitStore: Send + Sync + std::fmt::Debug {
    /// Takes one unit of `key`'s budget.
    async fn acquire(&self, key: &str, quota: Quota) -> Result<RateDecision, StorageError>;
}

/// Budgets in this process, with governor's GCRA: exact, lock-free per key, and bounded in
/// memory ([`MAX_TRACKED_KEYS`] per quota, idle keys swept).
#[derive(Default)]
pub struct LocalRateLimiter {
    limiters: Mutex<Vec<(Quota, std::sync::Arc<DefaultKeyedRateLimiter<String>>)>>,
    /// When a full limiter was last swept: sweeping costs time linear in the keys, so it runs
    /// at most once per [`MIN_SWEEP_INTERVAL`] however many new keys arrive.
    last_sweep: Mutex<Option<std::time::Instant>>,
}

/// The shortest time between two sweeps of a full limiter.
const MIN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl std::fmt::Debug for LocalRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRateLimiter").finish_non_exhaustive()
    }
}

impl LocalRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn limiter(&self, quota: Quota) -> Option<std::sync::Arc<DefaultKeyedRateLimiter<String>>> {
        let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, limiter)) = limiters.iter().find(|(q, _)| *q == quota) {
            return Some(std::sync::Arc::clone(limiter));
        }
        if limiters.len() >= MAX_QUOTAS {
            return None;
        }
        let limiter = std::sync::Arc::new(RateLimiter::keyed(quota.governor()));
        limiters.push((quota, std::sync::Arc::clone(&limiter)));
        Some(limiter)
    }

    /// Takes one unit at once (the local limiter never waits).
    pub fn acquire_now(&self, key: &str, quota: Quota) -> RateDecision {
        let Some(limiter) = self.limiter(quota) else {
            // More distinct quotas than any configuration has: a caller bug. Refusing would
            // lock everyone out of something; the bound on quotas exists to bound memory.
            tracing::error!("rate limiter: too many distinct quotas; not limiting");
            return RateDecision::Allowed;
        };
        let key = if limiter.len() >= MAX_TRACKED_KEYS {
            if self.may_sweep() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            if limiter.len() >= MAX_TRACKED_KEYS {
                OVERFLOW_KEY
            } else {
                key
            }
        } else {
            key
        };
        match limiter.check_key(&key.to_owned()) {
            Ok(()) => RateDecision::Allowed,
            Err(not_until) => RateDecision::Limited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            },
        }
    }

    fn may_sweep(&self) -> bool {
        let Ok(mut last) = self.last_sweep.try_lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        if last.is_some_and(|last| now.duration_since(last) < MIN_SWEEP_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Forgets keys whose budgets are full again; a background task calls it now and then.
    pub fn sweep(&self) {
        let limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, limiter) in limiters.iter() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[async_trait]
impl RateLimitStore for LocalRateLimiter {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<RateDecision, StorageError> {
        Ok(self.acquire_now(key, quota))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(burst: u32, period_secs: u64) -> Quota {
        Quota::per_period(burst, Duration::from_secs(period_secs)).unwrap()
    }

    #[test]
    fn a_budget_allows_its_burst_then_names_the_wait() {
        let limiter = LocalRateLimiter::new();
        let q = quota(3, 60);
        for _ in 0..3 {
            assert_eq!(limiter.acquire_now("a", q), RateDecision::Allowed);
        }
        let RateDecision::Limited { retry_after } = limiter.acquire_now("a", q) else {
            panic!("the fourth unit must be refused");
        };
        // One unit comes back every 20 s.
        assert!(retry_after > Duration::from_secs(15) && retry_after <= Duration::from_secs(20));
        // Another key and another quota have budgets of their own.
        assert_eq!(limiter.acquire_now("b", q), RateDecision::Allowed);
        assert_eq!(
            limiter.acquire_now("a", quota(5, 60)),
            RateDecision::Allowed
        );
    }

    #[test]
    fn zero_means_no_limit() {
        assert_eq!(Quota::per_period(0, Duration::from_secs(60)), None);
    }

    #[test]
    fn keys_beyond_the_cap_share_one_overflow_budget() {
        let limiter = LocalRateLimiter::new();
        let q = quota(1, 3600);
        for i in 0..MAX_TRACKED_KEYS {
            assert_eq!(
                limiter.acquire_now(&i.to_string(), q),
                RateDecision::Allowed
            );
        }
        // Every tracked key has spent its unit, so a sweep frees nothing: new keys share one.
        assert_eq!(limiter.acquire_now("new-1", q), RateDecision::Allowed);
        assert!(matches!(
            limiter.acquire_now("new-2", q),
            RateDecision::Limited { .. }
        ));
        assert!(limiter.limiter(q).unwrap().len() <= MAX_TRACKED_KEYS + 1);
    }
}
