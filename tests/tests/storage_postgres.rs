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

/// A fresh store, with a counter reading its tables through its pool.
async fn inspected() -> mcp_auth_tests::conformance::purge::Inspected {
    mcp_auth_tests::sql_inspected!(postgres().await.0)
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
             refresh_tokens, assertion_ids, signing_keys IN ACCESS EXCLUSIVE MODE",
        ),
    )
    .await
    .expect("another session locks every table");
    tx.rollback().await.expect("rollback");
    drop(store);
}
