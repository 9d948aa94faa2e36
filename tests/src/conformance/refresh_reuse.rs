//! Refresh races (`StoreProviderBuilder::refresh_reuse_interval`): within the interval after a
//! rotation, the token just rotated gets a further pair of its grant instead of revoking it;
//! without an interval, or after it, reuse revokes the grant as RFC 9700 §4.14.2 asks. Every
//! backend records when a token was rotated (`TokenStore::refresh_token_rotation`).

use std::sync::Arc;

use mcp_auth_core::Storage;
use mcp_auth_core::storage::TokenStore;

use super::provider::{access_ok, exchange, obtain_code, provider, refresh, register};
use super::records::NOW;

const RACERS: usize = 8;

/// Every one of several refreshes of one token at once gets a working pair, and the grant
/// survives: each pair refreshes again afterwards.
pub async fn racing_refreshes_within_the_reuse_interval_all_get_working_pairs(
    store: Arc<dyn Storage>,
) {
    let (provider, _) = provider(store, |b| b.refresh_reuse_interval(30));
    let client = register(&provider, "racing-client", None).await;
    let code = obtain_code(&provider, &client, "alice").await;
    let first = exchange(&provider, &client, &code).await.expect("exchange");
    let shared = first.refresh_token.expect("a refresh token");
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (provider, client, token) = (provider.clone(), client.clone(), shared.clone());
            tokio::spawn(async move { refresh(&provider, &client, &token, &["mcp:tools"]).await })
        })
        .collect();
    let mut pairs = Vec::new();
    for racer in racers {
        pairs.push(racer.await.expect("join").expect("every racer gets a pair"));
    }
    // The winner rotated; every other racer got a further pair, which retires nothing.
    for pair in &pairs {
        assert!(
            access_ok(&provider, &pair.access_token).await,
            "every access token works"
        );
    }
    // Each refresh token works on (one after the other: each refresh retires the grant's
    // earlier access tokens, by design).
    for pair in pairs {
        let next = refresh(
            &provider,
            &client,
            pair.refresh_token.as_ref().expect("refresh token"),
            &["mcp:tools"],
        )
        .await
        .expect("each racer's refresh token works");
        assert!(
            access_ok(&provider, &next.access_token).await,
            "the grant survives"
        );
    }
}

/// Without an interval, racing refreshes of one token revoke the grant.
pub async fn racing_refreshes_without_an_interval_revoke_the_grant(store: Arc<dyn Storage>) {
    let (provider, _) = provider(store, |b| b);
    let client = register(&provider, "strict-client", None).await;
    let code = obtain_code(&provider, &client, "bob").await;
    let shared = exchange(&provider, &client, &code)
        .await
        .expect("exchange")
        .refresh_token
        .expect("a refresh token");
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (provider, client, token) = (provider.clone(), client.clone(), shared.clone());
            tokio::spawn(async move { refresh(&provider, &client, &token, &["mcp:tools"]).await })
        })
        .collect();
    let mut won = Vec::new();
    for racer in racers {
        if let Ok(pair) = racer.await.expect("join") {
            won.push(pair);
        }
    }
    assert!(won.len() <= 1, "one rotation wins at most");
    for pair in won {
        assert!(
            !access_ok(&provider, &pair.access_token).await,
            "the grant is revoked"
        );
    }
}

/// After the interval, the rotated token revokes the grant; the store says when it was
/// rotated.
pub async fn reuse_after_the_interval_revokes_the_grant(store: Arc<dyn Storage>) {
    let (provider, clock) = provider(Arc::clone(&store), |b| b.refresh_reuse_interval(30));
    let client = register(&provider, "late-client", None).await;
    let code = obtain_code(&provider, &client, "carol").await;
    let old = exchange(&provider, &client, &code)
        .await
        .expect("exchange")
        .refresh_token
        .expect("a refresh token");
    let current = refresh(&provider, &client, &old, &["mcp:tools"])
        .await
        .expect("rotation");
    let hash = mcp_auth_core::secrets::SecretHash::of(old.expose_secret());
    let (rotated_at, record) = store
        .refresh_token_rotation(&hash, NOW)
        .await
        .expect("lookup")
        .expect("rotated");
    assert_eq!(rotated_at, NOW);
    assert_eq!(record.subject.as_deref(), Some("carol"));
    let live = mcp_auth_core::secrets::SecretHash::of(
        current
            .refresh_token
            .as_ref()
            .expect("refresh")
            .expose_secret(),
    );
    assert!(
        store
            .refresh_token_rotation(&live, NOW)
            .await
            .expect("lookup")
            .is_none(),
        "a live token has no rotation"
    );

    clock.advance(31);
    assert!(
        refresh(&provider, &client, &old, &["mcp:tools"])
            .await
            .is_err(),
        "past the interval"
    );
    assert!(
        !access_ok(&provider, &current.access_token).await,
        "the grant is revoked"
    );
}
