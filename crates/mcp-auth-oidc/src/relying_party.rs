//! [`OidcRelyingParty`]: one OpenID Provider, one client registered there, and the two halves
//! of a sign-in: [`begin`](OidcRelyingParty::begin) (where to send the browser, and what to
//! remember) and [`finish`](OidcRelyingParty::finish) (the callback: the code exchanged, the
//! ID token validated).

use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcp_auth_core::secrets::random_secret;
use mcp_auth_core::{Clock, SystemClock};
use mcp_auth_jwt::{HttpJwksFetcher, IdTokenValidator, JwksSource};
use mcp_auth_types::{ClientSecret, CodeVerifier, s256_challenge};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::http::Http;
use crate::limits::{DISCOVERY_RETRY_INTERVAL, MAX_CALLBACK_PARAMETER, SIGN_IN_LIFETIME};
use crate::metadata::{self, ClientAuthentication, ProviderMetadata};
use crate::{FederatedUser, OidcConfigError, OidcError, UpstreamTokens};

/// Signs users in at one OpenID Provider as one confidential client. Cheap to clone.
#[derive(Clone)]
pub struct OidcRelyingParty {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    client_id: String,
    client_secret: ClientSecret,
    redirect_uri: String,
    scopes: String,
    http: Http,
    root_certificates_pem: Vec<u8>,
    clock: Arc<dyn Clock>,
    discovered: Mutex<Discovered>,
    discovering: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Discovered {
    provider: Option<Arc<Provider>>,
    last_failure: Option<i64>,
}

/// What discovery found: the endpoints, and the validator of this provider's ID tokens.
struct Provider {
    metadata: ProviderMetadata,
    validator: IdTokenValidator,
}

impl std::fmt::Debug for OidcRelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcRelyingParty")
            .field("issuer", &self.inner.issuer)
            .field("client_id", &self.inner.client_id)
            .field("redirect_uri", &self.inner.redirect_uri)
            .field("scopes", &self.inner.scopes)
            .finish_non_exhaustive()
    }
}

/// Builds an [`OidcRelyingParty`].
pub struct OidcRelyingPartyBuilder {
    issuer: String,
    client_id: String,
    client_secret: ClientSecret,
    redirect_uri: String,
    scopes: Vec<String>,
    root_certificates_pem: Vec<u8>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OidcRelyingPartyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcRelyingPartyBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A sign-in sent to the provider, to be remembered until its callback (the server keeps it
/// where only this browser's callback finds it). `Debug` shows none of its values.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    state: String,
    nonce: String,
    code_verifier: String,
    started_at: i64,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

/// Where to send the browser, and what to remember. `Debug` shows neither (the URL carries
/// the sign-in's `state` and `nonce`).
pub struct SignInStart {
    /// The provider's authorization endpoint with this sign-in's request.
    pub authorization_url: String,
    /// What the callback needs.
    pub pending: PendingSignIn,
}

/// The query of a callback to `redirect_uri`, as the browser brought it. `Debug` shows only
/// whether the code and state are there (the code is a credential).
#[derive(Default, Clone, Copy)]
pub struct Callback<'a> {
    /// `code`.
    pub code: Option<&'a str>,
    /// `state`.
    pub state: Option<&'a str>,
    /// `error` (the provider refused or failed).
    pub error: Option<&'a str>,
    /// `iss` (RFC 9207), when the provider sends it.
    pub iss: Option<&'a str>,
}

impl std::fmt::Debug for SignInStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInStart").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Callback<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("code", &self.code.map(|_| "[redacted]"))
            .field("state", &self.state.map(|_| "[redacted]"))
            .field("error", &self.error)
            .field("iss", &self.iss)
            .finish()
    }
}

