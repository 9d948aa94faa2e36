//! [`StoreProvider`]: a complete authorization-server provider over any [`Storage`].

mod admin;
mod assertion_grants;
mod builder;
mod client_cache;
mod mint;
mod refresh_reuse;
mod sign_in;
#[cfg(test)]
mod tests;
mod token_cache;
mod unknown_token_cache;
#[cfg(test)]
mod unknown_token_tests;
mod upstream_tokens;
#[cfg(test)]
mod upstream_tokens_tests;

use std::sync::Arc;

use async_trait::async_trait;
use mcp_auth_types::{
    AccessToken, AccessTokenSecret, Assertion, AuthorizationCode, AuthorizationCodeSecret,
    AuthorizationParams, ClientSecret, GrantType, IdentityAssertionParams, IssuerUrl,
    OAuthClientInformationFull, OAuthToken, RefreshToken, RefreshTokenSecret, TokenErrorCode,
    construct_redirect_uri, validate_issuer_url,
};

use self::assertion_grants::Collaborators;
pub use self::builder::StoreProviderBuilder;
use self::client_cache::ClientCache;
use self::mint::{GrantShape, audit_issued};
use self::refresh_reuse::loaded_refresh_token;
pub use self::sign_in::PendingAuthorization;
use self::token_cache::AccessTokenCache;
use self::unknown_token_cache::UnknownTokenCache;
pub use self::upstream_tokens::DEFAULT_UPSTREAM_TOKEN_LIFETIME;
use crate::access_token_signer::AccessTokenSigner;
use crate::assertion::{ClientAssertionError, ClientAssertionVerifier, IdentityAssertionValidator};
use crate::audit;
use crate::capabilities::Capabilities;
use crate::client_metadata::{
    ClientMetadataError, ClientMetadataResolver, is_metadata_document_client_id,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{
    AuthorizeError, ConfigError, ErrorChain, ProviderError, RegistrationError, StorageError,
    TokenError,
};
use crate::provider::{OAuthAuthorizationServerProvider, RevocableToken};
use crate::secrets::{SecretHash, random_secret};
use crate::settings::ClientRegistrationOptions;
use crate::storage::{
    AuthorizationRequestRecord, ClientRecord, CodeTake, RefreshLookup, RefreshTokenRecord,
    Rotation, SharedAccessTokenRecord, Storage,
};

/// Longest authorization-code lifetime allowed: RFC 6749 §4.1.2 recommends at most 10 minutes.
pub const MAX_CODE_TTL: u64 = 600;

/// Longest refresh-token reuse interval allowed: a rotated token that works for longer is a
/// token that works twice for anyone who stole it.
pub const MAX_REFRESH_REUSE_INTERVAL: u64 = 300;

/// Longest access-token cache lifetime allowed: the cache trades revocation lag across
/// instances for speed, and five minutes is already a long lag.
pub const MAX_ACCESS_TOKEN_CACHE_TTL: u64 = 300;

/// Lifetimes and endpoints of a [`StoreProvider`].
#[derive(Debug, Clone)]
struct Config {
    issuer: IssuerUrl,
    sign_in_url: String,
    authorization_request_ttl: u64,
    code_ttl: u64,
    access_token_ttl: u64,
    refresh_token_ttl: Option<u64>,
    grant_lifetime: Option<u64>,
    refresh_reuse_interval: u64,
    valid_scopes: Option<Vec<String>>,
    client_scope_rules: Option<ClientRegistrationOptions>,
}

/// A complete [`OAuthAuthorizationServerProvider`] over a storage backend.
///
/// - Codes and tokens are 256-bit random values, stored only as SHA-256 hashes.
/// - Codes are single-use even under concurrent redemption; a code presented again revokes
///   every token issued from it (RFC 6749 §4.1.2).
/// - Refresh tokens rotate on every use; presenting a rotated one revokes the whole grant
///   (RFC 9700 §4.14.2). An optional absolute grant lifetime caps how long rotation can go on.
/// - Revoking either token of a pair revokes the whole grant.
/// - Access-token lookup is one storage round trip, or, with
///   [`access_token_cache_ttl`](StoreProviderBuilder::access_token_cache_ttl), a cache hit
///   that this provider's own revocations invalidate at once. A token storage did not find
///   is remembered as unknown for a few seconds
///   ([`unknown_token_cache_ttl`](StoreProviderBuilder::unknown_token_cache_ttl)), so the
///   same made-up or dead token presented again costs no storage read; issuance forgets it.
/// - With an [`IdentityAssertionValidator`], the SEP-990 jwt-bearer grant; with a
///   [`ClientAssertionVerifier`], `private_key_jwt` client authentication; and the client
///   credentials grant (see [`exchange_identity_assertion`](OAuthAuthorizationServerProvider::exchange_identity_assertion)
///   and [`exchange_client_credentials`](OAuthAuthorizationServerProvider::exchange_client_credentials)).
///
/// How the user signs in is up to the application: [`authorize`](OAuthAuthorizationServerProvider::authorize)
/// stores the validated request and returns the configured sign-in URL with a `request_id`
/// parameter. The sign-in page reads the request with
/// [`pending_authorization`](Self::pending_authorization), authenticates the user, and finishes
/// with [`complete_authorization`](Self::complete_authorization) (which issues the code) or
/// [`deny_authorization`](Self::deny_authorization). Both return the URL to redirect the user
/// agent to, carrying `state` and `iss` (RFC 9207).
///
/// The code is consumed when it is *loaded*, before the handler checks PKCE and the redirect
/// URI: a code presented with a wrong verifier is burnt, which stops verifier guessing and is
/// what RFC 6749 §10.5 asks of single-use codes.
pub struct StoreProvider<S> {
    storage: S,
    clock: Arc<dyn Clock>,
    config: Config,
    clients: ClientCache,
    /// `None` unless enabled: see [`StoreProviderBuilder::access_token_cache_ttl`].
    access_tokens: Option<AccessTokenCache>,
    /// `None` when disabled: see [`StoreProviderBuilder::unknown_token_cache_ttl`].
    unknown_tokens: Option<UnknownTokenCache>,
    /// Derived from the collaborators and the client-credentials switch when built.
    capabilities: Capabilities,
    collaborators: Collaborators,
}

impl<S> std::fmt::Debug for StoreProvider<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An authorization code as this provider loads it: the standard record plus its grant.
#[derive(Debug, Clone)]
pub struct StoredAuthorizationCode {
    code: AuthorizationCode,
    grant_id: String,
}

impl AsRef<AuthorizationCode> for StoredAuthorizationCode {
    fn as_ref(&self) -> &AuthorizationCode {
        &self.code
    }
}

/// A refresh token as this provider loads it.
#[derive(Debug, Clone)]
pub struct StoredRefreshToken {
    token: RefreshToken,
    record: RefreshTokenRecord,
    /// Rotated moments ago (within the reuse interval): exchanged for a further pair of its
    /// grant instead of rotated again.
    reissue: bool,
}

impl AsRef<RefreshToken> for StoredRefreshToken {
    fn as_ref(&self) -> &RefreshToken {
        &self.token
    }
}

/// An access token as this provider loads it.
#[derive(Debug, Clone)]
pub struct StoredAccessToken {
    token: AccessToken,
    grant_id: Arc<str>,
}

impl StoredAccessToken {
    /// The grant the token belongs to.
    pub fn grant_id(&self) -> &str {
        &self.grant_id
    }
}

impl AsRef<AccessToken> for StoredAccessToken {
    fn as_ref(&self) -> &AccessToken {
        &self.token
    }
}

impl From<StoredAccessToken> for AccessToken {
    fn from(stored: StoredAccessToken) -> Self {
        stored.token
    }
}

/// How many expired records a purge removed, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Pending authorization requests.
    pub authorization_requests: u64,
    /// Codes and redemption markers.
    pub codes: u64,
    /// Tokens and markers.
    pub tokens: u64,
    /// Assertion ids.
    pub assertion_ids: u64,
    /// Upstream-token records past their grant's end.
    pub upstream_tokens: u64,
}

