//! The storage conformance suite against `MemoryStore`.

use std::sync::Arc;

mcp_auth_tests::storage_conformance!(async {
    Arc::new(mcp_auth_core::MemoryStore::new()) as Arc<dyn mcp_auth_core::Storage>
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
    assert_eq!(live.map(|r| r.grant_id).as_deref(), Some("grant-1"));
    let expired = store
        .get_access_token_now(&hash, NOW + 10)
        .expect("answered at once");
    assert!(expired.expect("no storage fault").is_none());
}
