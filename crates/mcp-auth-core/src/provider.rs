//! The provider contract: what an authorization server must implement (a port of the Python
//! SDK's `mcp.server.auth.provider`).

use std::sync::Arc;

use async_trait::async_trait;
use mcp_auth_types::{
    AccessToken, AccessTokenSecret, Assertion, AuthorizationCode, AuthorizationCodeSecret,
    AuthorizationParams, ClientSecret, IdentityAssertionParams, OAuthClientInformationFull,
    OAuthToken, RefreshToken, RefreshTokenSecret, TokenErrorCode,
};

use crate::assertion::ClientAssertionError;
use crate::capabilities::Capabilities;
use crate::error::{AuthorizeError, ProviderError, RegistrationError, TokenError};
use crate::secrets::constant_time_eq;

/// A token presented for revocation, as loaded by the provider (RFC 7009 §2.1).
#[derive(Debug, Clone)]
pub enum RevocableToken<A, R> {
    /// An access token.
    Access(A),
    /// A refresh token.
    Refresh(R),
}

/// The authorization server's business logic behind the OAuth endpoints.
///
/// The handlers in `mcp-auth-handlers` do the protocol work — parsing, client authentication,
/// PKCE, redirect-URI and scope checks, error rendering — and call these methods for every
/// decision that needs storage or policy. Implement it yourself, or use `StoreProvider`, which
/// implements it over a storage backend.
///
/// The associated types let an implementation carry extra data on its records (the Python SDK's
/// `AuthorizationCodeT`, `RefreshTokenT` and `AccessTokenT`); the handlers read the standard
/// fields through `AsRef`.
///
/// Every `load_*` method answers `Ok(None)` for anything that does not exist, has expired, was
/// revoked, or belongs to another client; the handlers turn that into the same error in every
/// case, so a client learns nothing about other clients' credentials.
#[async_trait]
pub trait OAuthAuthorizationServerProvider: Send + Sync + 'static {
    /// The provider's authorization-code record.
    type AuthorizationCode: AsRef<AuthorizationCode> + Send + Sync + 'static;
    /// The provider's refresh-token record.
    type RefreshToken: AsRef<RefreshToken> + Send + Sync + 'static;
    /// The provider's access-token record. `Into<AccessToken>` lets a verifier hand the
    /// standard record on without copying it (every protected request does this).
    type AccessToken: AsRef<AccessToken> + Into<AccessToken> + Clone + Send + Sync + 'static;

    /// What this provider supports beyond the authorization-code flow: the one statement of
    /// which grants the token endpoint accepts, whether `private_key_jwt` is verified and
    /// with which algorithms, and whether URL client ids resolve. Metadata, the token
    /// endpoint, client authentication and registration all read it (once, when the server
    /// is built). The default is [`Capabilities::new`]; a provider that overrides
    /// [`exchange_client_credentials`](Self::exchange_client_credentials),
    /// [`exchange_identity_assertion`](Self::exchange_identity_assertion) or
    /// [`authenticate_client_assertion`](Self::authenticate_client_assertion) says so here.
    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
    }

    /// The JWK Set document (JSON) that verifies this provider's access tokens, served at
    /// `jwks_uri`: `Some` exactly when [`capabilities`](Self::capabilities) say
    /// [`signed_access_tokens`](Capabilities::supports_signed_access_tokens). It changes as keys
    /// rotate, so it is asked for on every request. The default is `None` (opaque tokens).
    fn access_token_key_set(&self) -> Option<Arc<str>> {
        None
    }

    /// The registered client with this id, or `None`.
    async fn get_client(
        &self,
        client_id: &str,
    ) -> Result<Option<OAuthClientInformationFull>, ProviderError>;

    /// Stores a newly registered client. `client_info` carries the raw `client_secret` when one
    /// was issued; store only a hash of it. Return a [`RegistrationError`] to refuse metadata
    /// the handler accepted (for example a policy on redirect hosts).
    async fn register_client(
        &self,
        client_info: OAuthClientInformationFull,
    ) -> Result<(), RegistrationError>;

    /// Whether `secret` is the client's secret. Must compare in constant time.
    ///
    /// The default compares against `client.client_secret`, for providers that keep secrets in
    /// their client records as the Python SDK does. Providers that store only a hash (as they
    /// should) override it.
    async fn authenticate_client_secret(
        &self,
        client: &OAuthClientInformationFull,
        secret: &ClientSecret,
    ) -> Result<bool, ProviderError> {
        Ok(client.client_secret.as_ref().is_some_and(|stored| {
            constant_time_eq(
                stored.expose_secret().as_bytes(),
                secret.expose_secret().as_bytes(),
            )
        }))
    }

    /// Starts authenticating the user for a validated authorization request and returns the
    /// URL to send the user agent to: a sign-in page, or an upstream identity provider.
    ///
    /// Whatever completes the sign-in must eventually issue an authorization code bound to
    /// `client` and `params` (scopes, PKCE challenge, redirect URI, resource, and the user as
    /// subject) and redirect to `params.redirect_uri` with `code`, `state` and `iss`. The code
    /// MUST carry at least 128 bits of entropy and SHOULD carry at least 160 (RFC 6749 §10.10),
    /// MUST be single-use, and SHOULD live no longer than 10 minutes (RFC 6749 §4.1.2).
    async fn authorize(
        &self,
        client: &OAuthClientInformationFull,
        params: AuthorizationParams,
    ) -> Result<String, AuthorizeError>;

    /// The unexpired code `code` issued to `client`, or `None`.
    async fn load_authorization_code(
        &self,
        client: &OAuthClientInformationFull,
        code: &AuthorizationCodeSecret,
    ) -> Result<Option<Self::AuthorizationCode>, ProviderError>;

    /// Exchanges a code the handler has checked (client, expiry, redirect URI, PKCE, resource)
    /// for tokens.
    ///
    /// The code must be consumed atomically: of two concurrent exchanges, exactly one may
    /// succeed; the other gets `invalid_grant`. A code presented again after it was redeemed
    /// SHOULD revoke the tokens issued from it (RFC 6749 §4.1.2). The access token must be
    /// audience-restricted to `code.resource` and carry `code.subject`.
    async fn exchange_authorization_code(
        &self,
        client: &OAuthClientInformationFull,
        code: Self::AuthorizationCode,
    ) -> Result<OAuthToken, TokenError>;

    /// The unexpired refresh token `token` issued to `client`, or `None`.
    async fn load_refresh_token(
        &self,
        client: &OAuthClientInformationFull,
        token: &RefreshTokenSecret,
    ) -> Result<Option<Self::RefreshToken>, ProviderError>;

    /// Exchanges a refresh token for new tokens with `scopes`, which the handler has checked to
    /// be a subset of the token's scopes (RFC 6749 §6).
    ///
    /// Implementations SHOULD rotate: issue a new refresh token and invalidate the old one in
    /// the same atomic step, and treat a later presentation of the old one as theft — revoking
    /// every token of the grant (RFC 9700 §4.14.2). Keep the grant's subject and resource.
    async fn exchange_refresh_token(
        &self,
        client: &OAuthClientInformationFull,
        token: Self::RefreshToken,
        scopes: Vec<String>,
    ) -> Result<OAuthToken, TokenError>;

    /// The unexpired, unrevoked access token `token`, or `None`. This is on the path of every
    /// protected request: keep it to one storage round trip or a cache hit.
    async fn load_access_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<Self::AccessToken>, ProviderError>;

    /// What [`load_access_token`](Self::load_access_token) would answer, when the provider can
    /// say it without waiting (an in-process cache hit, an in-memory store), or `None` (the
    /// default) when only `load_access_token` can tell. [`ProviderTokenVerifier`] offers it to
    /// the bearer layer as [`TokenVerifier::verify_token_now`]. When it answers, it must
    /// answer exactly as `load_access_token` would.
    fn load_access_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<Self::AccessToken>, ProviderError>> {
        let _ = token;
        None
    }

    /// Revokes a token (RFC 7009 §2.1). Revoking an unknown or already revoked token does
    /// nothing. Implementations SHOULD revoke both the access token and the refresh token of a
    /// pair, whichever of the two is presented.
    async fn revoke_token(
        &self,
        token: RevocableToken<Self::AccessToken, Self::RefreshToken>,
    ) -> Result<(), ProviderError>;

    /// Exchanges a SEP-990 Identity Assertion JWT Authorization Grant (ID-JAG), presented with
    /// the RFC 7523 jwt-bearer grant, for an access token. The default refuses with
    /// `unsupported_grant_type`.
    ///
    /// The handler has authenticated `client` as a confidential client. The implementation
    /// must then validate `params.assertion` per RFC 7523 §3 and SEP-990 §5.1:
    /// - verify the signature against the keys of a trusted issuer, `typ` =
    ///   `oauth-id-jag+jwt`, `iss` trusted, and `exp` in the future;
    /// - require `aud` to be this authorization server's issuer identifier;
    /// - require `sub` (RFC 7523 §3), the end user;
    /// - reject replays: track `jti` until the assertion's `exp`;
    /// - require the ID-JAG's `client_id` claim to equal the authenticated client's id — the
    ///   ID-JAG, not the request, is the grant;
    /// - restrict the access token's audience to the ID-JAG's `resource` claim, not merely to
    ///   `params.resource`, which the client controls;
    /// - derive the scopes from the ID-JAG and policy, never from `params.scopes` alone.
    ///
    /// Do not issue a refresh token: SEP-990 leaves session lifetime to the identity provider,
    /// which re-issues ID-JAGs. Reject a bad assertion with `invalid_grant`, and a resource
    /// outside the assertion with `invalid_target`.
    ///
    /// `StoreProvider` implements all of this when given an
    /// [`IdentityAssertionValidator`](crate::IdentityAssertionValidator) (`mcp-auth-jwt` has
    /// one).
    async fn exchange_identity_assertion(
        &self,
        client: &OAuthClientInformationFull,
        params: IdentityAssertionParams,
    ) -> Result<OAuthToken, TokenError> {
        let _ = (client, params);
        Err(TokenError::new(
            TokenErrorCode::UnsupportedGrantType,
            "the identity assertion (jwt-bearer) grant is not supported",
        ))
    }

    /// Issues an access token to `client` itself: the client credentials grant (RFC 6749
    /// §4.4), for machine-to-machine clients (MCP client-credentials extension). The default
    /// refuses with `unsupported_grant_type`.
    ///
    /// The handler has authenticated `client` as a confidential client registered for the
    /// grant, checked that `scopes` (when the request named any) are among the client's
    /// registered scopes, and resolved `resource` to a resource this server serves (or the
    /// default one). The token's subject is the client itself; RFC 6749 §4.4.3 says a refresh
    /// token SHOULD NOT be issued.
    async fn exchange_client_credentials(
        &self,
        client: &OAuthClientInformationFull,
        scopes: Option<Vec<String>>,
        resource: Option<String>,
    ) -> Result<OAuthToken, TokenError> {
        let _ = (client, scopes, resource);
        Err(TokenError::new(
            TokenErrorCode::UnsupportedGrantType,
            "the client_credentials grant is not supported",
        ))
    }

    /// Authenticates `client`, registered for `private_key_jwt`, by a client assertion
    /// (RFC 7523 §2.2): a JWT signed with a key of the client's registered `jwks` or
    /// `jwks_uri`, with `iss` = `sub` = the client id, `aud` among `audiences` (the issuer and
    /// the token endpoint URL), `exp` required, and a `jti` never seen before. The default
    /// refuses every assertion.
    ///
    /// `StoreProvider` implements it when given a
    /// [`ClientAssertionVerifier`](crate::ClientAssertionVerifier), recording `jti` in its
    /// replay store.
    async fn authenticate_client_assertion(
        &self,
        client: &OAuthClientInformationFull,
        assertion: &Assertion,
        audiences: &[String],
    ) -> Result<(), ClientAssertionError> {
        let _ = (client, assertion, audiences);
        Err(ClientAssertionError::rejected(
            "private_key_jwt client authentication is not supported by this server",
        ))
    }
}

