//! [`StoreProviderBuilder`]: validated configuration of a [`StoreProvider`].

use super::*;

/// Builder for [`StoreProvider`].
#[derive(Debug)]
#[must_use]
pub struct StoreProviderBuilder<S> {
    storage: S,
    issuer: String,
    sign_in_url: Option<String>,
    clock: Arc<dyn Clock>,
    authorization_request_ttl: u64,
    code_ttl: u64,
    access_token_ttl: u64,
    refresh_token_ttl: Option<u64>,
    grant_lifetime: Option<u64>,
    refresh_reuse_interval: u64,
    client_cache_ttl: u64,
    access_token_cache_ttl: u64,
    access_token_cache_capacity: usize,
    unknown_token_cache_ttl: u64,
    valid_scopes: Option<Vec<String>>,
    client_scope_rules: Option<ClientRegistrationOptions>,
    client_credentials: bool,
    collaborators: Collaborators,
}

impl<S: Storage> StoreProvider<S> {
    /// Starts building a provider over `storage` for the authorization server `issuer`.
    ///
    /// Defaults: sign-in at `<issuer>/sign-in`, pending requests 10 minutes, codes 5 minutes,
    /// access tokens 1 hour, refresh tokens 30 days, no absolute grant lifetime, no
    /// access-token cache, unknown tokens remembered for
    /// [`UNKNOWN_TOKEN_CACHE_TTL`](crate::limits::UNKNOWN_TOKEN_CACHE_TTL) seconds.
    pub fn builder(storage: S, issuer: impl Into<String>) -> StoreProviderBuilder<S> {
        StoreProviderBuilder {
            storage,
            issuer: issuer.into(),
            sign_in_url: None,
            clock: Arc::new(SystemClock),
            authorization_request_ttl: 600,
            code_ttl: 300,
            access_token_ttl: 3600,
            refresh_token_ttl: Some(30 * 24 * 3600),
            grant_lifetime: None,
            refresh_reuse_interval: 0,
            client_cache_ttl: 5,
            access_token_cache_ttl: 0,
            access_token_cache_capacity: 10_000,
            unknown_token_cache_ttl: crate::limits::UNKNOWN_TOKEN_CACHE_TTL,
            valid_scopes: None,
            client_scope_rules: None,
            client_credentials: false,
            collaborators: Collaborators::default(),
        }
    }
}

impl<S: Storage> StoreProviderBuilder<S> {
    /// Where `authorize` sends the user agent (`request_id` is appended).
    pub fn sign_in_url(mut self, url: impl Into<String>) -> Self {
        self.sign_in_url = Some(url.into());
        self
    }

    /// The time source.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long a user has to sign in, in seconds.
    pub fn authorization_request_ttl(mut self, seconds: u64) -> Self {
        self.authorization_request_ttl = seconds;
        self
    }

    /// Authorization-code lifetime in seconds (1 to 600).
    pub fn code_ttl(mut self, seconds: u64) -> Self {
        self.code_ttl = seconds;
        self
    }

    /// Access-token lifetime in seconds.
    pub fn access_token_ttl(mut self, seconds: u64) -> Self {
        self.access_token_ttl = seconds;
        self
    }

    /// Refresh-token lifetime in seconds; `None` issues no refresh tokens.
    pub fn refresh_token_ttl(mut self, seconds: Option<u64>) -> Self {
        self.refresh_token_ttl = seconds;
        self
    }

    /// Absolute lifetime of a grant in seconds: no token of the grant outlives it, however
    /// often it is refreshed.
    pub fn grant_lifetime(mut self, seconds: Option<u64>) -> Self {
        self.grant_lifetime = seconds;
        self
    }

    /// Seconds after a rotation during which the refresh token just rotated still works once
    /// more per presentation: it gets a further pair of the same grant instead of revoking
    /// it (default 0: strict reuse detection, RFC 9700 §4.14.2; at most
    /// [`MAX_REFRESH_REUSE_INTERVAL`]). For clients that refresh from two processes at once,
    /// or lose a response: each caller ends up with working tokens. After the interval,
    /// presenting it revokes the grant as before.
    pub fn refresh_reuse_interval(mut self, seconds: u64) -> Self {
        self.refresh_reuse_interval = seconds;
        self
    }

