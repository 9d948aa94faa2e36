//! The storage conformance suite against `PostgresStore`, on a fresh database per test.

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use mcp_auth_core::Storage;
use mcp_auth_sqlx::PostgresStore;
use mcp_auth_tests::services;

async fn postgres_store() -> Arc<dyn Storage> {
    postgres_store_and_url().await.0
}

/// A migrated store on a fresh database, and the database's URL.
async fn postgres_store_and_url() -> (Arc<dyn Storage>, String) {
    let (store, url) = postgres().await;
    (Arc::new(store), url)
}

/// A migrated `PostgresStore` on a fresh database, and the database's URL.
async fn postgres() -> (PostgresStore, String) {
    let url = services::fresh_postgres_database().await;
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to PostgreSQL");
    store.migrate().await.expect("migrate");
    (store, url)
}

/// Rows of every table but `clients` (and the migrations' own).
const COUNT_ROWS: &str = "SELECT (SELECT count(*) FROM authorization_requests) \
     + (SELECT count(*) FROM codes) + (SELECT count(*) FROM grants) \
     + (SELECT count(*) FROM access_tokens) + (SELECT count(*) FROM refresh_tokens) \
     + (SELECT count(*) FROM assertion_ids)";

/// A fresh store, with a counter reading its tables through its pool.
async fn inspected() -> mcp_auth_tests::conformance::purge::Inspected {
    let (store, _) = postgres().await;
    let pool = store.pool().clone();
    mcp_auth_tests::conformance::purge::Inspected {
        store: Arc::new(store),
        count: Arc::new(move || {
            let pool = pool.clone();
            Box::pin(async move {
                let rows: i64 = mcp_auth_sqlx::sqlx::query_scalar(COUNT_ROWS)
                    .fetch_one(&pool)
                    .await
                    .expect("count rows");
                u64::try_from(rows).expect("a count")
            })
        }),
    }
}

mcp_auth_tests::storage_conformance!(postgres_store());
mcp_auth_tests::purge_conformance!(inspected());

/// After store operations were abandoned at random points, another session can lock every
/// table exclusively: no abandoned transaction still holds a lock (PostgreSQL's counterpart of
/// SQLite's write lock). The store keeps its pool open, so a leaked transaction would still be
/// there; the lock waits at most `lock_timeout` for a rollback sqlx has queued but not yet sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_operations_leave_no_lock_behind() {
    use mcp_auth_sqlx::sqlx::{Connection as _, Executor as _, PgConnection};
    use mcp_auth_tests::conformance::abandon::{abandon_operations, unstuck};

    let (store, url) = postgres_store_and_url().await;
    abandon_operations(&store).await;
    let mut other = PgConnection::connect(&url).await.expect("second session");
    other
        .execute("SET lock_timeout = '20s'")
        .await
        .expect("set lock_timeout");
    let mut tx = other.begin().await.expect("begin");
    unstuck(
        "locking every table",
        tx.execute(
            "LOCK TABLE clients, authorization_requests, codes, grants, access_tokens, \
             refresh_tokens, assertion_ids IN ACCESS EXCLUSIVE MODE",
        ),
    )
    .await
    .expect("another session locks every table");
    tx.rollback().await.expect("rollback");
    drop(store);
}