/// Verifies bearer tokens presented to a protected resource.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    /// The token's grant, or `None` when the token is unknown, expired or revoked. An `Err`
    /// means the verifier could not decide (its store is down); the resource answers 503
    /// rather than pretending the token is invalid.
    async fn verify_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError>;

    /// What [`verify_token`](Self::verify_token) would answer, when the verifier can say it
    /// without waiting — a token found in an in-process cache or an in-memory store — or `None`
    /// (the default) when only `verify_token` can tell.
    ///
    /// Every protected request asks this first. A request answered here is authenticated
    /// without suspending it and without the heap-allocated future an `async` trait method
    /// costs, which is a measurable part of a request that does nothing else (see the
    /// `mcp-auth-axum` README, "Performance"). Implement it only where the answer is really at
    /// hand: it runs on the request's task and must not block. When it answers, it must answer
    /// exactly as `verify_token` would.
    fn verify_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<AccessToken>, ProviderError>> {
        let _ = token;
        None
    }
}

/// A [`TokenVerifier`] for a resource server that shares a process (or a database) with its
/// authorization server: it asks the provider's `load_access_token`.
#[derive(Debug)]
pub struct ProviderTokenVerifier<P> {
    provider: Arc<P>,
}

impl<P> ProviderTokenVerifier<P> {
    /// A verifier reading tokens through `provider`.
    pub fn new(provider: Arc<P>) -> Self {
        Self { provider }
    }
}

