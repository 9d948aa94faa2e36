//! Unit tests of `MemoryStore`'s own bookkeeping (the storage contracts are the conformance
//! suite's).

use super::*;

const NOW: i64 = 1_700_000_000;

fn hash(n: u8) -> SecretHash {
    SecretHash::from_bytes([n; 32])
}

fn access(n: u8, grant: &str) -> AccessTokenRecord {
    serde_json::from_value(serde_json::json!({
        "token_hash": hash(n), "grant_id": grant, "client_id": "client",
        "scopes": ["mcp:tools"], "expires_at": NOW + 3600,
        "resource": "https://mcp.example.com/mcp", "subject": "alice",
        "claims": {"iss": "https://auth.example.com"},
    }))
    .unwrap()
}

fn refresh(n: u8, grant: &str) -> RefreshTokenRecord {
    serde_json::from_value(serde_json::json!({
        "token_hash": hash(n), "grant_id": grant, "client_id": "client",
        "scopes": ["mcp:tools"], "expires_at": NOW + 86_400,
        "resource": "https://mcp.example.com/mcp", "subject": "alice",
        "claims": {"iss": "https://auth.example.com"}, "grant_issued_at": NOW,
    }))
    .unwrap()
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// Rotates grant `g`'s refresh token `old` to access `2 * new` and refresh `2 * new + 1`.
async fn rotate(store: &MemoryStore, grant: &str, old: u8, new: u8) -> Rotation {
    store
        .rotate_refresh_token(
            &hash(old),
            &access(new, grant),
            Some(&refresh(new + 1, grant)),
            NOW,
        )
        .await
        .unwrap()
}

/// A store holding grant `g`: access 1 and refresh 2 issued, refresh 2 rotated to access 3
/// and refresh 4.
async fn issued_and_rotated() -> MemoryStore {
    let store = MemoryStore::new();
    assert!(
        store
            .issue_tokens(&access(1, "g"), Some(&refresh(2, "g")))
            .await
            .unwrap()
    );
    assert!(matches!(rotate(&store, "g", 2, 3).await, Rotation::Rotated));
    store
}

#[test]
fn a_rotated_refresh_token_is_kept_only_as_a_marker_that_still_reveals_reuse() {
    run(async {
        let store = issued_and_rotated().await;
        assert!(matches!(
            store.state().refresh.get(hash(2).as_bytes()),
            Some(RefreshEntry::Rotated { grant_id, expires_at, rotated_at })
                if &**grant_id == "g" && *expires_at == NOW + 86_400 && *rotated_at == NOW
        ));
        assert!(matches!(
            rotate(&store, "g", 2, 5).await,
            Rotation::Reused { grant_id } if grant_id == "g"
        ));
        assert!(matches!(
            store.get_refresh_token(&hash(2), NOW).await.unwrap(),
            Some(RefreshLookup::Rotated { grant_id }) if grant_id == "g"
        ));
        // The rotation replaced the grant's access token and left one live refresh token.
        assert!(
            store
                .get_access_token(&hash(1), NOW)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get_access_token(&hash(3), NOW)
                .await
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            store.get_refresh_token(&hash(4), NOW).await.unwrap(),
            Some(RefreshLookup::Active(record)) if record.grant_id == "g"
        ));
    });
}

#[test]
fn a_grants_index_entry_its_access_token_and_its_rotated_markers_share_one_id() {
    run(async {
        let store = issued_and_rotated().await;
        let state = store.state();
        let (indexed, _) = state.grants.get_key_value("g").expect("indexed grant");
        let (token_grant, _) = state.access[hash(3).as_bytes()].clone().into_shared();
        assert!(Arc::ptr_eq(indexed, &token_grant));
        assert!(matches!(
            state.refresh.get(hash(2).as_bytes()),
            Some(RefreshEntry::Rotated { grant_id, .. }) if Arc::ptr_eq(grant_id, indexed)
        ));
    });
}

/// Whether the access token and the refresh token numbered `n` are found at `NOW`.
async fn found(store: &MemoryStore, access_n: u8, refresh_n: u8) -> (bool, bool) {
    let access = store.get_access_token(&hash(access_n), NOW).await.unwrap();
    let refresh = store
        .get_refresh_token(&hash(refresh_n), NOW)
        .await
        .unwrap();
    (access.is_some(), refresh.is_some())
}

#[test]
fn rotating_or_revoking_a_grant_leaves_other_grants_tokens_alone() {
    run(async {
        let store = MemoryStore::new();
        for (grant, n) in [("a", 10), ("b", 20)] {
            store
                .issue_tokens(&access(n, grant), Some(&refresh(n + 1, grant)))
                .await
                .unwrap();
        }
        assert!(matches!(
            rotate(&store, "a", 11, 12).await,
            Rotation::Rotated
        ));
        assert!(found(&store, 20, 21).await.0);
        store.revoke_grant("a", NOW + 60).await.unwrap();
        for gone in [10, 11, 12, 13] {
            assert_eq!(found(&store, gone, gone).await, (false, false), "{gone}");
        }
        assert_eq!(found(&store, 20, 21).await, (true, true));
        let state = store.state();
        assert!(
            !state.grants.contains_key("a"),
            "the revoked grant's index is gone"
        );
        assert_eq!(state.grants["b"].access, vec![*hash(20).as_bytes()]);
    });
}

#[test]
fn purging_leaves_no_index_entry_of_an_expired_grant() {
    run(async {
        let store = MemoryStore::new();
        store
            .issue_tokens(&access(1, "g"), Some(&refresh(2, "g")))
            .await
            .unwrap();
        rotate(&store, "g", 2, 3).await;
        assert_eq!(store.stored_records(), 3, "access, refresh and the marker");
        assert_eq!(store.purge_expired_tokens(NOW + 86_400).await.unwrap(), 3);
        assert_eq!(store.stored_records(), 0);
        assert!(store.state().grants.is_empty());
    });
}

#[test]
fn a_store_that_is_never_purged_stays_within_twice_its_live_records() {
    run(async {
        let store = MemoryStore::new();
        // Each grant's tokens expire an hour (access) and a day (refresh) after `NOW`;
        // later grants are issued two days on, so every earlier one has expired.
        for day in 0..8_i64 {
            for i in 0..200_u32 {
                let grant = format!("{day}-{i}");
                let mut a = access(0, &grant);
                let mut r = refresh(0, &grant);
                let mut bytes = [0; 32];
                bytes[..8].copy_from_slice(&day.to_le_bytes());
                bytes[8..12].copy_from_slice(&i.to_le_bytes());
                a.token_hash = SecretHash::from_bytes(bytes);
                bytes[31] = 1;
                r.token_hash = SecretHash::from_bytes(bytes);
                a.expires_at += day * 2 * 86_400;
                r.expires_at += day * 2 * 86_400;
                store.issue_tokens(&a, Some(&r)).await.unwrap();
                // A lookup tells the store the time, as every request does.
                store
                    .get_refresh_token(&r.token_hash, NOW + day * 2 * 86_400)
                    .await
                    .unwrap();
            }
        }
        let live = 2 * 200;
        let held = store.stored_records();
        assert!(
            held <= 2 * live + MEMORY_STORE_SWEEP_EVERY,
            "{held} records held"
        );
        assert!(store.state().grants.len() <= held);
    });
}
