//! A stopped PostgreSQL or Redis makes every call fail promptly with
//! `StorageErrorKind::Unavailable` (the provider's `ProviderErrorKind::Unavailable`, which the
//! client sees as `temporarily_unavailable`) — never a panic, never a false success, never a
//! hang — and calls succeed again as soon as the server is back.
//!
//! These tests stop a server every other test uses, so their names contain `outage`: nextest
//! runs them alone (see `.config/nextest.toml`).

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
#[path = "storage_outage/server_load.rs"]
mod server_load;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::{Provider, exchange};
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::types::OAuthToken;
use mcp_auth_core::{
    OAuthAuthorizationServerProvider, ProviderError, ProviderErrorKind, Storage, StorageError,
    StorageErrorKind,
};
use mcp_auth_tests::conformance::provider::{obtain_code, provider, register};
use mcp_auth_tests::conformance::records::{NOW, access, code, refresh};
use mcp_auth_tests::services;

/// Longer than any timeout of the stores (3 s pool acquisition, 2 s Redis reply): a call that
/// takes this long is hanging.
const HANG: Duration = Duration::from_secs(15);

async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung during the outage"))
}

async fn assert_unavailable<T: Debug>(
    what: &str,
    call: impl Future<Output = Result<T, StorageError>>,
) {
    match bounded(what, call).await {
        Err(err) => assert_eq!(
            err.kind(),
            StorageErrorKind::Unavailable,
            "{what}: wrong kind for {err:?}"
        ),
        Ok(value) => panic!("{what} succeeded while the server was down: {value:?}"),
    }
}

async fn assert_provider_unavailable<T: Debug>(
    what: &str,
    call: impl Future<Output = Result<T, ProviderError>>,
) {
    match bounded(what, call).await {
        Err(err) => assert_eq!(
            err.kind(),
            ProviderErrorKind::Unavailable,
            "{what}: wrong kind for {err:?}"
        ),
        Ok(value) => panic!("{what} succeeded while the server was down: {value:?}"),
    }
}

/// Tokens issued through the provider before the outage.
async fn issue_through(provider: &Provider, client_id: &str) -> OAuthToken {
    let client = register(provider, client_id, None).await;
    let code = obtain_code(provider, &client, "alice").await;
    exchange(provider, &client, &code).await.expect("exchange")
}

/// Every kind of storage call fails as unavailable, at the store and through the provider.
async fn every_call_is_unavailable(
    store: &Arc<dyn Storage>,
    provider: &Provider,
    tokens: &OAuthToken,
) {
    let hash = SecretHash::of(tokens.access_token.expose_secret());
    assert_unavailable("get_access_token", store.get_access_token(&hash, NOW)).await;
    let (_, code_record) = code("c", NOW + 60);
    assert_unavailable("insert_code", store.insert_code(&code_record)).await;
    assert_unavailable("take_code", store.take_code(&code_record.code_hash, NOW)).await;
    let (_, a) = access("outage-grant", NOW + 60);
    let (_, r) = refresh("outage-grant", NOW + 60);
    assert_unavailable("issue_tokens", store.issue_tokens(&a, Some(&r))).await;
    assert_unavailable(
        "rotate_refresh_token",
        store.rotate_refresh_token(&r.token_hash, &a, Some(&r), NOW),
    )
    .await;
    assert_unavailable("revoke_grant", store.revoke_grant("outage-grant", NOW + 60)).await;
    assert_unavailable(
        "record_assertion_id",
        store.record_assertion_id("iss", "jti", NOW + 60, NOW),
    )
    .await;
    assert_unavailable("purge_expired_tokens", store.purge_expired_tokens(NOW)).await;
    assert_provider_unavailable(
        "provider load_access_token",
        provider.load_access_token(&tokens.access_token),
    )
    .await;
}

/// After the outage, the store works again at once: the first calls succeed.
async fn calls_succeed(store: &Arc<dyn Storage>) {
    let (_, a) = access("after-outage", NOW + 60);
    assert!(
        bounded("issue_tokens", store.issue_tokens(&a, None))
            .await
            .expect("issue after the outage")
    );
    assert!(
        bounded(
            "get_access_token",
            store.get_access_token(&a.token_hash, NOW)
        )
        .await
        .expect("lookup after the outage")
        .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_fails_calls_as_unavailable_until_the_server_returns() {
    let url = services::fresh_postgres_database().await;
    let store = common::postgres_store(&url).await;
    let (provider, _) = provider(Arc::clone(&store), |b| b);
    let tokens = issue_through(&provider, "pg-outage-client").await;

    let outage = services::postgres_outage();
    every_call_is_unavailable(&store, &provider, &tokens).await;
    outage.end();

    calls_succeed(&store).await;
    // Committed data survived the crash, and the provider sees it again.
    assert!(
        provider
            .load_access_token(&tokens.access_token)
            .await
            .expect("load after the outage")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_fails_calls_as_unavailable_until_the_server_returns() {
    let store = common::redis_store(&services::unique_redis_prefix()).await;
    let (provider, _) = provider(Arc::clone(&store), |b| b);
    let tokens = issue_through(&provider, "redis-outage-client").await;

    let outage = services::redis_outage();
    every_call_is_unavailable(&store, &provider, &tokens).await;
    outage.end();

    // The test server runs without persistence and comes back empty; new data works at once.
    calls_succeed(&store).await;
    let tokens = issue_through(&provider, "redis-outage-client").await;
    assert!(
        provider
            .load_access_token(&tokens.access_token)
            .await
            .expect("load after the outage")
            .is_some()
    );
}
