//! The unknown-token cache seen through the provider, over a store that (like SQL or Redis)
//! cannot answer lookups without waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, Weak};

use mcp_auth_types::{OAuthClientMetadata, TokenEndpointAuthMethod};

use super::*;
use crate::storage::{
    AccessTokenRecord, AdminStore, AuthorizationRequestStore, ClientStore, CodeRecord, CodeStore,
    GrantRecord, ReplayStore, SigningKeyRecord, SigningKeyStore, TokenStore, UpstreamTokenRecord,
    UpstreamTokenStore, UserRecord,
};
use crate::{ManualClock, MemoryStore};

/// Called with the access-token hash of every token write, after the write.
type WriteHook = Box<dyn Fn(&SecretHash) + Send + Sync>;

/// A `MemoryStore` that answers only asynchronously, counts access-token reads, and can run a
/// hook after each token write.
#[derive(Default)]
struct Remote {
    inner: MemoryStore,
    reads: AtomicUsize,
    on_write: Mutex<Option<WriteHook>>,
}

impl Remote {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    fn wrote(&self, hash: &SecretHash) {
        if let Some(hook) = &*self.on_write.lock().unwrap_or_else(PoisonError::into_inner) {
            hook(hash);
        }
    }
}

type Provider = StoreProvider<Arc<Remote>>;
type Configure = fn(StoreProviderBuilder<Arc<Remote>>) -> StoreProviderBuilder<Arc<Remote>>;

fn provider(configure: Configure) -> (Arc<Provider>, Arc<Remote>, Arc<ManualClock>) {
    let store = Arc::new(Remote::default());
    let clock = Arc::new(ManualClock::new(1_000_000));
    let builder = StoreProvider::builder(Arc::clone(&store), "https://as.example")
        .clock(clock.clone())
        .client_credentials(true);
    let provider = Arc::new(configure(builder).build().expect("provider"));
    (provider, store, clock)
}

/// Every token write records, before the provider sees its outcome, a miss of the new access
/// token as if a lookup of it had raced the write: the worst case the provider must undo.
fn race_every_write(provider: &Arc<Provider>, store: &Remote) {
    let weak: Weak<Provider> = Arc::downgrade(provider);
    let hook: WriteHook = Box::new(move |hash| {
        let provider = weak.upgrade().expect("provider alive");
        let unknown = provider.unknown_tokens.as_ref().expect("cache on");
        unknown.miss(unknown.ticket(provider.now()), hash);
        assert!(
            unknown.is_unknown(hash, provider.now()),
            "the race is staged"
        );
    });
    *store.on_write.lock().expect("hook") = Some(hook);
}

async fn client(provider: &Provider) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec!["http://127.0.0.1:7777/cb".into()]);
    metadata.grant_types = vec![
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];
    metadata.scope = Some("mcp:tools".into());
    metadata.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::ClientSecretPost);
    let mut info = OAuthClientInformationFull::new("client-1", metadata);
    info.client_secret = Some(ClientSecret::new("s3cret"));
    provider.register_client(info).await.expect("register");
    provider
        .get_client("client-1")
        .await
        .expect("get")
        .expect("registered")
}

/// Whether `token` is live, asking without waiting first as the bearer layer does.
async fn live(provider: &Provider, token: &AccessTokenSecret) -> bool {
    if let Some(found) = provider.load_access_token_now(token) {
        return found.expect("load now").is_some();
    }
    provider
        .load_access_token(token)
        .await
        .expect("load")
        .is_some()
}

#[tokio::test]
async fn an_unknown_token_presented_again_costs_no_storage_read() {
    let (provider, store, _) = provider(|b| b);
    let token = AccessTokenSecret::new(random_secret());
    assert!(
        provider.load_access_token_now(&token).is_none(),
        "first: only storage can tell"
    );
    assert!(!live(&provider, &token).await);
    assert_eq!(store.reads(), 1);
    for _ in 0..10 {
        let now = provider
            .load_access_token_now(&token)
            .expect("answered without waiting");
        assert!(now.expect("load now").is_none());
        assert!(
            provider
                .load_access_token(&token)
                .await
                .expect("load")
                .is_none()
        );
    }
    assert_eq!(store.reads(), 1, "the miss was remembered");
}