    /// How long client records are cached in process, in seconds (0 disables the cache). New
    /// clients are always visible at once; a deleted or changed client may be served from the
    /// cache for this long. The cache holds at most
    /// [`MAX_CLIENT_CACHE_BYTES`](crate::limits::MAX_CLIENT_CACHE_BYTES) of records
    /// (each weighed by its serialised size) and
    /// [`MAX_CLIENT_CACHE_ENTRIES`](crate::limits::MAX_CLIENT_CACHE_ENTRIES) of them.
    pub fn client_cache_ttl(mut self, seconds: u64) -> Self {
        self.client_cache_ttl = seconds;
        self
    }

    /// Caches confirmed access-token lookups in process for `seconds` (0, the default, disables
    /// the cache; at most [`MAX_ACCESS_TOKEN_CACHE_TTL`]).
    ///
    /// Worth it when storage is a round trip away (SQL, Redis): a protected request then costs
    /// a hash and a map read instead. Revocations made through this provider — RFC 7009
    /// revocation, refresh-token reuse, code replay, rotation — take effect at once. Revocations
    /// made by *another* instance sharing the store are seen by this one only after the entry's
    /// `seconds` have passed: with several instances, keep it to a few seconds. A token's own
    /// expiry is always honoured.
    pub fn access_token_cache_ttl(mut self, seconds: u64) -> Self {
        self.access_token_cache_ttl = seconds;
        self
    }

    /// Access tokens the cache holds at most (default 10 000); the least useful are evicted.
    pub fn access_token_cache_capacity(mut self, tokens: usize) -> Self {
        self.access_token_cache_capacity = tokens;
        self
    }

    /// How long a presented access token that storage does not hold is remembered as unknown,
    /// in seconds (default [`UNKNOWN_TOKEN_CACHE_TTL`](crate::limits::UNKNOWN_TOKEN_CACHE_TTL);
    /// 0 disables it; at most [`MAX_ACCESS_TOKEN_CACHE_TTL`]). The same unknown token presented
    /// again within that time is refused without a storage read, and without suspending the
    /// request. At most [`UNKNOWN_TOKEN_CACHE_ENTRIES`](crate::limits::UNKNOWN_TOKEN_CACHE_ENTRIES)
    /// hashes are kept.
    ///
    /// It never makes a real token fail: issuing a token through this provider forgets its hash
    /// before the token is returned, and a token issued by another instance cannot have been
    /// presented here before it existed, short of guessing 256 random bits. A store that
    /// answers lookups from memory ([`MemoryStore`](crate::MemoryStore)) is never consulted
    /// through it, so it only ever holds misses of stores behind a round trip.
    pub fn unknown_token_cache_ttl(mut self, seconds: u64) -> Self {
        self.unknown_token_cache_ttl = seconds;
        self
    }

