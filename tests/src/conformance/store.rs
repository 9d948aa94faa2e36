//! Contracts of the storage traits, one function per contract.

use std::sync::Arc;

use mcp_auth_core::secrets::{SecretHash, random_id};
use mcp_auth_core::types::{
    AuthorizationParams, ClientSecret, OAuthClientInformationFull, OAuthClientMetadata,
};
use mcp_auth_core::{
    AccessTokenRecord, AuthorizationRequestRecord, ClientRecord, CodeTake, RefreshLookup, Rotation,
    Storage, StorageErrorKind,
};

use super::records::{NOW, access, code, refresh};

// The replay contracts live in their own file; the suite macro finds every contract here.
pub use super::replay::{
    assertion_ids_are_insert_if_absent_with_expiry, one_of_concurrent_assertion_uses_wins,
    replay_entries_with_absurd_expiries_still_refuse_replays,
};

fn client(id: &str, secret: Option<&str>) -> OAuthClientInformationFull {
    let mut info = OAuthClientInformationFull::new(
        id,
        OAuthClientMetadata::new(vec!["http://127.0.0.1/cb".to_owned()]),
    );
    info.client_secret = secret.map(ClientSecret::new);
    info.metadata.client_name = Some("Client ✓ \"quoted\"".to_owned());
    info
}

/// A pending authorization request expiring at `expires_at`, with its raw id.
pub(crate) fn request(expires_at: i64) -> (String, AuthorizationRequestRecord) {
    let raw = mcp_auth_core::secrets::random_secret();
    let mut params = AuthorizationParams::new(
        Some(vec!["mcp:tools".to_owned()]),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "http://127.0.0.1:5/cb",
        true,
    );
    params.state = Some("st&te".to_owned());
    params.resource = Some("https://mcp.example/mcp".to_owned());
    let record = serde_json::from_value(serde_json::json!({
        "request_hash": SecretHash::of(&raw),
        "client_id": "client-1",
        "params": params,
        "expires_at": expires_at,
    }))
    .expect("valid request record");
    (raw, record)
}

/// The store's live access token with this hash at `now`, asked both ways: asynchronously and,
/// where the store can answer at once, through `get_access_token_now`, which must agree.
async fn access_token_at(
    store: &dyn Storage,
    hash: &SecretHash,
    now: i64,
) -> Option<AccessTokenRecord> {
    let waited = store.get_access_token(hash, now).await.expect("get");
    if let Some(immediate) = store.get_access_token_now(hash, now) {
        let immediate = immediate
            .expect("get now")
            .map(|shared| shared.to_record(*hash));
        assert_eq!(
            serde_json::to_value(&immediate).expect("json"),
            serde_json::to_value(&waited).expect("json"),
            "get_access_token_now disagrees with get_access_token"
        );
    }
    waited
}

/// Clients round-trip, and a second insert of one id is a conflict.
pub async fn clients_round_trip_and_refuse_duplicates(store: Arc<dyn Storage>) {
    let record = ClientRecord::new(client("client-a", Some("s3cret")));
    store.insert_client(&record).await.expect("insert");
    let loaded = store
        .get_client("client-a")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        serde_json::to_value(&loaded.info).expect("json"),
        serde_json::to_value(&record.info).expect("json")
    );
    let err = store.insert_client(&record).await.expect_err("duplicate");
    assert_eq!(err.kind(), StorageErrorKind::Conflict);
    let mut changed = record.clone();
    changed.info.metadata.client_name = Some("renamed".to_owned());
    store.upsert_client(&changed).await.expect("upsert");
    let loaded = store
        .get_client("client-a")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(loaded.info.metadata.client_name.as_deref(), Some("renamed"));
    assert!(store.get_client("nobody").await.expect("get").is_none());
    assert!(store.delete_client("client-a").await.expect("delete"));
    assert!(!store.delete_client("client-a").await.expect("delete"));
    assert!(store.get_client("client-a").await.expect("get").is_none());
}

