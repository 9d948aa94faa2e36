//! The administrators' contracts (`AdminStore`): users kept in the store, and the listings
//! behind `client list` and `grant list`.

use std::sync::Arc;

use mcp_auth_core::storage::{AdminStore, ClientStore, CodeStore, TokenStore, UserRecord};
use mcp_auth_core::types::{OAuthClientInformationFull, OAuthClientMetadata};
use mcp_auth_core::{ClientRecord, Storage};

use super::records::{NOW, access, code, refresh};

const PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

/// Users: inserted once (a taken name changes nothing), found by exact name, their hash
/// replaced only if they exist, listed by name, deleted.
pub async fn users_are_added_once_changed_listed_and_removed(store: Arc<dyn Storage>) {
    let alice = UserRecord::new("alice", PHC, NOW);
    assert!(store.insert_user(&alice).await.unwrap());
    assert!(
        !store
            .insert_user(&UserRecord::new("alice", "other", NOW))
            .await
            .unwrap(),
        "taken"
    );
    let stored = store.get_user("alice").await.unwrap().expect("stored");
    assert_eq!(stored.password_hash, PHC, "the first one stays");
    assert_eq!(stored.created_at, NOW);
    assert!(
        store.get_user("Alice").await.unwrap().is_none(),
        "names are exact"
    );
    assert!(
        store
            .set_user_password("alice", "$argon2id$new")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_user("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );
    assert!(!store.set_user_password("mallory", "x").await.unwrap());
    assert!(
        store.get_user("mallory").await.unwrap().is_none(),
        "no user made by a password"
    );
    assert!(
        store
            .insert_user(&UserRecord::new("bob", PHC, NOW + 1))
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_user(&UserRecord::new("aaron", PHC, NOW + 2))
            .await
            .unwrap()
    );
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.name)
        .collect();
    assert_eq!(names, ["aaron", "alice", "bob"]);
    assert!(store.delete_user("alice").await.unwrap());
    assert!(!store.delete_user("alice").await.unwrap());
    assert!(store.get_user("alice").await.unwrap().is_none());
}

/// Clients are listed by id, holding only their secret's hash.
pub async fn clients_are_listed_by_id_with_their_secret_hash_only(store: Arc<dyn Storage>) {
    for id in ["zeta", "alpha", "mid"] {
        let mut info = OAuthClientInformationFull::new(id, OAuthClientMetadata::new(vec![]));
        info.client_secret = Some(mcp_auth_core::types::ClientSecret::new(format!(
            "{id}-secret"
        )));
        store.insert_client(&ClientRecord::new(info)).await.unwrap();
    }
    let clients = store.list_clients().await.unwrap();
    let ids: Vec<&str> = clients.iter().map(|c| c.info.client_id.as_str()).collect();
    assert_eq!(ids, ["alpha", "mid", "zeta"]);
    assert!(
        clients
            .iter()
            .all(|c| c.info.client_secret.is_none() && c.secret_hash.is_some())
    );
}

/// Stores a grant with an access token (and a refresh token when `with_refresh`) of `client`
/// for `subject`, expiring at `expires_at`.
async fn grant(
    store: &Arc<dyn Storage>,
    id: &str,
    client: &str,
    subject: &str,
    expires_at: i64,
    with_refresh: bool,
) {
    let (_, mut a) = access(id, expires_at.min(NOW + 3600));
    a.client_id = client.to_owned();
    a.subject = Some(subject.to_owned());
    let refresh = with_refresh.then(|| {
        let (_, mut r) = refresh(id, expires_at);
        r.client_id = client.to_owned();
        r.subject = Some(subject.to_owned());
        r
    });
    assert!(store.issue_tokens(&a, refresh.as_ref()).await.unwrap());
}

/// Live grants (not revoked, a token not expired) are listed by subject and client, each by
/// its longest-lived token.
pub async fn live_grants_are_listed_by_subject_and_client(store: Arc<dyn Storage>) {
    grant(&store, "g1", "c1", "alice", NOW + 86_400, true).await;
    grant(&store, "g2", "c2", "alice", NOW + 600, false).await;
    grant(&store, "g3", "c1", "bob", NOW + 86_400, true).await;
    grant(&store, "g4", "c1", "alice", NOW + 86_400, true).await;
    store.revoke_grant("g4", NOW + 86_400).await.unwrap();
    grant(&store, "g5", "c1", "alice", NOW + 100, false).await;
    // A sign-in whose code is not yet redeemed is a live grant too; a redeemed code is not.
    let (_, mut pending) = code("c2", NOW + 300);
    pending.grant_id = "g6".to_owned();
    store.insert_code(&pending).await.unwrap();
    let (redeemed_raw, mut redeemed) = code("c2", NOW + 300);
    redeemed.grant_id = "g7".to_owned();
    store.insert_code(&redeemed).await.unwrap();
    store
        .take_code(&mcp_auth_core::secrets::SecretHash::of(&redeemed_raw), NOW)
        .await
        .unwrap();

    let ids = |grants: Vec<mcp_auth_core::GrantRecord>| -> Vec<String> {
        grants.into_iter().map(|g| g.grant_id).collect()
    };
    let later = NOW + 200; // g5 has expired by then
    assert_eq!(
        ids(store.list_grants(None, None, later).await.unwrap()),
        ["g1", "g2", "g3", "g6"]
    );
    assert_eq!(
        ids(store.list_grants(Some("alice"), None, later).await.unwrap()),
        ["g1", "g2", "g6"]
    );
    assert_eq!(
        ids(store.list_grants(None, Some("c1"), later).await.unwrap()),
        ["g1", "g3"]
    );
    assert_eq!(
        ids(store
            .list_grants(Some("alice"), Some("c1"), later)
            .await
            .unwrap()),
        ["g1"]
    );
    assert!(
        store
            .list_grants(Some("carol"), None, later)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store.list_grants(Some("alice"), None, NOW).await.unwrap()),
        ["g1", "g2", "g5", "g6"],
        "g5 is live at NOW"
    );
    store.revoke_grant("g6", NOW + 300).await.unwrap();
    assert_eq!(
        ids(store.list_grants(None, Some("c2"), later).await.unwrap()),
        ["g2"],
        "a revoked code's grant is gone"
    );

    // A grant is described by its longest-lived token: g1's refresh token.
    let g1 = store
        .list_grants(None, Some("c1"), later)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.grant_id == "g1")
        .unwrap();
    assert_eq!(g1.client_id, "c1");
    assert_eq!(g1.subject.as_deref(), Some("alice"));
    assert_eq!(g1.expires_at, NOW + 86_400);
    assert!(!g1.scopes.is_empty());
    // Past every token's expiry, nothing is live.
    assert!(
        store
            .list_grants(None, None, NOW + 86_400)
            .await
            .unwrap()
            .is_empty()
    );
}
