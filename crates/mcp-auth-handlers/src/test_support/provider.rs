//! The in-memory provider of the handler tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use mcp_auth_core::{
    AuthorizeError, ClientAssertionError, ManualClock, OAuthAuthorizationServerProvider,
    ProviderError, ProviderErrorKind, RegistrationError, RevocableToken, TokenError,
};
use mcp_auth_types::{
    AccessToken, AccessTokenSecret, Assertion, AuthorizationCode, AuthorizationCodeSecret,
    AuthorizationParams, AuthorizeErrorCode, ClientSecret, IdentityAssertionParams,
    OAuthClientInformationFull, OAuthToken, RefreshToken, RefreshTokenSecret, TokenErrorCode,
    construct_redirect_uri,
};

use super::{
    CODE_LIFETIME, DEFAULT_GRANTED, ISSUER, PKCE_CHALLENGE, TOKEN_LIFETIME, VALID_ASSERTION,
    VALID_CLIENT_ASSERTION,
};

/// The records are `#[non_exhaustive]`; tests build them the way a store reads them back.
fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid test record")
}

/// The fields of a test authorization code.
pub(crate) struct CodeFields<'a> {
    pub(crate) code: &'a str,
    pub(crate) scopes: &'a [String],
    pub(crate) expires_at: i64,
    pub(crate) client_id: &'a str,
    pub(crate) code_challenge: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) redirect_uri_provided_explicitly: bool,
    pub(crate) resource: Option<&'a str>,
}

/// An authorization code record with subject `test-user`.
pub(crate) fn code_record(fields: CodeFields<'_>) -> AuthorizationCode {
    from_json(serde_json::json!({
        "code": fields.code,
        "scopes": fields.scopes,
        "expires_at": fields.expires_at,
        "client_id": fields.client_id,
        "code_challenge": fields.code_challenge,
        "redirect_uri": fields.redirect_uri,
        "redirect_uri_provided_explicitly": fields.redirect_uri_provided_explicitly,
        "resource": fields.resource,
        "subject": "test-user",
    }))
}

