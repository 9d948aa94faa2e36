//! The [`RateLimitStore`] contract, proved against the local limiter and Redis.
//!
//! Instantiate it with [`rate_limit_conformance!`](crate::rate_limit_conformance) and an async
//! expression yielding a fresh `Arc<dyn RateLimitStore>` (fresh key space).

use std::sync::Arc;
use std::time::Duration;

use mcp_auth_core::{Quota, RateDecision, RateLimitStore};

/// Expands to one `#[tokio::test]` per contract, each on a fresh limiter from `$factory`.
#[macro_export]
macro_rules! rate_limit_conformance {
    ($factory:expr) => {
        $crate::rate_limit_conformance!(@tests $factory;
            a_budget_gives_its_burst_then_refuses_with_the_wait,
            budgets_of_different_keys_are_independent,
            concurrent_takes_never_exceed_the_burst,
            a_spent_budget_refills_after_the_interval,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::rate_limit::$name($factory.await).await;
            }
        )*
    };
}

fn quota(burst: u32, period: Duration) -> Quota {
    Quota::per_period(burst, period).expect("non-zero")
}

async fn take(limiter: &dyn RateLimitStore, key: &str, quota: Quota) -> RateDecision {
    limiter
        .acquire(key, quota)
        .await
        .expect("the limiter answers")
}

/// `burst` units pass, the next is refused with a wait of at most one interval.
pub async fn a_budget_gives_its_burst_then_refuses_with_the_wait(limiter: Arc<dyn RateLimitStore>) {
    let q = quota(3, Duration::from_secs(60));
    for i in 0..3 {
        assert_eq!(
            take(&*limiter, "token:192.0.2.1", q).await,
            RateDecision::Allowed,
            "unit {i}"
        );
    }
    match take(&*limiter, "token:192.0.2.1", q).await {
        RateDecision::Limited { retry_after } => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(20));
        }
        RateDecision::Allowed => panic!("the budget is spent"),
    }
}

/// Spending one key's budget leaves another's whole.
pub async fn budgets_of_different_keys_are_independent(limiter: Arc<dyn RateLimitStore>) {
    let q = quota(1, Duration::from_secs(60));
    assert_eq!(
        take(&*limiter, "register:a", q).await,
        RateDecision::Allowed
    );
    assert_ne!(
        take(&*limiter, "register:a", q).await,
        RateDecision::Allowed
    );
    assert_eq!(
        take(&*limiter, "register:b", q).await,
        RateDecision::Allowed
    );
}

/// 50 concurrent takes of a budget of 10: exactly 10 pass.
pub async fn concurrent_takes_never_exceed_the_burst(limiter: Arc<dyn RateLimitStore>) {
    let q = quota(10, Duration::from_secs(3600));
    let takes = (0..50).map(|_| {
        let limiter = Arc::clone(&limiter);
        tokio::spawn(async move { take(&*limiter, "sign-in:carol", q).await })
    });
    let mut allowed = 0;
    for handle in takes {
        if handle.await.expect("task") == RateDecision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
}

/// After the replenish interval, one unit is back.
pub async fn a_spent_budget_refills_after_the_interval(limiter: Arc<dyn RateLimitStore>) {
    let q = quota(2, Duration::from_millis(400));
    assert_eq!(take(&*limiter, "revoke:x", q).await, RateDecision::Allowed);
    assert_eq!(take(&*limiter, "revoke:x", q).await, RateDecision::Allowed);
    assert_ne!(take(&*limiter, "revoke:x", q).await, RateDecision::Allowed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(take(&*limiter, "revoke:x", q).await, RateDecision::Allowed);
}