    /// Scopes this server grants at all; tokens of the jwt-bearer and client credentials grants
    /// never carry others. `None` (the default) leaves the client's registered scopes as the
    /// only limit. Set it to the registration options' `valid_scopes`.
    pub fn valid_scopes<I: IntoIterator<Item = T>, T: Into<String>>(mut self, scopes: I) -> Self {
        self.valid_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The registration rules for scopes, for clients that do not register through
    /// `/register` (give the same options as the authorization server's settings): a Client ID
    /// Metadata Document's `scope` is settled as a registration's would be
    /// ([`ClientRegistrationOptions::client_scope`]): valid declared scopes or the defaults,
    /// plus the step-up scopes — the MCP spec's own example document declares no `scope`.
    /// Without them, a document's `scope` is taken as it is.
    pub fn client_scope_rules(mut self, options: ClientRegistrationOptions) -> Self {
        self.client_scope_rules = Some(options);
        self
    }

    /// Offers the client credentials grant (RFC 6749 §4.4) to clients registered for it (off
    /// by default: a client acting in its own name is normally provisioned by an
    /// administrator). Registration still refuses it unless
    /// [`ClientRegistrationOptions::allow_client_credentials`] admits it.
    pub fn client_credentials(mut self, enabled: bool) -> Self {
        self.client_credentials = enabled;
        self
    }

    /// Enables the SEP-990 jwt-bearer grant, validating ID-JAGs with `validator` (for example
    /// `mcp_auth_jwt::IdJagValidator`). Without one the grant answers `unsupported_grant_type`.
    pub fn identity_assertion_validator(
        mut self,
        validator: Arc<dyn IdentityAssertionValidator>,
    ) -> Self {
        self.collaborators.identity_assertions = Some(validator);
        self
    }

    /// Enables `private_key_jwt` client authentication (RFC 7523 §2.2), verifying client
    /// assertions with `verifier` (for example `mcp_auth_jwt::PrivateKeyJwtVerifier`). Without
    /// one every client assertion is refused.
    pub fn client_assertion_verifier(mut self, verifier: Arc<dyn ClientAssertionVerifier>) -> Self {
        self.collaborators.client_assertions = Some(verifier);
        self
    }

    /// Enables Client ID Metadata Documents: a `client_id` that is an https URL is resolved by
    /// `resolver` (for example `mcp_auth_cimd::CimdResolver`) instead of storage. Without one
    /// such ids are unknown clients. The provider's [`Capabilities`](crate::Capabilities) then
    /// include it, so metadata advertises it.
    pub fn client_metadata_resolver(mut self, resolver: Arc<dyn ClientMetadataResolver>) -> Self {
        self.collaborators.client_metadata = Some(resolver);
        self
    }

    /// Issues signed JWT access tokens (RFC 9068) through `signer` (for example
    /// `mcp_auth_jwt::JwtAccessTokenSigner`) instead of random strings, and publishes its key
    /// set (`jwks_uri`). Each token is still stored under its hash, so revocation and
    /// introspection work as for opaque tokens; see [`AccessTokenSigner`].
    pub fn access_token_signer(mut self, signer: Arc<dyn AccessTokenSigner>) -> Self {
        self.collaborators.access_token_signer = Some(signer);
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<StoreProvider<S>, ConfigError> {
        let issuer = validate_issuer_url(&self.issuer)?;
        let day = 24 * 3600;
        let checks = [
            ("code_ttl", self.code_ttl, 1, MAX_CODE_TTL),
            (
                "authorization_request_ttl",
                self.authorization_request_ttl,
                30,
                3600,
            ),
            ("access_token_ttl", self.access_token_ttl, 1, 7 * day),
            (
                "refresh_token_ttl",
                self.refresh_token_ttl.unwrap_or(1),
                1,
                400 * day,
            ),
            (
                "grant_lifetime",
                self.grant_lifetime.unwrap_or(1),
                1,
                400 * day,
            ),
            (
                "access_token_cache_ttl",
                self.access_token_cache_ttl,
                0,
                MAX_ACCESS_TOKEN_CACHE_TTL,
            ),
            (
                "refresh_reuse_interval",
                self.refresh_reuse_interval,
                0,
                MAX_REFRESH_REUSE_INTERVAL,
            ),
            (
                "unknown_token_cache_ttl",
                self.unknown_token_cache_ttl,
                0,
                MAX_ACCESS_TOKEN_CACHE_TTL,
            ),
        ];
        for (setting, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::Lifetime {
                    setting,
                    min,
                    max,
                    value,
                });
            }
        }
        let sign_in_url = self
            .sign_in_url
            .unwrap_or_else(|| issuer.endpoint("/sign-in"));
        Ok(StoreProvider {
            storage: self.storage,
            clients: ClientCache::new(self.client_cache_ttl),
            access_tokens: (self.access_token_cache_ttl > 0).then(|| {
                AccessTokenCache::new(
                    self.access_token_cache_ttl,
                    self.access_token_cache_capacity,
                )
            }),
            unknown_tokens: (self.unknown_token_cache_ttl > 0).then(|| {
                UnknownTokenCache::new(
                    self.unknown_token_cache_ttl,
                    crate::limits::UNKNOWN_TOKEN_CACHE_ENTRIES,
                )
            }),
            capabilities: self.collaborators.capabilities(self.client_credentials),
            collaborators: self.collaborators,
            clock: self.clock,
            config: Config {
                issuer,
                sign_in_url,
                authorization_request_ttl: self.authorization_request_ttl,
                code_ttl: self.code_ttl,
                access_token_ttl: self.access_token_ttl,
                refresh_token_ttl: self.refresh_token_ttl,
                grant_lifetime: self.grant_lifetime,
                refresh_reuse_interval: self.refresh_reuse_interval,
                valid_scopes: self.valid_scopes,
                client_scope_rules: self.client_scope_rules,
            },
        })
    }
}
