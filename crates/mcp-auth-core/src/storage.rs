//! Storage traits: what a backend must guarantee for `StoreProvider` to be secure.
//!
//! Storage is split by concern — clients, pending authorization requests, authorization codes,
//! tokens, assertion replay, access-token signing keys, users and the administrators'
//! listings, and an upstream identity provider's tokens per grant — so a deployment can mix
//! backends (clients in Postgres, tokens in Redis). [`Storage`] is the blanket trait over all
//! eight.
//!
//! Backends store no usable credential: codes, tokens and client secrets arrive here already
//! hashed ([`SecretHash`], SHA-256 of a 256-bit random value), so a dump of the store yields
//! nothing that can be presented to the server.
//!
//! Every contract below is proved for every backend by the conformance suite in the
//! `mcp-auth-tests` crate.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_auth_types::{AccessTokenInfo, AuthorizationParams, OAuthClientInformationFull};
use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::secrets::SecretHash;

mod admin;
mod signing_keys;
mod upstream_tokens;
pub use admin::{AdminStore, GrantRecord, UserRecord};
pub use signing_keys::{SigningKeyRecord, SigningKeyStore};
pub use upstream_tokens::{UpstreamTokenRecord, UpstreamTokenStore};

/// Free-form claims carried on a token (`iss`, `act`, …).
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// A registered client as stored: its metadata without the secret, and the secret's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientRecord {
    /// The client information; `client_secret` is always `None` here.
    pub info: OAuthClientInformationFull,
    /// SHA-256 of the client secret, for confidential clients.
    pub secret_hash: Option<SecretHash>,
}

impl ClientRecord {
    /// A record for `info`, moving its raw secret (if any) into a hash.
    pub fn new(mut info: OAuthClientInformationFull) -> Self {
        let secret_hash = info
            .client_secret
            .take()
            .map(|secret| SecretHash::of(secret.expose_secret()));
        Self { info, secret_hash }
    }
}

/// An authorization code as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub code_hash: SecretHash,
    /// The grant the code starts; its tokens carry the same id.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Redirect URI of the authorization request.
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI.
    pub redirect_uri_provided_explicitly: bool,
    /// RFC 8707 resource.
    pub resource: Option<String>,
    /// The resource owner.
    pub subject: Option<String>,
}

/// An authorization request waiting for the user to sign in and consent.
///
/// `StoreProvider::authorize` stores one and sends the user agent to the sign-in page with its
/// id; the sign-in page completes it (issuing a code) or denies it. Keeping it in storage, not in
/// process memory, lets any instance of a multi-instance deployment finish the sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationRequestRecord {
    /// SHA-256 of the request id carried in the sign-in URL.
    pub request_hash: SecretHash,
    /// The client that made the request.
    pub client_id: String,
    /// The validated request.
    pub params: AuthorizationParams,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
}

/// What taking a code found.
#[derive(Debug, Clone)]
pub enum CodeTake {
    /// The code was live and is now consumed; this caller is the only one to get it.
    Taken(CodeRecord),
    /// The code was already redeemed; its grant should be revoked (RFC 6749 §4.1.2).
    AlreadyRedeemed {
        /// The grant started by the first redemption.
        grant_id: String,
    },
    /// No such live code (never issued, or expired).
    Missing,
}

/// An access token as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessTokenRecord {
    /// SHA-256 of the token.
    pub token_hash: SecretHash,
    /// The grant the token belongs to.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
    /// RFC 8707 resource (audience).
    pub resource: Option<String>,
    /// The resource owner.
    pub subject: Option<String>,
    /// Further claims.
    pub claims: Option<Claims>,
}

/// A live access token as a store or cache holds it in memory, ready to hand out: the
/// grant it belongs to and the token's information, both shared.
///
/// Handing one out costs two reference counts where an [`AccessTokenRecord`] costs a copy of
/// every string, scope and claim, which on the in-memory hot path of a protected request was
/// the largest part of the bearer layer's cost. Like the record, it never holds the token.
///
/// It is made only from an [`AccessTokenRecord`] and is read-only, so its expiry and its
/// information's always agree.
#[derive(Debug, Clone)]
pub struct SharedAccessTokenRecord {
    grant_id: Arc<str>,
    expires_at: i64,
    info: Arc<AccessTokenInfo>,
}