/// The stored client has no secret, only its hash, which verifies the secret.
pub async fn client_records_keep_only_a_secret_hash(store: Arc<dyn Storage>) {
    store
        .insert_client(&ClientRecord::new(client("client-b", Some("s3cret-value"))))
        .await
        .expect("insert");
    let loaded = store
        .get_client("client-b")
        .await
        .expect("get")
        .expect("present");
    assert!(loaded.info.client_secret.is_none());
    let hash = loaded.secret_hash.expect("hash kept");
    assert!(hash.verify("s3cret-value"));
    assert!(!hash.verify("s3cret-valuE"));
    let json = serde_json::to_string(&loaded).expect("json");
    assert!(!json.contains("s3cret-value"));
}

/// Pending requests are returned until taken or expired, and taken only once.
pub async fn authorization_requests_are_single_use_and_expire(store: Arc<dyn Storage>) {
    let (raw, record) = request(NOW + 60);
    let hash = SecretHash::of(&raw);
    store
        .insert_authorization_request(&record)
        .await
        .expect("insert");
    let loaded = store
        .get_authorization_request(&hash, NOW)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(loaded.params, record.params);
    assert!(
        store
            .get_authorization_request(&hash, NOW + 60)
            .await
            .expect("get")
            .is_none()
    );
    let taken = store
        .take_authorization_request(&hash, NOW)
        .await
        .expect("take");
    assert_eq!(taken.expect("taken").client_id, "client-1");
    assert!(
        store
            .take_authorization_request(&hash, NOW)
            .await
            .expect("take")
            .is_none()
    );
    assert!(
        store
            .get_authorization_request(&hash, NOW)
            .await
            .expect("get")
            .is_none()
    );

    let (raw, record) = request(NOW + 1);
    store
        .insert_authorization_request(&record)
        .await
        .expect("insert");
    let expired = store
        .take_authorization_request(&SecretHash::of(&raw), NOW + 1)
        .await
        .expect("take");
    assert!(expired.is_none(), "an expired request must not be taken");
}

/// Of 32 concurrent takers of one pending request, exactly one gets it.
pub async fn authorization_request_is_taken_once_under_concurrency(store: Arc<dyn Storage>) {
    let (raw, record) = request(NOW + 60);
    store
        .insert_authorization_request(&record)
        .await
        .expect("insert");
    let hash = SecretHash::of(&raw);
    let winners = race(32, move |_| {
        let store = Arc::clone(&store);
        async move {
            store
                .take_authorization_request(&hash, NOW)
                .await
                .expect("take")
                .is_some()
        }
    })
    .await;
    assert_eq!(winners, 1);
}

/// A code is taken once; later takes report the redemption with its grant.
pub async fn code_take_is_single_use_and_remembers_redemption(store: Arc<dyn Storage>) {
    let (raw, record) = code("client-1", NOW + 300);
    let hash = SecretHash::of(&raw);
    store.insert_code(&record).await.expect("insert");
    let loaded = store
        .get_code(&hash, NOW)
        .await
        .expect("get")
        .expect("live");
    assert_eq!(loaded.redirect_uri, record.redirect_uri);
    assert_eq!(loaded.scopes, record.scopes);
    assert_eq!(loaded.resource, record.resource);
    match store.take_code(&hash, NOW).await.expect("take") {
        CodeTake::Taken(taken) => {
            assert_eq!(taken.grant_id, record.grant_id);
            assert_eq!(taken.code_challenge, record.code_challenge);
            assert_eq!(taken.subject.as_deref(), Some("alice"));
            assert!(taken.redirect_uri_provided_explicitly);
        }
        other => panic!("expected Taken, got {other:?}"),
    }
    assert!(store.get_code(&hash, NOW).await.expect("get").is_none());
    match store.take_code(&hash, NOW + 1).await.expect("take") {
        CodeTake::AlreadyRedeemed { grant_id } => assert_eq!(grant_id, record.grant_id),
        other => panic!("expected AlreadyRedeemed, got {other:?}"),
    }
    let unknown = SecretHash::of("never-issued");
    assert!(matches!(
        store.take_code(&unknown, NOW).await.expect("take"),
        CodeTake::Missing
    ));
}

