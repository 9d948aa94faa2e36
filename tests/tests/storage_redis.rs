//! The storage conformance suite against `RedisStore`, under a fresh key prefix per test.

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use mcp_auth_core::Storage;
use mcp_auth_redis::RedisStore;
use mcp_auth_tests::services;

async fn redis_store() -> Arc<dyn Storage> {
    let store = RedisStore::builder(services::redis_url())
        .key_prefix(services::unique_redis_prefix())
        .connect()
        .await
        .expect("connect to Redis");
    Arc::new(store)
}

mcp_auth_tests::storage_conformance!(redis_store());

mod rate_limits {
    use super::*;

    async fn redis_limiter() -> Arc<dyn mcp_auth_core::RateLimitStore> {
        let store = RedisStore::builder(services::redis_url())
            .key_prefix(services::unique_redis_prefix())
            .connect()
            .await
            .expect("connect to Redis");
        Arc::new(store)
    }

    mcp_auth_tests::rate_limit_conformance!(redis_limiter());
}