impl<P> Clone for ProviderTokenVerifier<P> {
    fn clone(&self) -> Self {
        Self {
            provider: Arc::clone(&self.provider),
        }
    }
}

#[async_trait]
impl<P: OAuthAuthorizationServerProvider> TokenVerifier for ProviderTokenVerifier<P> {
    async fn verify_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        Ok(self
            .provider
            .load_access_token(token)
            .await?
            .map(Into::into))
    }

    fn verify_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<AccessToken>, ProviderError>> {
        let loaded = self.provider.load_access_token_now(token)?;
        Some(loaded.map(|found| found.map(Into::into)))
    }
}

#[async_trait]
impl<T: TokenVerifier + ?Sized> TokenVerifier for Arc<T> {
    async fn verify_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        (**self).verify_token(token).await
    }

    fn verify_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<AccessToken>, ProviderError>> {
        (**self).verify_token_now(token)
    }
}

#[cfg(test)]
mod tests {
    use mcp_auth_types::{Assertion, OAuthClientMetadata};

    use super::*;
    use crate::{MemoryStore, StoreProvider};

    fn client(secret: Option<&str>) -> OAuthClientInformationFull {
        let mut info = OAuthClientInformationFull::new("c", OAuthClientMetadata::new(vec![]));
        info.client_secret = secret.map(ClientSecret::new);
        info
    }

