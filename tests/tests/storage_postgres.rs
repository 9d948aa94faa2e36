//! The storage conformance suite against `PostgresStore`, on a fresh database per test.

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use mcp_auth_core::Storage;
use mcp_auth_sqlx::PostgresStore;
use mcp_auth_tests::services;

async fn postgres_store() -> Arc<dyn Storage> {
    let url = services::fresh_postgres_database().await;
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to PostgreSQL");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

mcp_auth_tests::storage_conformance!(postgres_store());