impl OidcRelyingParty {
    /// A relying party for `issuer` as the confidential client `client_id`/`client_secret`,
    /// whose callback is `redirect_uri` (registered at the provider).
    pub fn builder(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        redirect_uri: impl Into<String>,
    ) -> OidcRelyingPartyBuilder {
        OidcRelyingPartyBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            scopes: ["openid", "email", "profile"].map(str::to_owned).to_vec(),
            root_certificates_pem: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The provider's issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Discovers the provider now (otherwise the first sign-in does), so that a wrong issuer
    /// shows at start-up; a failure is retried by later sign-ins at most once a minute.
    pub async fn discover(&self) -> Result<(), OidcError> {
        self.provider().await.map(|_| ())
    }

    /// Starts a sign-in: fresh `state`, `nonce` and PKCE verifier (256 bits each), and the
    /// authorization request (code flow, S256) to send the browser to.
    pub async fn begin(&self) -> Result<SignInStart, OidcError> {
        let provider = self.provider().await?;
        let pending = PendingSignIn {
            state: random_secret(),
            nonce: random_secret(),
            code_verifier: random_secret(),
            started_at: self.inner.clock.now(),
        };
        let challenge = s256_challenge(&CodeVerifier::new(pending.code_verifier.as_str()));
        let mut url = url::Url::parse(&provider.metadata.authorization_endpoint)
            .map_err(|_| OidcError::Invalid("the authorization endpoint is not a URL"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.inner.client_id)
            .append_pair("redirect_uri", &self.inner.redirect_uri)
            .append_pair("scope", &self.inner.scopes)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(SignInStart {
            authorization_url: url.into(),
            pending,
        })
    }

    /// Finishes the sign-in `pending` with the `callback` the browser brought: checks that it
    /// answers this sign-in (`state`, in constant time, and `iss` when sent), exchanges the
    /// code (with the PKCE verifier and this client's credentials) and validates the ID token
    /// (with the nonce). Nothing of the provider's answer is logged.
    pub async fn finish(
        &self,
        pending: &PendingSignIn,
        callback: Callback<'_>,
    ) -> Result<FederatedUser, OidcError> {
        let now = self.inner.clock.now();
        if now.saturating_sub(pending.started_at) > SIGN_IN_LIFETIME {
            return Err(OidcError::Expired);
        }
        let state = bounded(callback.state).ok_or(OidcError::StateMismatch)?;
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(OidcError::StateMismatch);
        }
        if callback.iss.is_some_and(|iss| iss != self.inner.issuer) {
            return Err(OidcError::IssuerMismatch);
        }
        if let Some(error) = callback.error {
            return Err(OidcError::Denied {
                error: error_code(error),
            });
        }
        let code = bounded(callback.code).ok_or(OidcError::Invalid("the callback has no code"))?;
        let provider = self.provider().await?;
        let tokens = self.redeem(&provider.metadata, code, pending).await?;
        let id_token = tokens
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or(OidcError::Invalid("the token response has no id_token"))?;
        let claims = provider
            .validator
            .validate(id_token, &pending.nonce)
            .await?;
        Ok(FederatedUser {
            claims,
            tokens: upstream_tokens(&tokens, now)?,
        })
    }

    /// The token request for `code` and its answer, a JSON object.
    async fn redeem(
        &self,
        metadata: &ProviderMetadata,
        code: &str,
        pending: &PendingSignIn,
    ) -> Result<serde_json::Map<String, Value>, OidcError> {
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.inner.redirect_uri.as_str()),
            ("code_verifier", pending.code_verifier.as_str()),
        ];
        self.token_request(metadata, &grant).await
    }

    /// Exchanges the provider's `refresh_token` for fresh tokens (RFC 6749 §6), for tools
    /// acting on the user's behalf once the provider's access token expired. A provider that
    /// returns no new refresh token leaves the old one in use.
    pub async fn refresh(&self, refresh_token: &str) -> Result<UpstreamTokens, OidcError> {
        let provider = self.provider().await?;
        let grant = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let body = self.token_request(&provider.metadata, &grant).await?;
        let mut tokens = upstream_tokens(&body, self.inner.clock.now())?;
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.to_owned());
        }
        Ok(tokens)
    }

    /// A token request with the `grant` parameters and this client's credentials; its answer,
    /// a JSON object.
    async fn token_request(
        &self,
        metadata: &ProviderMetadata,
        grant: &[(&str, &str)],
    ) -> Result<serde_json::Map<String, Value>, OidcError> {
        let (body, authorization) = self.token_form(metadata, grant);
        let answer = self
            .inner
            .http
            .post_form(&metadata.token_endpoint, authorization.as_deref(), body)
            .await?;
        let body: Option<serde_json::Map<String, Value>> =
            serde_json::from_slice(&answer.body).ok();
        let error = body
            .as_ref()
            .and_then(|body| body.get("error"))
            .and_then(Value::as_str);
        if answer.status == 401 || error == Some("invalid_client") {
            // Our credentials, not the user's code: the operator's to fix, and the user's
            // request stays pending rather than being denied.
            tracing::error!(
                issuer = %self.inner.issuer,
                "the identity provider refused this server's client credentials; check \
                 --oidc-client-id and --oidc-client-secret"
            );
            return Err(OidcError::Unavailable(
                "the identity provider refused this server's client credentials".to_owned(),
            ));
        }
        match (answer.status, body) {
            (200, Some(body)) => Ok(body),
            (200, None) => Err(OidcError::Invalid(
                "the token response is not a JSON object",
            )),
            (400, body) => Err(OidcError::TokenRefused {
                error: body
                    .as_ref()
                    .and_then(|body| body.get("error"))
                    .and_then(Value::as_str)
                    .map_or_else(|| "invalid_request".to_owned(), error_code),
            }),
            (status, _) => Err(OidcError::Unavailable(format!(
                "the token endpoint answered {status}"
            ))),
        }
    }

    /// The token request's form body and, for `client_secret_basic`, its `Authorization`.
    /// (Built apart from the request: the form serializer is not `Send`, so it must not live
    /// across an await.)
    fn token_form(
        &self,
        metadata: &ProviderMetadata,
        grant: &[(&str, &str)],
    ) -> (String, Option<String>) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(grant);
        let authorization = match metadata.client_authentication {
            ClientAuthentication::ClientSecretBasic => {
                let encode = |value: &str| -> String {
                    form_urlencoded::byte_serialize(value.as_bytes()).collect()
                };
                let pair = format!(
                    "{}:{}",
                    encode(&self.inner.client_id),
                    encode(self.inner.client_secret.expose_secret())
                );
                Some(format!("Basic {}", STANDARD.encode(pair)))
            }
            ClientAuthentication::ClientSecretPost => {
                form.append_pair("client_id", &self.inner.client_id)
                    .append_pair("client_secret", self.inner.client_secret.expose_secret());
                None
            }
        };
        (form.finish(), authorization)
    }

    /// The discovered provider, discovering it (single-flight) if nobody has, at most once a
    /// minute after a failure.
    async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        let now = self.inner.clock.now();
        if let Some(provider) = self.ready(now)? {
            return Ok(provider);
        }
        let _discovering = self.inner.discovering.lock().await;
        if let Some(provider) = self.ready(now)? {
            return Ok(provider);
        }
        match self.discover_now().await {
            Ok(provider) => {
                let provider = Arc::new(provider);
                self.discovered().provider = Some(Arc::clone(&provider));
                Ok(provider)
            }
            Err(error) => {
                tracing::warn!(
                    issuer = %self.inner.issuer,
                    error = %error,
                    "OpenID Connect discovery failed"
                );
                self.discovered().last_failure = Some(now);
                Err(error)
            }
        }
    }

    fn discovered(&self) -> std::sync::MutexGuard<'_, Discovered> {
        self.inner
            .discovered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn ready(&self, now: i64) -> Result<Option<Arc<Provider>>, OidcError> {
        let state = self.discovered();
        if let Some(provider) = &state.provider {
            return Ok(Some(Arc::clone(provider)));
        }
        match state.last_failure {
            Some(failed) if now < failed.saturating_add(DISCOVERY_RETRY_INTERVAL) => Err(
                OidcError::Unavailable("discovery failed less than a minute ago".to_owned()),
            ),
            _ => Ok(None),
        }
    }

    async fn discover_now(&self) -> Result<Provider, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.inner.issuer.trim_end_matches('/')
        );
        let answer = self.inner.http.get(&url).await?;
        if answer.status != 200 {
            return Err(OidcError::Unavailable(format!(
                "the discovery document answered {}",
                answer.status
            )));
        }
        let metadata = metadata::read(&answer.body, &self.inner.issuer)?;
        let mut fetcher = HttpJwksFetcher::builder();
        if !self.inner.root_certificates_pem.is_empty() {
            fetcher = fetcher
                .root_certificates_pem(&self.inner.root_certificates_pem)
                .map_err(|_| OidcError::Invalid("the root certificates are not PEM"))?;
        }
        let fetcher = fetcher
            .build()
            .map_err(|_| OidcError::Invalid("the key-set fetcher could not be built"))?;
        let validator = IdTokenValidator::builder(&self.inner.issuer, &self.inner.client_id)
            .jwks(JwksSource::Url(metadata.jwks_uri.clone()))
            .fetcher(Arc::new(fetcher))
            .clock(Arc::clone(&self.inner.clock))
            .build()
            .map_err(|_| OidcError::Invalid("the provider's jwks_uri is not usable"))?;
        Ok(Provider {
            metadata,
            validator,
        })
    }
}

