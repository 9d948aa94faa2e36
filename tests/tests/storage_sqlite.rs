//! The storage conformance suite against `SqliteStore`, on a database file per test (the
//! deployment's configuration: WAL, several connections) — plus the in-memory configuration.

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use mcp_auth_core::Storage;
use mcp_auth_sqlx::SqliteStore;
use mcp_auth_tests::conformance::purge::Inspected;

/// A migrated store on a fresh file under cargo's temporary directory for integration tests
/// (inside the target directory, so `cargo clean` removes it).
async fn file_store() -> Arc<dyn Storage> {
    file_store_and_url().await.0
}

/// A migrated store on a fresh file, and the file's URL.
async fn file_store_and_url() -> (Arc<dyn Storage>, String) {
    let (store, url) = sqlite_file().await;
    (Arc::new(store), url)
}

/// A migrated `SqliteStore` on a fresh file, and the file's URL.
async fn sqlite_file() -> (SqliteStore, String) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sqlite-store-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite file");
    store.migrate().await.expect("migrate");
    (store, url)
}

/// `store`, with a counter reading its tables through its own pool.
fn inspected(store: SqliteStore) -> Inspected {
    mcp_auth_tests::sql_inspected!(store)
}

mcp_auth_tests::storage_conformance!(file_store());
mcp_auth_tests::purge_conformance!(async { inspected(sqlite_file().await.0) });

mod in_memory {
    use super::*;

    async fn sqlite_in_memory() -> SqliteStore {
        let store = SqliteStore::connect("sqlite::memory:")
            .await
            .expect("open in-memory SQLite");
        store.migrate().await.expect("migrate");
        store
    }

    async fn memory_store() -> Arc<dyn Storage> {
        Arc::new(sqlite_in_memory().await)
    }

    mcp_auth_tests::storage_conformance!(memory_store());
    mcp_auth_tests::purge_conformance!(async { inspected(sqlite_in_memory().await) });
}

/// After store operations were abandoned at random points, another connection to the file (as
/// another process would open) can take SQLite's write lock: no abandoned transaction still
/// holds it. The store itself keeps running, so a transaction it leaked would still be open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_operations_leave_the_write_lock_free_for_another_connection() {
    use mcp_auth_sqlx::sqlx::sqlite::SqliteConnectOptions;
    use mcp_auth_sqlx::sqlx::{Connection as _, Executor as _, SqliteConnection};
    use mcp_auth_tests::conformance::abandon::{abandon_operations, unstuck};

    let (store, url) = file_store_and_url().await;
    abandon_operations(&store).await;
    let options = url
        .parse::<SqliteConnectOptions>()
        .expect("url")
        .busy_timeout(SqliteStore::BUSY_TIMEOUT);
    let mut other = SqliteConnection::connect_with(&options)
        .await
        .expect("second connection");
    unstuck("taking the write lock", other.execute("BEGIN IMMEDIATE"))
        .await
        .expect("another connection takes the write lock");
    other.execute("ROLLBACK").await.expect("rollback");
    drop(store);
}