/// 32 concurrent takers of one code: exactly one wins, every other sees the redemption.
pub async fn code_is_single_use_under_concurrent_redemption(store: Arc<dyn Storage>) {
    let (raw, record) = code("client-1", NOW + 300);
    store.insert_code(&record).await.expect("insert");
    let hash = SecretHash::of(&raw);
    let grant = record.grant_id.clone();
    let outcomes = futures_all(32, move |_| {
        let store = Arc::clone(&store);
        async move { store.take_code(&hash, NOW).await.expect("take") }
    })
    .await;
    let taken = outcomes
        .iter()
        .filter(|o| matches!(o, CodeTake::Taken(_)))
        .count();
    assert_eq!(taken, 1, "exactly one concurrent redemption may win");
    for outcome in &outcomes {
        match outcome {
            CodeTake::Taken(_) => {}
            CodeTake::AlreadyRedeemed { grant_id } => assert_eq!(*grant_id, grant),
            CodeTake::Missing => panic!("a losing redemption must see AlreadyRedeemed"),
        }
    }
}

/// An expired code is neither returned nor taken.
pub async fn expired_codes_are_never_returned(store: Arc<dyn Storage>) {
    let (raw, record) = code("client-1", NOW + 10);
    let hash = SecretHash::of(&raw);
    store.insert_code(&record).await.expect("insert");
    assert!(
        store
            .get_code(&hash, NOW + 10)
            .await
            .expect("get")
            .is_none()
    );
    assert!(matches!(
        store.take_code(&hash, NOW + 11).await.expect("take"),
        CodeTake::Missing
    ));
    // Still live one second earlier: expiry is exclusive of `expires_at`.
    assert!(store.get_code(&hash, NOW + 9).await.expect("get").is_some());
}

/// Access tokens are found by hash until they expire, with every field intact.
pub async fn access_tokens_are_found_until_they_expire(store: Arc<dyn Storage>) {
    let grant = random_id();
    let (raw, record) = access(&grant, NOW + 100);
    assert!(store.issue_tokens(&record, None).await.expect("issue"));
    let hash = SecretHash::of(&raw);
    let loaded = access_token_at(&*store, &hash, NOW).await.expect("live");
    assert_eq!(loaded.grant_id, grant);
    assert_eq!(loaded.scopes, record.scopes);
    assert_eq!(loaded.resource, record.resource);
    assert_eq!(loaded.subject, record.subject);
    assert_eq!(loaded.claims, record.claims);
    assert_eq!(loaded.expires_at, NOW + 100);
    assert!(access_token_at(&*store, &hash, NOW + 100).await.is_none());
    assert!(
        access_token_at(&*store, &SecretHash::of("unknown"), NOW)
            .await
            .is_none()
    );
}

/// Rotation stores the new pair, marks the old refresh token rotated and deletes the grant's
/// earlier access tokens, in one step.
pub async fn rotation_retires_the_old_token_and_earlier_access_tokens(store: Arc<dyn Storage>) {
    let grant = random_id();
    let (access_raw, access_rec) = access(&grant, NOW + 100);
    let (refresh_raw, refresh_rec) = refresh(&grant, NOW + 1000);
    assert!(
        store
            .issue_tokens(&access_rec, Some(&refresh_rec))
            .await
            .expect("issue")
    );
    let old_hash = SecretHash::of(&refresh_raw);
    match store.get_refresh_token(&old_hash, NOW).await.expect("get") {
        Some(RefreshLookup::Active(record)) => {
            assert_eq!(record.scopes, refresh_rec.scopes);
            assert_eq!(record.grant_issued_at, refresh_rec.grant_issued_at);
        }
        other => panic!("expected Active, got {other:?}"),
    }
    let (new_access_raw, new_access) = access(&grant, NOW + 200);
    let (new_refresh_raw, new_refresh) = refresh(&grant, NOW + 2000);
    let outcome = store
        .rotate_refresh_token(&old_hash, &new_access, Some(&new_refresh), NOW)
        .await
        .expect("rotate");
    assert!(matches!(outcome, Rotation::Rotated), "{outcome:?}");
    assert!(matches!(
        store.get_refresh_token(&old_hash, NOW).await.expect("get"),
        Some(RefreshLookup::Rotated { grant_id }) if grant_id == grant
    ));
    assert!(
        access_token_at(&*store, &SecretHash::of(&access_raw), NOW)
            .await
            .is_none(),
        "the access token of the old pair must die with it"
    );
    assert!(
        access_token_at(&*store, &SecretHash::of(&new_access_raw), NOW)
            .await
            .is_some()
    );
    assert!(matches!(
        store
            .get_refresh_token(&SecretHash::of(&new_refresh_raw), NOW)
            .await
            .expect("get"),
        Some(RefreshLookup::Active(_))
    ));
}