#[tokio::test]
async fn a_remembered_miss_expires_with_the_ttl() {
    let (provider, store, clock) = provider(|b| b.unknown_token_cache_ttl(5));
    let token = AccessTokenSecret::new(random_secret());
    assert!(!live(&provider, &token).await);
    clock.advance(4);
    assert!(!live(&provider, &token).await);
    assert_eq!(store.reads(), 1);
    clock.advance(1);
    assert!(!live(&provider, &token).await);
    assert_eq!(store.reads(), 2, "read again once the TTL has passed");
}

#[tokio::test]
async fn a_disabled_cache_reads_storage_every_time() {
    let (provider, store, _) = provider(|b| b.unknown_token_cache_ttl(0));
    let token = AccessTokenSecret::new(random_secret());
    for _ in 0..3 {
        assert!(!live(&provider, &token).await);
    }
    assert_eq!(store.reads(), 3);
}

#[tokio::test]
async fn a_store_answering_from_memory_never_fills_the_cache() {
    let provider = StoreProvider::builder(MemoryStore::new(), "https://as.example")
        .build()
        .expect("provider");
    let token = AccessTokenSecret::new(random_secret());
    for _ in 0..3 {
        let now = provider.load_access_token_now(&token).expect("in memory");
        assert!(now.expect("load now").is_none());
    }
    let unknown = provider.unknown_tokens.as_ref().expect("on by default");
    assert!(!unknown.is_unknown(&SecretHash::of(token.expose_secret()), provider.now()));
}

#[tokio::test]
async fn every_issuance_forgets_its_token_before_returning_it() {
    let configurations: [Configure; 2] = [|b| b, |b| b.access_token_cache_ttl(60)];
    for configure in configurations {
        let (provider, store, _) = provider(configure);
        race_every_write(&provider, &store);
        let client = client(&provider).await;

        // Client credentials: an issuance without a refresh token.
        let issued = provider
            .exchange_client_credentials(&client, None, None)
            .await
            .expect("client credentials");
        assert!(
            live(&provider, &issued.access_token).await,
            "client credentials"
        );

        // A code exchange, then a rotation.
        let tokens = code_flow(&provider, &client).await;
        assert!(live(&provider, &tokens.access_token).await, "code exchange");
        let refresh_token = tokens.refresh_token.expect("refresh token");
        let loaded = provider
            .load_refresh_token(&client, &refresh_token)
            .await
            .expect("load")
            .expect("live");
        let rotated = provider
            .exchange_refresh_token(&client, loaded, vec!["mcp:tools".into()])
            .await
            .expect("rotate");
        assert!(live(&provider, &rotated.access_token).await, "rotation");
    }
}

async fn code_flow(provider: &Provider, client: &OAuthClientInformationFull) -> OAuthToken {
    let params = AuthorizationParams::new(
        Some(vec!["mcp:tools".to_owned()]),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "http://127.0.0.1:7777/cb",
        true,
    );
    let sign_in = provider.authorize(client, params).await.expect("authorize");
    let request_id = sign_in.split_once("request_id=").expect("request id").1;
    let redirect = provider
        .complete_authorization(request_id, "alice")
        .await
        .expect("complete");
    let code = redirect
        .split_once("code=")
        .and_then(|(_, rest)| rest.split('&').next())
        .expect("code");
    let loaded = provider
        .load_authorization_code(client, &AuthorizationCodeSecret::new(code))
        .await
        .expect("load")
        .expect("live code");
    provider
        .exchange_authorization_code(client, loaded)
        .await
        .expect("exchange")
}