impl From<AccessTokenRecord> for SharedAccessTokenRecord {
    fn from(record: AccessTokenRecord) -> Self {
        let mut info = AccessTokenInfo::new(record.client_id, record.scopes);
        info.expires_at = Some(record.expires_at);
        info.resource = record.resource;
        info.subject = record.subject;
        info.claims = record.claims;
        Self {
            grant_id: Arc::from(record.grant_id),
            expires_at: record.expires_at,
            info: Arc::new(info),
        }
    }
}

impl SharedAccessTokenRecord {
    /// `record`, with `grant_id` (equal to `record.grant_id`) shared with the store's index of
    /// the grant's tokens rather than copied: one allocation less per stored token.
    pub(crate) fn sharing_grant_id(grant_id: Arc<str>, record: &AccessTokenRecord) -> Self {
        debug_assert_eq!(*grant_id, *record.grant_id);
        let mut info = AccessTokenInfo::new(record.client_id.clone(), record.scopes.clone());
        info.expires_at = Some(record.expires_at);
        info.resource = record.resource.clone();
        info.subject = record.subject.clone();
        info.claims = record.claims.clone();
        Self {
            grant_id,
            expires_at: record.expires_at,
            info: Arc::new(info),
        }
    }

    /// The grant the token belongs to.
    pub fn grant_id(&self) -> &str {
        &self.grant_id
    }

    /// Expiry, seconds since the epoch.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// What is known about the token.
    pub fn info(&self) -> &Arc<AccessTokenInfo> {
        &self.info
    }

    /// The shared grant id and information, for building a verified token without copying.
    pub fn into_shared(self) -> (Arc<str>, Arc<AccessTokenInfo>) {
        (self.grant_id, self.info)
    }

    /// The stored form of this token, whose hash is `token_hash`.
    pub fn to_record(&self, token_hash: SecretHash) -> AccessTokenRecord {
        AccessTokenRecord {
            token_hash,
            grant_id: self.grant_id.to_string(),
            client_id: self.info.client_id.clone(),
            scopes: self.info.scopes.clone(),
            expires_at: self.expires_at,
            resource: self.info.resource.clone(),
            subject: self.info.subject.clone(),
            claims: self.info.claims.clone(),
        }
    }
}

/// A refresh token as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub token_hash: SecretHash,
    /// The grant the token belongs to.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Scopes of the grant.
    pub scopes: Vec<String>,
    /// Expiry, seconds since the epoch (already capped by the grant's absolute lifetime).
    pub expires_at: i64,
    /// RFC 8707 resource.
    pub resource: Option<String>,
    /// The resource owner.
    pub subject: Option<String>,
    /// Further claims.
    pub claims: Option<Claims>,
    /// When the grant started, so an absolute grant lifetime survives rotation.
    pub grant_issued_at: i64,
}

/// What looking up a refresh token found.
#[derive(Debug, Clone)]
pub enum RefreshLookup {
    /// A live, unrotated token.
    Active(RefreshTokenRecord),
    /// The token was already rotated: presenting it again is a sign of theft.
    Rotated {
        /// The grant to revoke.
        grant_id: String,
    },
}

/// What rotating a refresh token did.
#[derive(Debug, Clone)]
pub enum Rotation {
    /// The old token is dead and the new pair stored, in one step.
    Rotated,
    /// The old token had already been rotated (a concurrent or replayed refresh); nothing was
    /// stored and the grant should be revoked.
    Reused {
        /// The grant to revoke.
        grant_id: String,
    },
    /// No such live token (never issued, expired, or its grant revoked).
    Missing,
}

/// Registered clients.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Stores a new client. An existing `client_id` is a [`StorageErrorKind::Conflict`](crate::StorageErrorKind).
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError>;

    /// Stores a client, replacing any record with the same id (for pre-registered clients
    /// loaded at start-up).
    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError>;

    /// The client with this id.
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError>;

    /// Deletes a client; `true` when it existed.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError>;
}