/// At the end of a grant's lifetime rotation issues only an access token and still retires the
/// old refresh token.
pub async fn rotation_without_new_refresh_token_retires_the_old_one(store: Arc<dyn Storage>) {
    let grant = random_id();
    let (_, access_rec) = access(&grant, NOW + 100);
    let (refresh_raw, refresh_rec) = refresh(&grant, NOW + 1000);
    store
        .issue_tokens(&access_rec, Some(&refresh_rec))
        .await
        .expect("issue");
    let old_hash = SecretHash::of(&refresh_raw);
    let (new_access_raw, new_access) = access(&grant, NOW + 200);
    let outcome = store
        .rotate_refresh_token(&old_hash, &new_access, None, NOW)
        .await
        .expect("rotate");
    assert!(matches!(outcome, Rotation::Rotated));
    assert!(matches!(
        store
            .rotate_refresh_token(&old_hash, &new_access, None, NOW)
            .await
            .expect("rotate"),
        Rotation::Reused { .. }
    ));
    assert!(
        access_token_at(&*store, &SecretHash::of(&new_access_raw), NOW)
            .await
            .is_some()
    );
}

/// Rotating an already rotated token reports reuse and stores nothing.
pub async fn rotated_refresh_token_is_reported_as_reused(store: Arc<dyn Storage>) {
    let grant = random_id();
    let (_, access_rec) = access(&grant, NOW + 100);
    let (refresh_raw, refresh_rec) = refresh(&grant, NOW + 1000);
    store
        .issue_tokens(&access_rec, Some(&refresh_rec))
        .await
        .expect("issue");
    let old_hash = SecretHash::of(&refresh_raw);
    let (_, a1) = access(&grant, NOW + 100);
    let (_, r1) = refresh(&grant, NOW + 1000);
    assert!(matches!(
        store
            .rotate_refresh_token(&old_hash, &a1, Some(&r1), NOW)
            .await
            .expect("rotate"),
        Rotation::Rotated
    ));
    let (a2_raw, a2) = access(&grant, NOW + 100);
    let (r2_raw, r2) = refresh(&grant, NOW + 1000);
    match store
        .rotate_refresh_token(&old_hash, &a2, Some(&r2), NOW)
        .await
        .expect("rotate")
    {
        Rotation::Reused { grant_id } => assert_eq!(grant_id, grant),
        other => panic!("expected Reused, got {other:?}"),
    }
    assert!(
        access_token_at(&*store, &SecretHash::of(&a2_raw), NOW)
            .await
            .is_none()
    );
    assert!(
        store
            .get_refresh_token(&SecretHash::of(&r2_raw), NOW)
            .await
            .expect("get")
            .is_none()
    );
    let (_, a3) = access(&grant, NOW + 100);
    assert!(matches!(
        store
            .rotate_refresh_token(&SecretHash::of("unknown"), &a3, None, NOW)
            .await
            .expect("rotate"),
        Rotation::Missing
    ));
    // An expired refresh token cannot be rotated.
    let (exp_raw, exp_rec) = refresh(&grant, NOW + 5);
    let (_, exp_access) = access(&grant, NOW + 5);
    store
        .issue_tokens(&exp_access, Some(&exp_rec))
        .await
        .expect("issue");
    assert!(matches!(
        store
            .rotate_refresh_token(&SecretHash::of(&exp_raw), &a3, None, NOW + 5)
            .await
            .expect("rotate"),
        Rotation::Missing
    ));
}