#[async_trait]
impl AuthorizationRequestStore for Remote {
    async fn insert_authorization_request(
        &self,
        request: &AuthorizationRequestRecord,
    ) -> Result<(), StorageError> {
        self.inner.insert_authorization_request(request).await
    }
    async fn get_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        self.inner
            .get_authorization_request(request_hash, now)
            .await
    }
    async fn take_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        self.inner
            .take_authorization_request(request_hash, now)
            .await
    }
    async fn purge_expired_authorization_requests(&self, now: i64) -> Result<u64, StorageError> {
        self.inner.purge_expired_authorization_requests(now).await
    }
}

#[async_trait]
impl ClientStore for Remote {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        self.inner.insert_client(client).await
    }
    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        self.inner.upsert_client(client).await
    }
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        self.inner.get_client(client_id).await
    }
    async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        self.inner.delete_client(client_id).await
    }
}

#[async_trait]
impl CodeStore for Remote {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError> {
        self.inner.insert_code(code).await
    }
    async fn get_code(
        &self,
        code_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<CodeRecord>, StorageError> {
        self.inner.get_code(code_hash, now).await
    }
    async fn take_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeTake, StorageError> {
        self.inner.take_code(code_hash, now).await
    }
    async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError> {
        self.inner.purge_expired_codes(now).await
    }
}

#[async_trait]
impl TokenStore for Remote {
    async fn issue_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError> {
        let issued = self.inner.issue_tokens(access, refresh).await;
        self.wrote(&access.token_hash);
        issued
    }
    async fn get_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StorageError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get_access_token(token_hash, now).await
    }
    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RefreshLookup>, StorageError> {
        self.inner.get_refresh_token(token_hash, now).await
    }
    async fn rotate_refresh_token(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> Result<Rotation, StorageError> {
        let rotation = self
            .inner
            .rotate_refresh_token(old_hash, access, refresh, now)
            .await;
        self.wrote(&access.token_hash);
        rotation
    }
    async fn refresh_token_rotation(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<(i64, RefreshTokenRecord)>, StorageError> {
        self.inner.refresh_token_rotation(token_hash, now).await
    }
    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        self.inner.revoke_grant(grant_id, keep_until).await
    }
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError> {
        self.inner.purge_expired_tokens(now).await
    }
}

#[async_trait]
impl ReplayStore for Remote {
    async fn record_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        self.inner
            .record_assertion_id(issuer, jti, expires_at, now)
            .await
    }
    async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError> {
        self.inner.purge_expired_assertion_ids(now).await
    }
}

#[async_trait]
impl SigningKeyStore for Remote {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        self.inner.signing_keys().await
    }
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StorageError> {
        self.inner.insert_signing_key(key).await
    }
    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StorageError> {
        self.inner.delete_signing_keys_before(generation).await
    }
}

#[async_trait]
impl AdminStore for Remote {
    async fn insert_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        self.inner.insert_user(user).await
    }
    async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        self.inner.set_user_password(name, password_hash).await
    }
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        self.inner.get_user(name).await
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>, StorageError> {
        self.inner.list_users().await
    }
    async fn delete_user(&self, name: &str) -> Result<bool, StorageError> {
        self.inner.delete_user(name).await
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StorageError> {
        self.inner.list_clients().await
    }
    async fn list_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<GrantRecord>, StorageError> {
        self.inner.list_grants(subject, client_id, now).await
    }
}

#[async_trait]
impl UpstreamTokenStore for Remote {
    async fn put_upstream_tokens(&self, record: &UpstreamTokenRecord) -> Result<(), StorageError> {
        self.inner.put_upstream_tokens(record).await
    }
    async fn get_upstream_tokens(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Option<UpstreamTokenRecord>, StorageError> {
        self.inner.get_upstream_tokens(grant_id, now).await
    }
    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StorageError> {
        self.inner.delete_upstream_tokens(grant_id).await
    }
    async fn purge_expired_upstream_tokens(&self, now: i64) -> Result<u64, StorageError> {
        self.inner.purge_expired_upstream_tokens(now).await
    }
}