impl<S: Storage> StoreProvider<S> {
    /// The storage backend.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The issuer this provider stamps on redirects and tokens.
    pub fn issuer(&self) -> &IssuerUrl {
        &self.config.issuer
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Registers or replaces a client out of band (pre-registered clients from configuration).
    /// Its raw secret, if any, is stored only as a hash.
    pub async fn preregister_client(
        &self,
        client: OAuthClientInformationFull,
    ) -> Result<(), ProviderError> {
        self.storage
            .upsert_client(&ClientRecord::new(client))
            .await
            .map_err(ProviderError::from)?;
        Ok(())
    }

    /// Deletes expired records from every store. Call it periodically (every few minutes) on
    /// backends without native expiry; Redis expires keys by itself.
    pub async fn purge_expired(&self) -> Result<PurgeReport, ProviderError> {
        let now = self.now();
        Ok(PurgeReport {
            authorization_requests: self
                .storage
                .purge_expired_authorization_requests(now)
                .await?,
            codes: self.storage.purge_expired_codes(now).await?,
            tokens: self.storage.purge_expired_tokens(now).await?,
            assertion_ids: self.storage.purge_expired_assertion_ids(now).await?,
            upstream_tokens: self.storage.purge_expired_upstream_tokens(now).await?,
        })
    }

    /// How long a revoked grant must stay marked: as long as any of its credentials could still
    /// be presented.
    fn revocation_horizon(&self) -> i64 {
        let longest = [
            self.config.code_ttl,
            self.config.access_token_ttl,
            self.config.refresh_token_ttl.unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        self.now() + secs(longest)
    }

    /// The one way this provider revokes a grant (a token revoked at `/revoke`, a replayed
    /// code or rotated refresh token, an administrator's revocation): its tokens go, its
    /// cached access tokens are forgotten, and so are the upstream tokens kept for it, which
    /// must not outlive the grant they were handed over for.
    async fn revoke_grant(&self, grant_id: &str) -> Result<(), ProviderError> {
        self.storage
            .revoke_grant(grant_id, self.revocation_horizon())
            .await?;
        self.forget_grant_access_tokens(grant_id);
        self.storage.delete_upstream_tokens(grant_id).await?;
        Ok(())
    }

    /// The live access token of `hash`, when the caches or an in-memory store can say it
    /// without waiting; `None` when only a storage round trip can tell. A token read from the
    /// store here is cached like one read asynchronously. The unknown-token cache is asked only
    /// when the store cannot answer at once: a store in memory answers misses as cheaply.
    fn access_token_record_now(
        &self,
        hash: &SecretHash,
        now: i64,
    ) -> Option<Result<Option<SharedAccessTokenRecord>, StorageError>> {
        let Some(cache) = &self.access_tokens else {
            return self
                .storage
                .get_access_token_now(hash, now)
                .or_else(|| self.known_unknown(hash, now));
        };
        if let Some(record) = cache.get(hash, now) {
            return Some(Ok(Some(record)));
        }
        let ticket = cache.ticket(now);
        let Some(found) = self.storage.get_access_token_now(hash, now) else {
            return self.known_unknown(hash, now);
        };
        if let Ok(Some(record)) = &found {
            cache.put(ticket, hash, record);
        }
        Some(found)
    }

    /// Drops the cached access tokens of a grant whose tokens storage has just revoked or
    /// replaced. Every storage call that kills access tokens must be followed by this.
    fn forget_grant_access_tokens(&self, grant_id: &str) {
        if let Some(cache) = &self.access_tokens {
            cache.revoke_grant(grant_id, self.now());
        }
    }
}

/// The provider's access token for `record`, presented as `token`: the token's information
/// is shared with the store or cache, not copied.
fn loaded_access_token(
    token: &AccessTokenSecret,
    record: SharedAccessTokenRecord,
) -> StoredAccessToken {
    let (grant_id, info) = record.into_shared();
    StoredAccessToken {
        token: AccessToken::with_info(token.clone(), info),
        grant_id,
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX / 4)
}

fn invalid_grant() -> TokenError {
    TokenError::new(
        TokenErrorCode::InvalidGrant,
        "the grant is invalid, expired or revoked",
    )
}

#[async_trait]
impl<S: Storage> OAuthAuthorizationServerProvider for StoreProvider<S> {
    type AuthorizationCode = StoredAuthorizationCode;
    type RefreshToken = StoredRefreshToken;
    type AccessToken = StoredAccessToken;

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    fn access_token_key_set(&self) -> Option<Arc<str>> {
        self.collaborators
            .access_token_signer
            .as_ref()
            .map(|signer| signer.key_set())
    }

    async fn get_client(
        &self,
        client_id: &str,
    ) -> Result<Option<OAuthClientInformationFull>, ProviderError> {
        if is_metadata_document_client_id(client_id) {
            return self.metadata_document_client(client_id).await;
        }
        Ok(self
            .client_record(client_id)
            .await?
            .map(|record| record.info))
    }

    async fn register_client(
        &self,
        client_info: OAuthClientInformationFull,
    ) -> Result<(), RegistrationError> {
        let record = ClientRecord::new(client_info);
        self.storage.insert_client(&record).await?;
        crate::audit_event!(
            audit::CLIENT_REGISTERED,
            client_id = %record.info.client_id,
            token_endpoint_auth_method = ?record.info.metadata.token_endpoint_auth_method,
        );
        Ok(())
    }

    async fn authenticate_client_secret(
        &self,
        client: &OAuthClientInformationFull,
        secret: &ClientSecret,
    ) -> Result<bool, ProviderError> {
        let record = self.client_record(&client.client_id).await?;
        Ok(record
            .and_then(|record| record.secret_hash)
            .is_some_and(|hash| hash.verify(secret.expose_secret())))
    }

    async fn authorize(
        &self,
        client: &OAuthClientInformationFull,
        params: AuthorizationParams,
    ) -> Result<String, AuthorizeError> {
        let request_id = random_secret();
        let record = AuthorizationRequestRecord {
            request_hash: SecretHash::of(&request_id),
            client_id: client.client_id.clone(),
            params,
            expires_at: self.now() + secs(self.config.authorization_request_ttl),
        };
        self.storage.insert_authorization_request(&record).await?;
        Ok(construct_redirect_uri(
            &self.config.sign_in_url,
            &[("request_id", Some(&request_id))],
        ))
    }

    async fn load_authorization_code(
        &self,
        client: &OAuthClientInformationFull,
        code: &AuthorizationCodeSecret,
    ) -> Result<Option<StoredAuthorizationCode>, ProviderError> {
        let hash = SecretHash::of(code.expose_secret());
        match self.storage.take_code(&hash, self.now()).await? {
            CodeTake::Taken(record) if record.client_id == client.client_id => {
                let mut loaded = AuthorizationCode::new(
                    code.clone(),
                    record.client_id,
                    record.scopes,
                    record.expires_at,
                    record.code_challenge,
                    record.redirect_uri,
                    record.redirect_uri_provided_explicitly,
                );
                loaded.resource = record.resource;
                loaded.subject = record.subject;
                Ok(Some(StoredAuthorizationCode {
                    code: loaded,
                    grant_id: record.grant_id,
                }))
            }
            // Presented by another client: the code is burnt and answers as unknown.
            CodeTake::Taken(_) | CodeTake::Missing => Ok(None),
            CodeTake::AlreadyRedeemed { grant_id } => {
                crate::audit_event!(
                    warn: audit::CODE_REPLAYED,
                    client_id = %client.client_id,
                    grant_id,
                    "authorization code presented twice; revoking its grant"
                );
                self.revoke_grant(&grant_id).await?;
                Ok(None)
            }
        }
    }

    async fn exchange_authorization_code(
        &self,
        client: &OAuthClientInformationFull,
        code: StoredAuthorizationCode,
    ) -> Result<OAuthToken, TokenError> {
        let shape = GrantShape {
            grant_id: &code.grant_id,
            scopes: &code.code.scopes,
            resource: code.code.resource.clone(),
            subject: code.code.subject.clone(),
            claims: self.own_claims(),
            issued_at: self.now(),
        };
        let (access, refresh, response) = self.mint(client, &shape, &code.code.scopes, true)?;
        if self.store_new_tokens(&access, refresh.as_ref()).await? {
            crate::audit_event!(
                audit::CODE_REDEEMED,
                client_id = %client.client_id,
                grant_id = %code.grant_id,
            );
            audit_issued(&access, "authorization_code", refresh.is_some());
            Ok(response)
        } else {
            Err(invalid_grant())
        }
    }

    async fn load_refresh_token(
        &self,
        client: &OAuthClientInformationFull,
        token: &RefreshTokenSecret,
    ) -> Result<Option<StoredRefreshToken>, ProviderError> {
        let hash = SecretHash::of(token.expose_secret());
        match self.storage.get_refresh_token(&hash, self.now()).await? {
            Some(RefreshLookup::Active(record)) if record.client_id == client.client_id => {
                Ok(Some(loaded_refresh_token(token, record, false)))
            }
            Some(RefreshLookup::Active(_)) | None => Ok(None),
            Some(RefreshLookup::Rotated { grant_id }) => {
                if let Some(record) = self.recently_rotated(&hash, client).await? {
                    return Ok(Some(loaded_refresh_token(token, record, true)));
                }
                crate::audit_event!(
                    warn: audit::REFRESH_REUSE_DETECTED,
                    client_id = %client.client_id,
                    grant_id,
                    "rotated refresh token presented again; revoking its grant"
                );
                self.revoke_grant(&grant_id).await?;
                Ok(None)
            }
        }
    }

    async fn exchange_refresh_token(
        &self,
        client: &OAuthClientInformationFull,
        token: StoredRefreshToken,
        scopes: Vec<String>,
    ) -> Result<OAuthToken, TokenError> {
        let old = &token.record;
        let shape = GrantShape {
            grant_id: &old.grant_id,
            // RFC 6749 §6: a new refresh token keeps the scope of the one it replaces, however
            // the access token was narrowed.
            scopes: &old.scopes,
            resource: old.resource.clone(),
            subject: old.subject.clone(),
            claims: old.claims.clone().unwrap_or_default(),
            issued_at: old.grant_issued_at,
        };
        // A grant past its absolute lifetime gets nothing, not a token that is born expired
        // (tokens issued before the lifetime was set are not capped by it yet).
        if let Some(lifetime) = self.config.grant_lifetime
            && old.grant_issued_at.saturating_add(secs(lifetime)) <= self.now()
        {
            return Err(invalid_grant());
        }
        let (access, refresh, response) = self.mint(client, &shape, &scopes, true)?;
        if token.reissue {
            return self
                .reissue(client, &access, refresh.as_ref(), response)
                .await;
        }
        let rotation = self
            .storage
            .rotate_refresh_token(&old.token_hash, &access, refresh.as_ref(), self.now())
            .await;
        // A rotation stores a new access token: an issuance like any other.
        self.forget_unknown(&access.token_hash);
        match rotation? {
            Rotation::Rotated => {
                // Rotation deleted the grant's earlier access tokens.
                self.forget_grant_access_tokens(&old.grant_id);
                crate::audit_event!(
                    audit::TOKEN_REFRESHED,
                    client_id = %client.client_id,
                    subject = access.subject.as_deref().unwrap_or(""),
                    grant_id = %old.grant_id,
                    scope = %access.scopes.join(" "),
                );
                Ok(response)
            }
            Rotation::Reused { grant_id } => {
                // A concurrent refresh of the same token won the rotation moments ago.
                if self
                    .recently_rotated(&old.token_hash, client)
                    .await?
                    .is_some()
                {
                    return self
                        .reissue(client, &access, refresh.as_ref(), response)
                        .await;
                }
                crate::audit_event!(
                    warn: audit::REFRESH_REUSE_DETECTED,
                    client_id = %client.client_id,
                    grant_id,
                    "concurrent refresh of one token; revoking its grant"
                );
                self.revoke_grant(&grant_id).await?;
                Err(invalid_grant())
            }
            Rotation::Missing => Err(invalid_grant()),
        }
    }

    async fn load_access_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<StoredAccessToken>, ProviderError> {
        let hash = SecretHash::of(token.expose_secret());
        let now = self.now();
        if let Some(found) = self.access_token_record_now(&hash, now) {
            return Ok(found?.map(|record| loaded_access_token(token, record)));
        }
        // Neither the caches nor the store could answer at once: one storage round trip. The
        // tickets are taken before the read (see `token_cache`, `unknown_token_cache`).
        let ticket = self.access_tokens.as_ref().map(|cache| cache.ticket(now));
        let miss_ticket = self.unknown_tokens.as_ref().map(|cache| cache.ticket(now));
        let found = self
            .storage
            .get_access_token(&hash, now)
            .await?
            .map(SharedAccessTokenRecord::from);
        match (&found, &self.access_tokens, ticket) {
            (Some(record), Some(cache), Some(ticket)) => cache.put(ticket, &hash, record),
            (Some(_), _, _) => {}
            (None, _, _) => {
                if let (Some(unknown), Some(ticket)) = (&self.unknown_tokens, miss_ticket) {
                    unknown.miss(ticket, &hash);
                }
            }
        }
        Ok(found.map(|record| loaded_access_token(token, record)))
    }

    fn load_access_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<StoredAccessToken>, ProviderError>> {
        let hash = SecretHash::of(token.expose_secret());
        let found = self.access_token_record_now(&hash, self.now())?;
        Some(
            found
                .map(|found| found.map(|record| loaded_access_token(token, record)))
                .map_err(ProviderError::from),
        )
    }

    async fn revoke_token(
        &self,
        token: RevocableToken<StoredAccessToken, StoredRefreshToken>,
    ) -> Result<(), ProviderError> {
        let (grant_id, client_id, kind) = match &token {
            RevocableToken::Access(access) => (
                access.grant_id(),
                access.token.client_id.as_str(),
                "access_token",
            ),
            RevocableToken::Refresh(refresh) => (
                refresh.record.grant_id.as_str(),
                refresh.record.client_id.as_str(),
                "refresh_token",
            ),
        };
        self.revoke_grant(grant_id).await?;
        crate::audit_event!(audit::TOKEN_REVOKED, client_id, grant_id, token_type = kind);
        Ok(())
    }

    async fn exchange_identity_assertion(
        &self,
        client: &OAuthClientInformationFull,
        params: IdentityAssertionParams,
    ) -> Result<OAuthToken, TokenError> {
        self.identity_assertion_exchange(client, params).await
    }

    async fn exchange_client_credentials(
        &self,
        client: &OAuthClientInformationFull,
        scopes: Option<Vec<String>>,
        resource: Option<String>,
    ) -> Result<OAuthToken, TokenError> {
        // The token endpoint dispatches only supported grants; a direct caller is held to the
        // same statement.
        if !self
            .capabilities
            .supports_grant(&GrantType::ClientCredentials)
        {
            return Err(TokenError::new(
                TokenErrorCode::UnsupportedGrantType,
                "the client_credentials grant is not enabled",
            ));
        }
        self.client_credentials_exchange(client, scopes, resource)
            .await
    }

    async fn authenticate_client_assertion(
        &self,
        client: &OAuthClientInformationFull,
        assertion: &Assertion,
        audiences: &[String],
    ) -> Result<(), ClientAssertionError> {
        self.client_assertion_authentication(client, assertion, audiences)
            .await
    }
}

impl<S: Storage> StoreProvider<S> {
    /// A client named by an https URL: resolved through the metadata-document resolver, never
    /// read from storage (this server's own ids never start with `https://`). A refusal reads
    /// as an unknown client; its reason goes to the log, not to the client. A resolver that
    /// cannot try now is a provider outage (`temporarily_unavailable`).
    async fn metadata_document_client(
        &self,
        client_id: &str,
    ) -> Result<Option<OAuthClientInformationFull>, ProviderError> {
        let Some(resolver) = self.collaborators.client_metadata.as_ref() else {
            return Ok(None);
        };
        Ok(match resolver.resolve(client_id).await {
            Ok(mut client) if client.client_id == client_id => {
                if let Some(rules) = &self.config.client_scope_rules {
                    client.metadata.scope = rules.client_scope(client.metadata.scope.as_deref());
                }
                Some(client)
            }
            Ok(_) => {
                tracing::warn!(
                    client_id,
                    "client metadata resolver returned another client_id"
                );
                None
            }
            Err(ClientMetadataError::Unavailable(source)) => {
                return Err(ProviderError::unavailable(source));
            }
            Err(error) => {
                tracing::warn!(client_id, error = %ErrorChain(&error), "client metadata document refused");
                None
            }
        })
    }

    async fn client_record(&self, client_id: &str) -> Result<Option<ClientRecord>, ProviderError> {
        let now = self.now();
        if let Some(record) = self.clients.get(client_id, now) {
            return Ok(Some(record));
        }
        let record = self.storage.get_client(client_id).await?;
        if let Some(record) = &record {
            self.clients.put(record.clone(), now);
        }
        Ok(record)
    }
}