/// An in-memory [`OAuthAuthorizationServerProvider`] with knobs for failures and inspection.
#[derive(Debug)]
pub(crate) struct TestProvider {
    clock: Arc<ManualClock>,
    clients: Mutex<HashMap<String, OAuthClientInformationFull>>,
    codes: Mutex<HashMap<String, AuthorizationCode>>,
    access_tokens: Mutex<HashMap<String, AccessToken>>,
    refresh_tokens: Mutex<HashMap<String, RefreshToken>>,
    /// Refresh token → the access token issued with it, so revoking either revokes both.
    pairs: Mutex<HashMap<String, String>>,
    /// When set, every provider call fails with this kind.
    failure: Mutex<Option<ProviderErrorKind>>,
    /// Methods (by name) that fail with the given kind.
    method_failures: Mutex<HashMap<&'static str, ProviderErrorKind>>,
    /// When set, the `exchange_*` methods reject with this code and description.
    exchange_rejection: Mutex<Option<(TokenErrorCode, &'static str)>>,
    /// When set, `authorize` rejects with this code.
    authorize_rejection: Mutex<Option<AuthorizeErrorCode>>,
    /// The last parameters `authorize` received.
    pub(crate) last_authorize: Mutex<Option<AuthorizationParams>>,
    /// The last parameters `exchange_identity_assertion` received.
    pub(crate) last_assertion: Mutex<Option<IdentityAssertionParams>>,
    /// Scopes the last refresh exchange was asked for.
    pub(crate) last_refresh_scopes: Mutex<Option<Vec<String>>>,
    /// Number of `revoke_token` calls.
    pub(crate) revocations: AtomicUsize,
    counter: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The cause every injected failure carries; tests check it never reaches a client.
pub(crate) const FAILURE_CAUSE: &str = "db password is hunter2";

impl TestProvider {
    /// An empty provider reading time from `clock`.
    pub(crate) fn new(clock: Arc<ManualClock>) -> Self {
        Self {
            clock,
            clients: Mutex::default(),
            codes: Mutex::default(),
            access_tokens: Mutex::default(),
            refresh_tokens: Mutex::default(),
            pairs: Mutex::default(),
            failure: Mutex::default(),
            method_failures: Mutex::default(),
            exchange_rejection: Mutex::default(),
            authorize_rejection: Mutex::default(),
            last_authorize: Mutex::default(),
            last_assertion: Mutex::default(),
            last_refresh_scopes: Mutex::default(),
            revocations: AtomicUsize::new(0),
            counter: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> i64 {
        use mcp_auth_core::Clock as _;
        self.clock.now()
    }

    fn next(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.counter.fetch_add(1, Ordering::SeqCst))
    }

    fn check_failure(&self) -> Result<(), ProviderError> {
        match *lock(&self.failure) {
            Some(kind) => Err(ProviderError::new(kind, FAILURE_CAUSE)),
            None => Ok(()),
        }
    }

    fn check_method(&self, method: &'static str) -> Result<(), ProviderError> {
        self.check_failure()?;
        match lock(&self.method_failures).get(method) {
            Some(kind) => Err(ProviderError::new(*kind, FAILURE_CAUSE)),
            None => Ok(()),
        }
    }

    /// Stores like PostgreSQL, which refuses NUL in `text`, only stricter: any control
    /// character in a value handed to the provider is an internal failure. The handlers must
    /// refuse such values first, so a 500 here fails the test (the totality test included).
    fn like_postgres<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<(), ProviderError> {
        for value in values {
            if mcp_auth_types::contains_control_character(value) {
                return Err(ProviderError::internal(
                    "invalid byte sequence for encoding \"UTF8\": 0x00",
                ));
            }
        }
        Ok(())
    }

    /// [`like_postgres`](Self::like_postgres) over every string of a JSON document.
    fn json_like_postgres(value: &serde_json::Value) -> Result<(), ProviderError> {
        match value {
            serde_json::Value::String(s) => Self::like_postgres([s.as_str()]),
            serde_json::Value::Array(items) => items.iter().try_for_each(Self::json_like_postgres),
            serde_json::Value::Object(members) => members.iter().try_for_each(|(name, value)| {
                Self::like_postgres([name.as_str()])?;
                Self::json_like_postgres(value)
            }),
            _ => Ok(()),
        }
    }

    fn check_exchange(&self, method: &'static str) -> Result<(), TokenError> {
        self.check_method(method)?;
        match *lock(&self.exchange_rejection) {
            Some((code, description)) => Err(TokenError::new(code, description)),
            None => Ok(()),
        }
    }

    /// Registers (or replaces) a client.
    pub(crate) fn add_client(&self, client: OAuthClientInformationFull) {
        lock(&self.clients).insert(client.client_id.clone(), client);
    }

    /// Changes a registered client in place.
    pub(crate) fn update_client(&self, id: &str, f: impl FnOnce(&mut OAuthClientInformationFull)) {
        if let Some(client) = lock(&self.clients).get_mut(id) {
            f(client);
        }
    }

    /// Makes every later provider call fail with `kind` (`None` heals it).
    pub(crate) fn fail_with(&self, kind: Option<ProviderErrorKind>) {
        *lock(&self.failure) = kind;
    }

    /// Makes the provider method named `method`, and only it, fail with `kind` (`None` heals
    /// it).
    pub(crate) fn fail_method(&self, method: &'static str, kind: Option<ProviderErrorKind>) {
        let mut failures = lock(&self.method_failures);
        match kind {
            Some(kind) => failures.insert(method, kind),
            None => failures.remove(method),
        };
    }

    /// Makes every `exchange_*` method reject with `code` and `description`.
    pub(crate) fn reject_exchanges(&self, rejection: Option<(TokenErrorCode, &'static str)>) {
        *lock(&self.exchange_rejection) = rejection;
    }

    /// Makes `authorize` reject with `code` (`None` lets it succeed).
    pub(crate) fn reject_authorize(&self, code: Option<AuthorizeErrorCode>) {
        *lock(&self.authorize_rejection) = code;
    }

    /// Stores a code for `client_id` bound to the test PKCE challenge and `redirect_uri`,
    /// expiring after [`CODE_LIFETIME`]; returns its value.
    pub(crate) fn insert_code(
        &self,
        client_id: &str,
        redirect_uri: &str,
        redirect_uri_provided_explicitly: bool,
        resource: Option<&str>,
    ) -> String {
        let value = self.next("code");
        let code = code_record(CodeFields {
            code: &value,
            scopes: &DEFAULT_GRANTED.map(str::to_owned),
            expires_at: self.now() + CODE_LIFETIME,
            client_id,
            code_challenge: PKCE_CHALLENGE,
            redirect_uri,
            redirect_uri_provided_explicitly,
            resource,
        });
        lock(&self.codes).insert(value.clone(), code);
        value
    }

    /// Issues an access/refresh token pair directly; returns `(access, refresh)`.
    pub(crate) fn issue_tokens(
        &self,
        client_id: &str,
        scopes: &[&str],
        resource: Option<&str>,
    ) -> (String, String) {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let token = self.mint(client_id, &scopes, resource, Some("test-user"), true);
        (
            token.access_token.expose_secret().to_owned(),
            token
                .refresh_token
                .map(|r| r.expose_secret().to_owned())
                .unwrap_or_default(),
        )
    }

    fn mint(
        &self,
        client_id: &str,
        scopes: &[String],
        resource: Option<&str>,
        subject: Option<&str>,
        with_refresh: bool,
    ) -> OAuthToken {
        let access = self.next("access");
        let expires_at = self.now() + TOKEN_LIFETIME;
        let mut record = AccessToken::new(
            AccessTokenSecret::new(access.clone()),
            client_id,
            scopes.to_vec(),
        );
        record.expires_at = Some(expires_at);
        record.resource = resource.map(str::to_owned);
        record.subject = subject.map(str::to_owned);
        lock(&self.access_tokens).insert(access.clone(), record);
        let mut token = OAuthToken::bearer(AccessTokenSecret::new(access.clone()))
            .with_expires_in(TOKEN_LIFETIME.unsigned_abs())
            .with_scopes(scopes);
        if with_refresh {
            let refresh = self.next("refresh");
            lock(&self.refresh_tokens).insert(
                refresh.clone(),
                from_json(serde_json::json!({
                    "token": refresh,
                    "client_id": client_id,
                    "scopes": scopes,
                    "expires_at": expires_at,
                    "subject": subject,
                    "resource": resource,
                })),
            );
            lock(&self.pairs).insert(refresh.clone(), access);
            token = token.with_refresh_token(RefreshTokenSecret::new(refresh));
        }
        token
    }

    /// Whether an access token is still stored.
    pub(crate) fn has_access_token(&self, token: &str) -> bool {
        lock(&self.access_tokens).contains_key(token)
    }

    /// Whether a refresh token is still stored.
    pub(crate) fn has_refresh_token(&self, token: &str) -> bool {
        lock(&self.refresh_tokens).contains_key(token)
    }

    /// Whether a code is still stored.
    pub(crate) fn has_code(&self, code: &str) -> bool {
        lock(&self.codes).contains_key(code)
    }

    /// The stored access token record.
    pub(crate) fn access_token(&self, token: &str) -> Option<AccessToken> {
        lock(&self.access_tokens).get(token).cloned()
    }
}

#[async_trait]
impl OAuthAuthorizationServerProvider for TestProvider {
    type AuthorizationCode = AuthorizationCode;
    type RefreshToken = RefreshToken;
    type AccessToken = AccessToken;

    async fn get_client(
        &self,
        client_id: &str,
    ) -> Result<Option<OAuthClientInformationFull>, ProviderError> {
        self.check_method("get_client")?;
        Self::like_postgres([client_id])?;
        Ok(lock(&self.clients).get(client_id).cloned())
    }

    async fn register_client(
        &self,
        client_info: OAuthClientInformationFull,
    ) -> Result<(), RegistrationError> {
        self.check_failure()?;
        let record = serde_json::to_value(&client_info).map_err(ProviderError::internal)?;
        Self::json_like_postgres(&record)?;
        self.add_client(client_info);
        Ok(())
    }

    /// The default comparison, with a failure knob.
    async fn authenticate_client_secret(
        &self,
        client: &OAuthClientInformationFull,
        secret: &ClientSecret,
    ) -> Result<bool, ProviderError> {
        self.check_method("authenticate_client_secret")?;
        Ok(client.client_secret.as_ref().is_some_and(|stored| {
            mcp_auth_core::secrets::constant_time_eq(
                stored.expose_secret().as_bytes(),
                secret.expose_secret().as_bytes(),
            )
        }))
    }

    /// Grants immediately: mints a code and redirects to the client with `code`, `state` and
    /// `iss`, as a provider whose user is already signed in would.
    async fn authorize(
        &self,
        client: &OAuthClientInformationFull,
        params: AuthorizationParams,
    ) -> Result<String, AuthorizeError> {
        *lock(&self.last_authorize) = Some(params.clone());
        self.check_method("authorize")?;
        let stored = [
            Some(params.code_challenge.as_str()),
            Some(params.redirect_uri.as_str()),
            params.state.as_deref(),
            params.resource.as_deref(),
        ];
        Self::like_postgres(stored.into_iter().flatten())?;
        Self::like_postgres(params.scopes.iter().flatten().map(String::as_str))?;
        if let Some(code) = *lock(&self.authorize_rejection) {
            return Err(AuthorizeError::new(code, "the test provider refused"));
        }
        let value = self.next("code");
        let scopes = params
            .scopes
            .clone()
            .unwrap_or_else(|| DEFAULT_GRANTED.map(str::to_owned).to_vec());
        let code = code_record(CodeFields {
            code: &value,
            scopes: &scopes,
            expires_at: self.now() + CODE_LIFETIME,
            client_id: &client.client_id,
            code_challenge: &params.code_challenge,
            redirect_uri: &params.redirect_uri,
            redirect_uri_provided_explicitly: params.redirect_uri_provided_explicitly,
            resource: params.resource.as_deref(),
        });
        lock(&self.codes).insert(value.clone(), code);
        Ok(construct_redirect_uri(
            &params.redirect_uri,
            &[
                ("code", Some(&value)),
                ("state", params.state.as_deref()),
                ("iss", Some(ISSUER)),
            ],
        ))
    }

    async fn load_authorization_code(
        &self,
        _client: &OAuthClientInformationFull,
        code: &AuthorizationCodeSecret,
    ) -> Result<Option<AuthorizationCode>, ProviderError> {
        self.check_method("load_authorization_code")?;
        Self::like_postgres([code.expose_secret()])?;
        Ok(lock(&self.codes).get(code.expose_secret()).cloned())
    }

    /// Consumes the code atomically: of two concurrent exchanges only one finds it.
    async fn exchange_authorization_code(
        &self,
        client: &OAuthClientInformationFull,
        code: AuthorizationCode,
    ) -> Result<OAuthToken, TokenError> {
        self.check_exchange("exchange_authorization_code")?;
        // Yield between load and take so that concurrent redemptions really interleave.
        tokio::task::yield_now().await;
        let taken = lock(&self.codes).remove(code.code.expose_secret());
        let Some(code) = taken else {
            return Err(TokenError::new(
                TokenErrorCode::InvalidGrant,
                "authorization code already used",
            ));
        };
        Ok(self.mint(
            &client.client_id,
            &code.scopes,
            code.resource.as_deref(),
            code.subject.as_deref(),
            true,
        ))
    }

    async fn load_refresh_token(
        &self,
        _client: &OAuthClientInformationFull,
        token: &RefreshTokenSecret,
    ) -> Result<Option<RefreshToken>, ProviderError> {
        self.check_method("load_refresh_token")?;
        Self::like_postgres([token.expose_secret()])?;
        Ok(lock(&self.refresh_tokens)
            .get(token.expose_secret())
            .cloned())
    }

    /// Rotates atomically: the old refresh token and its access token go, a new pair comes.
    async fn exchange_refresh_token(
        &self,
        client: &OAuthClientInformationFull,
        token: RefreshToken,
        scopes: Vec<String>,
    ) -> Result<OAuthToken, TokenError> {
        self.check_exchange("exchange_refresh_token")?;
        Self::like_postgres(scopes.iter().map(String::as_str))?;
        *lock(&self.last_refresh_scopes) = Some(scopes.clone());
        let taken = lock(&self.refresh_tokens).remove(token.token.expose_secret());
        let Some(old) = taken else {
            return Err(TokenError::new(
                TokenErrorCode::InvalidGrant,
                "refresh token already used",
            ));
        };
        if let Some(access) = lock(&self.pairs).remove(old.token.expose_secret()) {
            lock(&self.access_tokens).remove(&access);
        }
        Ok(self.mint(
            &client.client_id,
            &scopes,
            old.resource.as_deref(),
            old.subject.as_deref(),
            true,
        ))
    }

    async fn load_access_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        self.check_method("load_access_token")?;
        Self::like_postgres([token.expose_secret()])?;
        Ok(lock(&self.access_tokens)
            .get(token.expose_secret())
            .cloned())
    }

    /// Revokes the presented token and its partner.
    async fn revoke_token(
        &self,
        token: RevocableToken<AccessToken, RefreshToken>,
    ) -> Result<(), ProviderError> {
        self.check_method("revoke_token")?;
        self.revocations.fetch_add(1, Ordering::SeqCst);
        match token {
            RevocableToken::Access(access) => {
                let value = access.token.expose_secret().to_owned();
                lock(&self.access_tokens).remove(&value);
                let mut pairs = lock(&self.pairs);
                let partners: Vec<String> = pairs
                    .iter()
                    .filter(|(_, a)| **a == value)
                    .map(|(r, _)| r.clone())
                    .collect();
                for refresh in partners {
                    pairs.remove(&refresh);
                    lock(&self.refresh_tokens).remove(&refresh);
                }
            }
            RevocableToken::Refresh(refresh) => {
                let value = refresh.token.expose_secret().to_owned();
                lock(&self.refresh_tokens).remove(&value);
                if let Some(access) = lock(&self.pairs).remove(&value) {
                    lock(&self.access_tokens).remove(&access);
                }
            }
        }
        Ok(())
    }

    /// Grants the requested scopes (or the registered ones) to the client itself, without a
    /// refresh token.
    async fn exchange_client_credentials(
        &self,
        client: &OAuthClientInformationFull,
        scopes: Option<Vec<String>>,
        resource: Option<String>,
    ) -> Result<OAuthToken, TokenError> {
        self.check_exchange("exchange_client_credentials")?;
        Self::like_postgres(scopes.iter().flatten().chain(&resource).map(String::as_str))?;
        let scopes = scopes.unwrap_or_else(|| client.registered_scopes());
        Ok(self.mint(
            &client.client_id,
            &scopes,
            resource.as_deref(),
            Some(&client.client_id),
            false,
        ))
    }

    /// Accepts only [`VALID_CLIENT_ASSERTION`] (standing in for RFC 7523 §3 checks), and only
    /// for this server's issuer and token endpoint as audiences.
    async fn authenticate_client_assertion(
        &self,
        _client: &OAuthClientInformationFull,
        assertion: &Assertion,
        audiences: &[String],
    ) -> Result<(), ClientAssertionError> {
        self.check_method("authenticate_client_assertion")?;
        assert_eq!(audiences, [ISSUER.to_owned(), format!("{ISSUER}/token")]);
        if assertion.expose_secret() == VALID_CLIENT_ASSERTION {
            Ok(())
        } else {
            Err(ClientAssertionError::rejected(
                "signature: the signature does not verify",
            ))
        }
    }

    /// Accepts only [`VALID_ASSERTION`]; grants the requested scopes (or `read`) and no refresh
    /// token, as SEP-990 asks.
    async fn exchange_identity_assertion(
        &self,
        client: &OAuthClientInformationFull,
        params: IdentityAssertionParams,
    ) -> Result<OAuthToken, TokenError> {
        self.check_exchange("exchange_identity_assertion")?;
        Self::like_postgres(
            params
                .scopes
                .iter()
                .flatten()
                .chain(&params.resource)
                .map(String::as_str),
        )?;
        *lock(&self.last_assertion) = Some(params.clone());
        if params.assertion.expose_secret() != VALID_ASSERTION {
            return Err(TokenError::new(
                TokenErrorCode::InvalidGrant,
                "the identity assertion is not valid",
            ));
        }
        let scopes = params.scopes.unwrap_or_else(|| vec!["read".to_owned()]);
        Ok(self.mint(
            &client.client_id,
            &scopes,
            params.resource.as_deref(),
            Some("enterprise-user"),
            false,
        ))
    }
}