    #[tokio::test]
    async fn identity_assertion_grant_is_unsupported_by_default() {
        let provider = StoreProvider::builder(MemoryStore::new(), "https://as.example")
            .build()
            .expect("provider");
        let result = provider
            .exchange_identity_assertion(
                &client(Some("s")),
                IdentityAssertionParams::new(Assertion::new("a.b.c")),
            )
            .await;
        match result {
            Err(TokenError::Rejected { code, .. }) => {
                assert_eq!(code, TokenErrorCode::UnsupportedGrantType);
            }
            other => panic!("expected unsupported_grant_type, got {other:?}"),
        }
    }

    /// A provider that keeps client secrets in its records, as the Python SDK's examples do,
    /// relying on the default secret check.
    struct PlainSecrets;

    #[async_trait]
    impl OAuthAuthorizationServerProvider for PlainSecrets {
        type AuthorizationCode = AuthorizationCode;
        type RefreshToken = RefreshToken;
        type AccessToken = AccessToken;

        async fn get_client(
            &self,
            _: &str,
        ) -> Result<Option<OAuthClientInformationFull>, ProviderError> {
            Ok(None)
        }
        async fn register_client(
            &self,
            _: OAuthClientInformationFull,
        ) -> Result<(), RegistrationError> {
            Ok(())
        }
        async fn authorize(
            &self,
            _: &OAuthClientInformationFull,
            _: AuthorizationParams,
        ) -> Result<String, AuthorizeError> {
            Ok(String::new())
        }
        async fn load_authorization_code(
            &self,
            _: &OAuthClientInformationFull,
            _: &AuthorizationCodeSecret,
        ) -> Result<Option<AuthorizationCode>, ProviderError> {
            Ok(None)
        }
        async fn exchange_authorization_code(
            &self,
            _: &OAuthClientInformationFull,
            _: AuthorizationCode,
        ) -> Result<OAuthToken, TokenError> {
            Err(TokenError::code(TokenErrorCode::InvalidGrant))
        }
        async fn load_refresh_token(
            &self,
            _: &OAuthClientInformationFull,
            _: &RefreshTokenSecret,
        ) -> Result<Option<RefreshToken>, ProviderError> {
            Ok(None)
        }
        async fn exchange_refresh_token(
            &self,
            _: &OAuthClientInformationFull,
            _: RefreshToken,
            _: Vec<String>,
        ) -> Result<OAuthToken, TokenError> {
            Err(TokenError::code(TokenErrorCode::InvalidGrant))
        }
        async fn load_access_token(
            &self,
            _: &AccessTokenSecret,
        ) -> Result<Option<AccessToken>, ProviderError> {
            Ok(None)
        }
        async fn revoke_token(
            &self,
            _: RevocableToken<AccessToken, RefreshToken>,
        ) -> Result<(), ProviderError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn default_secret_check_compares_against_the_record() {
        let cases = [
            (Some("s3cret"), "s3cret", true),
            (Some("s3cret"), "s3creT", false),
            (Some("s3cret"), "s3cret ", false),
            (Some("s3cret"), "", false),
            (None, "s3cret", false),
        ];
        for (stored, presented, expected) in cases {
            let ok = PlainSecrets
                .authenticate_client_secret(&client(stored), &ClientSecret::new(presented))
                .await
                .expect("no failure");
            assert_eq!(ok, expected, "{stored:?} vs {presented:?}");
        }
    }
}