/// Authorization codes.
#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Stores a new code.
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError>;

    /// The live, unredeemed code with this hash; `None` once expired (at `now`) or redeemed.
    async fn get_code(
        &self,
        code_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<CodeRecord>, StorageError>;

    /// Atomically consumes the code: **of any number of concurrent calls for one code, at most
    /// one returns [`CodeTake::Taken`]**. A consumed code leaves a marker until its expiry, so
    /// that a later take returns [`CodeTake::AlreadyRedeemed`] with the grant to revoke. An
    /// expired code is [`CodeTake::Missing`].
    async fn take_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeTake, StorageError>;

    /// Deletes codes and redemption markers that expired before `now`; returns how many.
    async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError>;
}

/// Authorization requests pending sign-in.
#[async_trait]
pub trait AuthorizationRequestStore: Send + Sync + 'static {
    /// Stores a pending request.
    async fn insert_authorization_request(
        &self,
        request: &AuthorizationRequestRecord,
    ) -> Result<(), StorageError>;

    /// The live pending request with this hash (for rendering the sign-in page).
    async fn get_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError>;

    /// Atomically removes and returns the live pending request: of concurrent calls, at most one
    /// returns `Some`, so one sign-in yields at most one code.
    async fn take_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError>;

    /// Deletes requests that expired before `now`; returns how many.
    async fn purge_expired_authorization_requests(&self, now: i64) -> Result<u64, StorageError>;
}

/// Access and refresh tokens, grouped in grants.
///
/// A grant is everything descended from one authorization: the tokens of a code exchange and
/// all their rotations. Revoking a grant kills all of it, and is linearizable with issuing and
/// rotating: once [`revoke_grant`](TokenStore::revoke_grant) returns, no token of the grant is
/// usable, including one a concurrent rotation was creating, and the grant cannot receive new
/// tokens until `keep_until`.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores the tokens of a new issuance (code exchange, assertion, client credentials) in one
    /// step. Returns `false` and stores nothing when the grant was revoked — e.g. its code was
    /// replayed while this exchange was in flight.
    async fn issue_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError>;

    /// The live access token with this hash, or `None` once expired (at `now`) or revoked.
    /// One backend round trip: this is on every protected request.
    async fn get_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StorageError>;

    /// What [`get_access_token`](Self::get_access_token) would answer, when the store can say
    /// it without waiting: a store held in this process's memory answers here, in the shared
    /// form it keeps ([`SharedAccessTokenRecord`]), while a store behind a socket returns
    /// `None` (the default) and is asked asynchronously.
    ///
    /// This exists for the bearer layer's sake: a request whose token is answered here is
    /// authenticated without suspending it or allocating a future for the lookup (see
    /// [`TokenVerifier::verify_token_now`](crate::TokenVerifier::verify_token_now)). When it
    /// answers, it must answer exactly as `get_access_token` would.
    fn get_access_token_now(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Option<Result<Option<SharedAccessTokenRecord>, StorageError>> {
        let _ = (token_hash, now);
        None
    }

    /// The refresh token with this hash: active, or already rotated (kept as a marker until its
    /// expiry so reuse can be detected). `None` once expired or revoked.
    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RefreshLookup>, StorageError>;

    /// Atomically rotates a refresh token: marks `old_hash` rotated, deletes the grant's
    /// earlier access tokens, and stores the new access token and, unless the grant is at the
    /// end of its lifetime (`refresh` is `None`), the new refresh token — all or nothing. **Of concurrent
    /// rotations of one token, at most one returns [`Rotation::Rotated`]**; the others see
    /// [`Rotation::Reused`].
    async fn rotate_refresh_token(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> Result<Rotation, StorageError>;

    /// When the refresh token `token_hash` was rotated, and a record of its grant (scopes,
    /// subject, resource, claims, start) to mint from: what presenting a just-rotated token
    /// again within the provider's reuse interval needs. `None` when the token is unknown,
    /// expired at `now` or not rotated. A rotation records its `now` as the time.
    async fn refresh_token_rotation(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<(i64, RefreshTokenRecord)>, StorageError>;

    /// Revokes a grant: deletes every access and refresh token carrying `grant_id` and refuses
    /// new tokens for it until `keep_until`. Revoking an unknown grant is not an error.
    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError>;

    /// Deletes tokens, rotation markers and revocation markers that expired before `now`;
    /// returns how many records went.
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError>;
}

/// Replay protection for signed assertions (ID-JAGs, client assertions): remembers each
/// `(issuer, jti)` until the assertion expires. The provider passes the SHA-256 (hex) of the
/// assertion's `jti`, never the `jti` itself, and an `expires_at` after `now` by at most
/// [`MAX_REPLAY_WINDOW`](crate::limits::MAX_REPLAY_WINDOW).
#[async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `(issuer, jti)` until `expires_at` if it is not already recorded — insert if
    /// absent, atomically. Returns `true` for the first use, `false` for a replay. An entry is
    /// kept at least until `expires_at` by the clock that expires it; once that has passed it
    /// counts as absent — at `now` for a store that keeps time by the caller's clock, by its own
    /// clock for a store that expires entries itself (Redis) — and at the latest once
    /// [`purge_expired_assertion_ids`](Self::purge_expired_assertion_ids) has run at a later
    /// `now`. A store may clamp `expires_at` into `now + 1 ..= now + MAX_REPLAY_WINDOW`.
    async fn record_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError>;

    /// Deletes entries that expired before `now`; returns how many.
    async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError>;
}

/// Everything a deployment stores. Implemented for every type that implements the eight
/// concerns, including `Arc<dyn Storage>`.
pub trait Storage:
    ClientStore
    + AuthorizationRequestStore
    + CodeStore
    + TokenStore
    + ReplayStore
    + SigningKeyStore
    + AdminStore
    + UpstreamTokenStore
{
}

impl<T> Storage for T where
    T: ClientStore
        + AuthorizationRequestStore
        + CodeStore
        + TokenStore
        + ReplayStore
        + SigningKeyStore
        + AdminStore
        + UpstreamTokenStore
        + ?Sized
{
}

#[async_trait]
impl<T: AuthorizationRequestStore + ?Sized> AuthorizationRequestStore for Arc<T> {
    async fn insert_authorization_request(
        &self,
        request: &AuthorizationRequestRecord,
    ) -> Result<(), StorageError> {
        (**self).insert_authorization_request(request).await
    }
    async fn get_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        (**self).get_authorization_request(request_hash, now).await
    }
    async fn take_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        (**self).take_authorization_request(request_hash, now).await
    }
    async fn purge_expired_authorization_requests(&self, now: i64) -> Result<u64, StorageError> {
        (**self).purge_expired_authorization_requests(now).await
    }
}

