//! The storage conformance suite against `SqliteStore`, on a database file per test (the
//! deployment's configuration: WAL, several connections) — plus the in-memory configuration.

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use mcp_auth_core::Storage;
use mcp_auth_sqlx::SqliteStore;

/// A migrated store on a fresh file under cargo's temporary directory for integration tests
/// (inside the target directory, so `cargo clean` removes it).
async fn file_store() -> Arc<dyn Storage> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sqlite-store-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite file");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

mcp_auth_tests::storage_conformance!(file_store());

mod in_memory {
    use super::*;

    async fn memory_store() -> Arc<dyn Storage> {
        let store = SqliteStore::connect("sqlite::memory:")
            .await
            .expect("open in-memory SQLite");
        store.migrate().await.expect("migrate");
        Arc::new(store)
    }

    mcp_auth_tests::storage_conformance!(memory_store());
}
