//! Two server instances on one shared database see each other's writes at once: a client
//! registered, a sign-in started, a code issued, a token rotated or revoked on one instance is
//! in effect on the other immediately. Run for PostgreSQL and for Redis, each instance with its
//! own pool or connection manager.

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Provider, exchange, refresh};
use mcp_auth_core::{OAuthAuthorizationServerProvider, Storage};
use mcp_auth_tests::conformance::provider::{obtain_code, provider, register};
use mcp_auth_tests::services;

/// Two providers, each on its own connection to the same data.
fn instances(a: Arc<dyn Storage>, b: Arc<dyn Storage>) -> (Arc<Provider>, Arc<Provider>) {
    (provider(a, |b| b).0, provider(b, |b| b).0)
}

async fn instances_see_each_others_writes_at_once(a: Arc<Provider>, b: Arc<Provider>) {
    // A client registered on A is known to B.
    let client = register(&a, "shared-client", None).await;
    assert!(b.get_client("shared-client").await.expect("get").is_some());

    // A code issued by A is redeemed on B; the tokens B issues are valid on A.
    let code = obtain_code(&a, &client, "alice").await;
    let tokens = exchange(&b, &client, &code).await.expect("exchange on B");
    assert!(
        a.load_access_token(&tokens.access_token)
            .await
            .expect("load")
            .is_some()
    );

    // A second redemption, now on A, is detected and revokes what B issued.
    assert!(exchange(&a, &client, &code).await.is_err());
    assert!(
        b.load_access_token(&tokens.access_token)
            .await
            .expect("load")
            .is_none(),
        "replaying the code on one instance revokes tokens on the other"
    );

    // Rotation on A retires the old access token on B at once; presenting the rotated refresh
    // token on B revokes the grant, which A sees.
    let code = obtain_code(&b, &client, "bob").await;
    let first = exchange(&a, &client, &code).await.expect("exchange");
    let old_refresh = first.refresh_token.expect("refresh token");
    let second = refresh(&a, &client, &old_refresh).await.expect("refresh");
    assert!(
        b.load_access_token(&first.access_token)
            .await
            .expect("load")
            .is_none()
    );
    assert!(
        b.load_access_token(&second.access_token)
            .await
            .expect("load")
            .is_some()
    );
    assert!(refresh(&b, &client, &old_refresh).await.is_err(), "reuse");
    assert!(
        a.load_access_token(&second.access_token)
            .await
            .expect("load")
            .is_none(),
        "reuse detected on B revokes the grant on A"
    );

    // One code, exchanged concurrently on both instances: at most one exchange succeeds, and
    // since the loser's replay revokes the grant, no token of it survives. (Both may fail: the
    // replay can revoke the grant before the winner stores its tokens, which is the contract of
    // `issue_tokens`.)
    let code = obtain_code(&a, &client, "carol").await;
    let (on_a, on_b) = tokio::join!(exchange(&a, &client, &code), exchange(&b, &client, &code));
    assert!(
        on_a.is_err() || on_b.is_err(),
        "the code was redeemed twice"
    );
    for tokens in [on_a, on_b].into_iter().flatten() {
        for instance in [&a, &b] {
            assert!(
                instance
                    .load_access_token(&tokens.access_token)
                    .await
                    .expect("load")
                    .is_none(),
                "a token of a replayed code survived"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_database_see_each_others_writes_at_once() {
    let url = services::fresh_postgres_database().await;
    let (a, b) = instances(
        common::postgres_store(&url).await,
        common::postgres_store(&url).await,
    );
    instances_see_each_others_writes_at_once(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_redis_see_each_others_writes_at_once() {
    let prefix = services::unique_redis_prefix();
    let (a, b) = instances(
        common::redis_store(&prefix).await,
        common::redis_store(&prefix).await,
    );
    instances_see_each_others_writes_at_once(a, b).await;
}
