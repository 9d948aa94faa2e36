//! The storage conformance suite against `MemoryStore`.

use std::sync::Arc;

mcp_auth_tests::storage_conformance!(async {
    Arc::new(mcp_auth_core::MemoryStore::new()) as Arc<dyn mcp_auth_core::Storage>
});

mcp_auth_tests::purge_conformance!(async {
    let store = Arc::new(mcp_auth_core::MemoryStore::new());
    let inspected = Arc::clone(&store);
    mcp_auth_tests::conformance::purge::Inspected {
        store,
        count: Arc::new(move || {
            let records = inspected.stored_records() as u64;
            Box::pin(async move { records })
        }),
    }
});

/// The in-memory store answers access-token lookups without waiting, so a bearer layer over it
/// never suspends a request for its token (the conformance suite checks the answers agree with
/// the asynchronous lookup; this checks they are given at all).
#[tokio::test]
async fn memory_store_answers_access_token_lookups_without_waiting() {
    use mcp_auth_core::TokenStore as _;
    use mcp_auth_core::secrets::SecretHash;
    use mcp_auth_tests::conformance::records::{NOW, access};

    let store = mcp_auth_core::MemoryStore::new();
    let (raw, record) = access("grant-1", NOW + 10);
    assert!(store.issue_tokens(&record, None).await.expect("issue"));
    let hash = SecretHash::of(&raw);
    let live = store
        .get_access_token_now(&hash, NOW)
        .expect("answered at once")
        .expect("no storage fault");
    assert_eq!(live.as_ref().map(|r| r.grant_id()), Some("grant-1"));
    let expired = store
        .get_access_token_now(&hash, NOW + 10)
        .expect("answered at once");
    assert!(expired.expect("no storage fault").is_none());
}

/// Every request verifying one token over the in-memory store shares the token's information
/// with the store instead of copying it (the bearer layer's hot path): only the token itself
/// is per request.
#[tokio::test]
async fn verifications_of_one_token_share_its_information() {
    use mcp_auth_core::secrets::random_secret;
    use mcp_auth_core::types::AccessTokenSecret;
    use mcp_auth_core::{OAuthAuthorizationServerProvider as _, TokenStore as _};
    use mcp_auth_tests::conformance::records::{NOW, access};

    let store = Arc::new(mcp_auth_core::MemoryStore::new());
    let provider = mcp_auth_core::StoreProvider::builder(Arc::clone(&store), "https://as.example")
        .clock(Arc::new(mcp_auth_core::ManualClock::new(NOW)))
        .build()
        .expect("provider");
    let (raw, record) = access("grant-1", NOW + 10);
    assert!(store.issue_tokens(&record, None).await.expect("issue"));
    let token = AccessTokenSecret::new(raw);
    let load = || {
        provider
            .load_access_token_now(&token)
            .expect("answered at once")
            .expect("no storage fault")
            .expect("live")
    };
    let (first, second) = (load(), load());
    assert!(Arc::ptr_eq(first.as_ref().info(), second.as_ref().info()));
    assert_eq!(second.as_ref().token.expose_secret(), token.expose_secret());
    let other = AccessTokenSecret::new(random_secret());
    assert!(
        provider
            .load_access_token_now(&other)
            .expect("answered at once")
            .expect("no storage fault")
            .is_none()
    );
}

mod local_rate_limiter {
    mcp_auth_tests::rate_limit_conformance!(async {
        std::sync::Arc::new(mcp_auth_core::LocalRateLimiter::new())
            as std::sync::Arc<dyn mcp_auth_core::RateLimitStore>
    });
}
