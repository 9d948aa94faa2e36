//! [`RateLimitStore`] on Redis: every instance that shares the store spends one budget.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use mcp_auth_core::{Quota, RateDecision, RateLimitStore, StorageError};
use redis::Script;

use crate::store::RedisStore;

/// GCRA on Redis' clock; not prepended with the prelude, which only stores records.
static RATE_LIMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/rate_limit.lua")));

#[async_trait]
impl RateLimitStore for RedisStore {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<RateDecision, StorageError> {
        let interval = u64::try_from(quota.replenish_interval().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let (allowed, wait_us): (i64, i64) = self
            .invoke(
                RATE_LIMIT
                    .key(self.keys.rate_limit(key))
                    .arg(interval)
                    .arg(quota.burst().get()),
            )
            .await?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
            }
        })
    }
}
