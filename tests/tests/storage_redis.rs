//! The storage conformance suite against `RedisStore`, under a fresh key prefix per test.

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use mcp_auth_core::Storage;
use mcp_auth_redis::RedisStore;
use mcp_auth_tests::services;

/// A store under a fresh key prefix.
async fn fresh_redis() -> RedisStore {
    redis_under(services::unique_redis_prefix()).await
}

/// A store under `prefix`.
async fn redis_under(prefix: String) -> RedisStore {
    RedisStore::builder(services::redis_url())
        .key_prefix(prefix)
        .connect()
        .await
        .expect("connect to Redis")
}

async fn redis_store() -> Arc<dyn Storage> {
    Arc::new(fresh_redis().await)
}

mcp_auth_tests::storage_conformance!(redis_store());
mcp_auth_tests::purge_conformance!(inspected());

/// Every key under `prefix`, read with `SCAN` on a connection of the test's own.
async fn keys_under(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(services::redis_url()).expect("Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// A store under a fresh prefix, with a counter of its keys (clients' excepted).
async fn inspected() -> mcp_auth_tests::conformance::purge::Inspected {
    let prefix = services::unique_redis_prefix();
    let store = redis_under(prefix.clone()).await;
    mcp_auth_tests::conformance::purge::Inspected {
        store: Arc::new(store),
        count: Arc::new(move || {
            let prefix = prefix.clone();
            Box::pin(async move {
                let clients = format!("{prefix}client:");
                let keys = keys_under(&prefix).await;
                keys.iter().filter(|key| !key.starts_with(&clients)).count() as u64
            })
        }),
    }
}

/// Redis bounds what it keeps by itself: every key the store writes has an expiry, except
/// clients (which do not expire) and the expiry indexes (sorted sets that every write trims
/// of entries Redis has already expired, so they never outgrow the live keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_key_but_clients_and_expiry_indexes_expires() {
    let prefix = services::unique_redis_prefix();
    let store = redis_under(prefix.clone()).await;
    mcp_auth_tests::conformance::purge::store_records_of_every_kind(&store).await;
    let client = redis::Client::open(services::redis_url()).expect("Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let keys = keys_under(&prefix).await;
    assert!(
        keys.len() > 10,
        "records of every kind are stored: {keys:?}"
    );
    for key in keys {
        let rest = key.strip_prefix(&prefix).expect("under the prefix");
        if rest.starts_with("client:") || rest.starts_with("expiry:") {
            continue;
        }
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("TTL");
        assert!(ttl > 0, "{key} has no expiry (TTL {ttl})");
    }
}

mod rate_limits {
    use super::*;

    async fn redis_limiter() -> Arc<dyn mcp_auth_core::RateLimitStore> {
        Arc::new(fresh_redis().await)
    }

    mcp_auth_tests::rate_limit_conformance!(redis_limiter());
}