/// Of 16 concurrent rotations of one token exactly one wins; the others see reuse.
pub async fn one_of_concurrent_rotations_wins(store: Arc<dyn Storage>) {
    let grant = random_id();
    let (_, access_rec) = access(&grant, NOW + 100);
    let (refresh_raw, refresh_rec) = refresh(&grant, NOW + 1000);
    store
        .issue_tokens(&access_rec, Some(&refresh_rec))
        .await
        .expect("issue");
    let old_hash = SecretHash::of(&refresh_raw);
    let outcomes = futures_all(16, move |_| {
        let store = Arc::clone(&store);
        let grant = grant.clone();
        async move {
            let (_, a) = access(&grant, NOW + 100);
            let (_, r) = refresh(&grant, NOW + 1000);
            store
                .rotate_refresh_token(&old_hash, &a, Some(&r), NOW)
                .await
                .expect("rotate")
        }
    })
    .await;
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, Rotation::Rotated))
        .count();
    let reused = outcomes
        .iter()
        .filter(|o| matches!(o, Rotation::Reused { .. }))
        .count();
    assert_eq!((rotated, reused), (1, 15), "{outcomes:?}");
}

/// Revoking a grant deletes all its tokens and refuses new ones; other grants are untouched.
pub async fn revoking_a_grant_kills_every_token_and_refuses_new_ones(store: Arc<dyn Storage>) {
    let grant = random_id();
    let other = random_id();
    let (a_raw, a) = access(&grant, NOW + 100);
    let (r_raw, r) = refresh(&grant, NOW + 1000);
    let (o_raw, o) = access(&other, NOW + 100);
    store.issue_tokens(&a, Some(&r)).await.expect("issue");
    store.issue_tokens(&o, None).await.expect("issue");
    store
        .revoke_grant(&grant, NOW + 1000)
        .await
        .expect("revoke");
    assert!(
        access_token_at(&*store, &SecretHash::of(&a_raw), NOW)
            .await
            .is_none()
    );
    assert!(
        store
            .get_refresh_token(&SecretHash::of(&r_raw), NOW)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        access_token_at(&*store, &SecretHash::of(&o_raw), NOW)
            .await
            .is_some()
    );
    let (late_raw, late) = access(&grant, NOW + 100);
    assert!(
        !store.issue_tokens(&late, None).await.expect("issue"),
        "a revoked grant refuses tokens"
    );
    assert!(
        access_token_at(&*store, &SecretHash::of(&late_raw), NOW)
            .await
            .is_none()
    );
    let (_, next) = access(&grant, NOW + 100);
    assert!(matches!(
        store
            .rotate_refresh_token(&SecretHash::of(&r_raw), &next, None, NOW)
            .await
            .expect("rotate"),
        Rotation::Missing
    ));
    store
        .revoke_grant("never-existed", NOW + 10)
        .await
        .expect("revoking an unknown grant is fine");
    store
        .revoke_grant(&grant, NOW + 10)
        .await
        .expect("revoking twice is fine");
}

/// A rotation chain racing a revocation: once the revocation returns, no token of the grant
/// works, including any the chain created concurrently.
pub async fn revocation_is_linearizable_with_concurrent_rotation(store: Arc<dyn Storage>) {
    for _round in 0..5 {
        let grant = random_id();
        let (_, a) = access(&grant, NOW + 100);
        let (r_raw, r) = refresh(&grant, NOW + 1000);
        store.issue_tokens(&a, Some(&r)).await.expect("issue");
        let chain_store = Arc::clone(&store);
        let chain_grant = grant.clone();
        let chain = tokio::spawn(async move {
            let mut current = SecretHash::of(&r_raw);
            let mut issued = Vec::new();
            for _ in 0..20 {
                let (a_raw, a) = access(&chain_grant, NOW + 100);
                let (r_raw, r) = refresh(&chain_grant, NOW + 1000);
                match chain_store
                    .rotate_refresh_token(&current, &a, Some(&r), NOW)
                    .await
                    .expect("rotate")
                {
                    Rotation::Rotated => {
                        issued.push((a_raw, r_raw.clone()));
                        current = SecretHash::of(&r_raw);
                    }
                    _ => break,
                }
            }
            issued
        });
        tokio::task::yield_now().await;
        store
            .revoke_grant(&grant, NOW + 1000)
            .await
            .expect("revoke");
        let issued = chain.await.expect("chain task");
        for (a_raw, r_raw) in issued {
            assert!(
                access_token_at(&*store, &SecretHash::of(&a_raw), NOW)
                    .await
                    .is_none(),
                "an access token survived its grant's revocation"
            );
            assert!(
                store
                    .get_refresh_token(&SecretHash::of(&r_raw), NOW)
                    .await
                    .expect("get")
                    .is_none(),
                "a refresh token survived its grant's revocation"
            );
        }
    }
}