#[async_trait]
impl<T: ClientStore + ?Sized> ClientStore for Arc<T> {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        (**self).insert_client(client).await
    }
    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        (**self).upsert_client(client).await
    }
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        (**self).get_client(client_id).await
    }
    async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        (**self).delete_client(client_id).await
    }
}

#[async_trait]
impl<T: CodeStore + ?Sized> CodeStore for Arc<T> {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError> {
        (**self).insert_code(code).await
    }
    async fn get_code(
        &self,
        code_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<CodeRecord>, StorageError> {
        (**self).get_code(code_hash, now).await
    }
    async fn take_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeTake, StorageError> {
        (**self).take_code(code_hash, now).await
    }
    async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError> {
        (**self).purge_expired_codes(now).await
    }
}

#[async_trait]
impl<T: TokenStore + ?Sized> TokenStore for Arc<T> {
    async fn issue_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError> {
        (**self).issue_tokens(access, refresh).await
    }
    async fn get_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StorageError> {
        (**self).get_access_token(token_hash, now).await
    }
    fn get_access_token_now(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Option<Result<Option<SharedAccessTokenRecord>, StorageError>> {
        (**self).get_access_token_now(token_hash, now)
    }
    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RefreshLookup>, StorageError> {
        (**self).get_refresh_token(token_hash, now).await
    }
    async fn rotate_refresh_token(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> Result<Rotation, StorageError> {
        (**self)
            .rotate_refresh_token(old_hash, access, refresh, now)
            .await
    }
    async fn refresh_token_rotation(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<(i64, RefreshTokenRecord)>, StorageError> {
        (**self).refresh_token_rotation(token_hash, now).await
    }
    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        (**self).revoke_grant(grant_id, keep_until).await
    }
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError> {
        (**self).purge_expired_tokens(now).await
    }
}

#[async_trait]
impl<T: ReplayStore + ?Sized> ReplayStore for Arc<T> {
    async fn record_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        (**self)
            .record_assertion_id(issuer, jti, expires_at, now)
            .await
    }
    async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError> {
        (**self).purge_expired_assertion_ids(now).await
    }
}