impl OidcRelyingPartyBuilder {
    /// The scopes asked for (default `openid email profile`); `openid` is always sent.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Extra PEM roots for the provider's https endpoints (private deployments, tests).
    #[must_use]
    pub fn root_certificates_pem(mut self, pem: &[u8]) -> Self {
        self.root_certificates_pem.extend_from_slice(pem);
        self
    }

    /// The clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The relying party; contacts nobody yet.
    pub fn build(self) -> Result<OidcRelyingParty, OidcConfigError> {
        let issuer = mcp_auth_types::validate_issuer_url(&self.issuer)
            .map_err(|err| OidcConfigError::new("issuer", err.to_string()))?;
        if !issuer.as_str().starts_with("https://") {
            return Err(OidcConfigError::new("issuer", "must be an https URL"));
        }
        if self.client_id.is_empty() {
            return Err(OidcConfigError::new("client_id", "must not be empty"));
        }
        if self.client_secret.expose_secret().is_empty() {
            return Err(OidcConfigError::new("client_secret", "must not be empty"));
        }
        match url::Url::parse(&self.redirect_uri) {
            Ok(url) if matches!(url.scheme(), "https" | "http") && url.fragment().is_none() => {}
            _ => {
                return Err(OidcConfigError::new(
                    "redirect_uri",
                    "must be an absolute http(s) URL without a fragment",
                ));
            }
        }
        let mut scopes: Vec<String> = self.scopes;
        if !scopes.iter().any(|scope| scope == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        let http = Http::new(&self.root_certificates_pem)
            .map_err(|reason| OidcConfigError::new("root certificates", reason))?;
        Ok(OidcRelyingParty {
            inner: Arc::new(Inner {
                issuer: issuer.as_str().to_owned(),
                client_id: self.client_id,
                client_secret: self.client_secret,
                redirect_uri: self.redirect_uri,
                scopes: scopes.join(" "),
                http,
                root_certificates_pem: self.root_certificates_pem,
                clock: self.clock,
                discovered: Mutex::new(Discovered::default()),
                discovering: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

/// A callback parameter, if present and of a sane length.
fn bounded(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.is_empty() && value.len() <= MAX_CALLBACK_PARAMETER)
}

/// An OAuth error code as the provider sent it, if it looks like one (RFC 6749 §4.1.2.1:
/// `%x20-21 / %x23-5B / %x5D-7E`, here letters, digits and `_` only, at most 64), else
/// `invalid_request`: it may be shown on a page and logged.
fn error_code(code: &str) -> String {
    if !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
    {
        code.to_owned()
    } else {
        "invalid_request".to_owned()
    }
}

/// The provider's tokens from a token response.
fn upstream_tokens(
    body: &serde_json::Map<String, Value>,
    now: i64,
) -> Result<UpstreamTokens, OidcError> {
    if !body
        .get("token_type")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.eq_ignore_ascii_case("bearer"))
    {
        return Err(OidcError::Invalid(
            "the token response is not a Bearer token",
        ));
    }
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or(OidcError::Invalid("the token response has no access_token"))?;
    Ok(UpstreamTokens {
        access_token: access_token.to_owned(),
        refresh_token: body
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_owned),
        expires_at: body
            .get("expires_in")
            .and_then(Value::as_i64)
            .map(|seconds| now.saturating_add(seconds)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_kept_only_when_they_look_like_codes() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(error_code("<script>"), "invalid_request");
        assert_eq!(error_code(&"a".repeat(65)), "invalid_request");
        assert_eq!(error_code(""), "invalid_request");
    }

    #[test]
    fn the_configuration_is_checked_and_the_secret_never_printed() {
        let build = |issuer: &str, id: &str, secret: &str, redirect: &str| {
            OidcRelyingParty::builder(issuer, id, ClientSecret::new(secret), redirect).build()
        };
        let good = build(
            "https://idp.example",
            "mcp",
            "s3cret-value",
            "https://mcp.example/sign-in/oidc/callback",
        )
        .unwrap();
        assert!(!format!("{good:?}").contains("s3cret-value"));
        for (issuer, id, secret, redirect) in [
            ("http://idp.example", "mcp", "s", "https://a/cb"),
            ("https://idp.example", "", "s", "https://a/cb"),
            ("https://idp.example", "mcp", "", "https://a/cb"),
            ("https://idp.example", "mcp", "s", "/relative"),
        ] {
            assert!(
                build(issuer, id, secret, redirect).is_err(),
                "{issuer} {id} {redirect}"
            );
        }
    }

    #[tokio::test]
    async fn a_callback_must_answer_this_sign_in() {
        let clock = Arc::new(mcp_auth_core::ManualClock::new(1_700_000_000));
        let party = OidcRelyingParty::builder(
            "https://idp.example",
            "mcp",
            ClientSecret::new("s"),
            "https://mcp.example/cb",
        )
        .clock(clock.clone())
        .build()
        .unwrap();
        let pending = PendingSignIn {
            state: "state-1".to_owned(),
            nonce: "n".to_owned(),
            code_verifier: "v".to_owned(),
            started_at: 1_700_000_000,
        };
        let callback = |state: Option<&'static str>, iss: Option<&'static str>| Callback {
            code: Some("code"),
            state,
            error: None,
            iss,
        };
        for (case, callback, expected) in [
            ("no state", callback(None, None), "StateMismatch"),
            (
                "another state",
                callback(Some("state-2"), None),
                "StateMismatch",
            ),
            (
                "another issuer",
                callback(Some("state-1"), Some("https://evil.example")),
                "IssuerMismatch",
            ),
        ] {
            let error = party.finish(&pending, callback).await.unwrap_err();
            assert!(
                format!("{error:?}").starts_with(expected),
                "{case}: {error:?}"
            );
        }
        let denied = Callback {
            code: None,
            state: Some("state-1"),
            error: Some("access_denied"),
            iss: None,
        };
        assert!(matches!(
            party.finish(&pending, denied).await,
            Err(OidcError::Denied { error }) if error == "access_denied"
        ));
        clock.advance(SIGN_IN_LIFETIME + 1);
        assert!(matches!(
            party
                .finish(&pending, callback(Some("state-1"), None))
                .await,
            Err(OidcError::Expired)
        ));
    }
}