/// Purging removes expired records of every kind and keeps live ones.
pub async fn purge_removes_expired_records_and_keeps_live_ones(store: Arc<dyn Storage>) {
    let (_, old_req) = request(NOW + 1);
    let (live_req_raw, live_req) = request(NOW + 1000);
    store
        .insert_authorization_request(&old_req)
        .await
        .expect("insert");
    store
        .insert_authorization_request(&live_req)
        .await
        .expect("insert");
    let (_, old_code) = code("c", NOW + 1);
    let (taken_raw, taken_code) = code("c", NOW + 2);
    let (live_code_raw, live_code) = code("c", NOW + 1000);
    for record in [&old_code, &taken_code, &live_code] {
        store.insert_code(record).await.expect("insert");
    }
    store
        .take_code(&SecretHash::of(&taken_raw), NOW)
        .await
        .expect("take");
    let grant = random_id();
    let (_, old_access) = access(&grant, NOW + 1);
    let (_, old_refresh) = refresh(&grant, NOW + 2);
    let (live_access_raw, live_access) = access(&random_id(), NOW + 1000);
    store
        .issue_tokens(&old_access, Some(&old_refresh))
        .await
        .expect("issue");
    store.issue_tokens(&live_access, None).await.expect("issue");
    store
        .revoke_grant(&random_id(), NOW + 3)
        .await
        .expect("revoke");
    store
        .record_assertion_id("i", "old", NOW + 1, NOW)
        .await
        .expect("record");
    store
        .record_assertion_id("i", "live", NOW + 1000, NOW)
        .await
        .expect("record");

    let later = NOW + 10;
    assert!(
        store
            .purge_expired_authorization_requests(later)
            .await
            .expect("purge")
            >= 1
    );
    assert!(store.purge_expired_codes(later).await.expect("purge") >= 2);
    assert!(store.purge_expired_tokens(later).await.expect("purge") >= 2);
    assert!(
        store
            .purge_expired_assertion_ids(later)
            .await
            .expect("purge")
            >= 1
    );
    // A second purge finds nothing more.
    assert_eq!(store.purge_expired_codes(later).await.expect("purge"), 0);
    assert_eq!(
        store
            .purge_expired_assertion_ids(later)
            .await
            .expect("purge"),
        0
    );

    assert!(
        store
            .get_authorization_request(&SecretHash::of(&live_req_raw), later)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        store
            .get_code(&SecretHash::of(&live_code_raw), later)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        access_token_at(&*store, &SecretHash::of(&live_access_raw), later)
            .await
            .is_some()
    );
    assert!(
        !store
            .record_assertion_id("i", "live", NOW + 1000, later)
            .await
            .expect("record")
    );
    assert!(
        store
            .record_assertion_id("i", "old", NOW + 1000, later)
            .await
            .expect("record")
    );
}

/// Runs `n` copies of a task at once (each on its own tokio task, released together) and
/// collects their results.
pub async fn futures_all<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let task = make(i);
            tokio::spawn(async move {
                barrier.wait().await;
                task.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for handle in handles {
        out.push(handle.await.expect("task panicked"));
    }
    out
}

/// How many of `n` concurrent copies of a task returned `true`.
pub async fn race<F, Fut>(n: usize, make: F) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    futures_all(n, make)
        .await
        .into_iter()
        .filter(|won| *won)
        .count()
}
