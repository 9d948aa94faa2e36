//! Contracts of the assertion replay store (`ReplayStore`), one function per contract.

use std::sync::Arc;

use mcp_auth_core::Storage;
use mcp_auth_core::secrets::random_id;

use super::records::NOW;
use super::store::race;

/// The replay cache is insert-if-absent, keyed by issuer and jti, forgetting expired entries
/// (by the caller's clock at the latest once purged: Redis expires entries by its own clock).
pub async fn assertion_ids_are_insert_if_absent_with_expiry(store: Arc<dyn Storage>) {
    let jti = random_id();
    assert!(
        store
            .record_assertion_id("https://idp.a", &jti, NOW + 60, NOW)
            .await
            .expect("record")
    );
    assert!(
        !store
            .record_assertion_id("https://idp.a", &jti, NOW + 60, NOW)
            .await
            .expect("record")
    );
    assert!(
        !store
            .record_assertion_id("https://idp.a", &jti, NOW + 60, NOW + 59)
            .await
            .expect("record")
    );
    assert!(
        store
            .record_assertion_id("https://idp.b", &jti, NOW + 60, NOW)
            .await
            .expect("record")
    );
    store
        .purge_expired_assertion_ids(NOW + 60)
        .await
        .expect("purge");
    assert!(
        store
            .record_assertion_id("https://idp.a", &jti, NOW + 200, NOW + 60)
            .await
            .expect("record"),
        "an expired entry counts as absent"
    );
    assert!(
        !store
            .record_assertion_id("https://idp.a", &jti, NOW + 200, NOW + 61)
            .await
            .expect("record")
    );
}

/// An expiry far beyond anything the provider sends (a store may clamp it to
/// `MAX_REPLAY_WINDOW`) is accepted, and the entry still refuses a replay.
pub async fn replay_entries_with_absurd_expiries_still_refuse_replays(store: Arc<dyn Storage>) {
    for expires_at in [NOW + 100 * 365 * 24 * 3600, i64::MAX] {
        let jti = random_id();
        assert!(
            store
                .record_assertion_id("https://idp.a", &jti, expires_at, NOW)
                .await
                .expect("record"),
            "{expires_at}"
        );
        assert!(
            !store
                .record_assertion_id("https://idp.a", &jti, expires_at, NOW + 60)
                .await
                .expect("record"),
            "{expires_at}"
        );
    }
}

/// Of 32 concurrent uses of one assertion id exactly one is first.
pub async fn one_of_concurrent_assertion_uses_wins(store: Arc<dyn Storage>) {
    let jti = random_id();
    let winners = race(32, move |_| {
        let store = Arc::clone(&store);
        let jti = jti.clone();
        async move {
            store
                .record_assertion_id("https://idp.example", &jti, NOW + 60, NOW)
                .await
                .expect("record")
        }
    })
    .await;
    assert_eq!(winners, 1);
}
