//! Signed-assertion collaborators of the provider: the SEP-990 ID-JAG validator and the
//! RFC 7523 §2.2 client-assertion verifier.
//!
//! Core defines only the contracts, so that it stays free of cryptography and network I/O; the
//! `mcp-auth-jwt` crate implements them with JWKS fetching and signature verification.
//! [`StoreProvider`](crate::StoreProvider) takes them as optional collaborators through its
//! builder and adds what needs storage: replay protection, scope policy and token minting.

use async_trait::async_trait;
use mcp_auth_types::{Assertion, OAuthClientInformationFull};

use crate::error::{ProviderError, TokenError};

/// A validated SEP-990 Identity Assertion JWT Authorization Grant (ID-JAG): what the enterprise
/// identity provider granted, after signature, audience, lifetime, client binding and resource
/// checks.
#[doc(alias = "ID-JAG")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityAssertionGrant {
    /// `iss`: the trusted identity provider that issued the ID-JAG.
    pub issuer: String,
    /// `sub`: the end user, unique only per issuer (and tenant).
    pub subject: String,
    /// `tenant`: the identity provider's tenant, for multi-tenant providers.
    pub tenant: Option<String>,
    /// `client_id`: the client the ID-JAG was issued to; the validator has checked it equals the
    /// authenticated client.
    pub client_id: String,
    /// `resource`: the resources (canonical, RFC 8707) the ID-JAG names that this
    /// authorization server serves; never empty.
    pub resources: Vec<String>,
    /// `scope`: the scopes the identity provider granted; empty when the claim is absent.
    pub scopes: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
    /// `jti`: the assertion's unique id, for replay protection.
    pub jti: String,
    /// How long `jti` must be remembered: `exp` plus the clock leeway during which the
    /// validator still accepts the assertion.
    pub replay_until: i64,
}

impl IdentityAssertionGrant {
    /// A grant with the required claims; `tenant` absent, `scopes` empty, `replay_until` =
    /// `expires_at` (set the public fields for the rest).
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        client_id: impl Into<String>,
        resources: Vec<String>,
        jti: impl Into<String>,
        expires_at: i64,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
            tenant: None,
            client_id: client_id.into(),
            resources,
            scopes: Vec::new(),
            expires_at,
            jti: jti.into(),
            replay_until: expires_at,
        }
    }
}

/// The subject of tokens issued for an ID-JAG: the identity provider's `iss`, its `tenant` when
/// present, and the user's `sub`, encoded so that no two different triples give the same
/// string.
///
/// A `sub` is unique only per issuer (OIDC Core §2; per tenant for multi-tenant providers), so
/// the bare `sub` of one trusted provider could name another provider's user. Each component
/// has `%` and `|` percent-encoded and the components are joined with `|`: the number of `|`
/// tells the two-component form from the three-component one, and no component can contain
/// the separator.
///
/// ```
/// use mcp_auth_core::identity_assertion_subject;
///
/// assert_eq!(
///     identity_assertion_subject("https://idp.example", None, "alice"),
///     "https://idp.example|alice"
/// );
/// assert_eq!(
///     identity_assertion_subject("https://idp.example", Some("acme"), "a|b"),
///     "https://idp.example|acme|a%7Cb"
/// );
/// ```
pub fn identity_assertion_subject(issuer: &str, tenant: Option<&str>, subject: &str) -> String {
    fn escape(component: &str) -> String {
        component.replace('%', "%25").replace('|', "%7C")
    }
    match tenant {
        Some(tenant) => format!("{}|{}|{}", escape(issuer), escape(tenant), escape(subject)),
        None => format!("{}|{}", escape(issuer), escape(subject)),
    }
}

/// Validates ID-JAGs (SEP-990 §5.1, RFC 7523 §3) for the jwt-bearer grant.
///
/// An implementation checks everything that needs only the assertion, its issuer's keys and the
/// authenticated client: signature by a trusted issuer, `typ`, algorithm allow-list, `aud` = this
/// authorization server, `exp`/`iat`/`nbf` (`iat` required, `exp` − `iat` bounded), the required
/// claims, `client_id` = `client`, and that `resource` names a resource this server serves. It
/// does **not** track `jti`: the caller records its SHA-256 in its
/// [`ReplayStore`](crate::ReplayStore) once every other check has passed, so that a request
/// refused for another reason does not burn the assertion. The caller refuses a grant whose
/// `jti` is longer than [`MAX_JTI_LENGTH`](crate::limits::MAX_JTI_LENGTH) characters or whose
/// `replay_until` lies more than [`MAX_REPLAY_WINDOW`](crate::limits::MAX_REPLAY_WINDOW) after
/// `now`.
#[async_trait]
pub trait IdentityAssertionValidator: Send + Sync + 'static {
    /// Validates `assertion` presented by the authenticated `client` at `now` (seconds since
    /// the epoch, from the provider's clock).
    ///
    /// A broken rule is a [`TokenError`] with `invalid_grant` (or `invalid_target` for the
    /// resource) and a description naming the rule; the description never echoes the
    /// assertion. Failing to fetch keys is a [`TokenError::Provider`] of kind unavailable.
    async fn validate_identity_assertion(
        &self,
        client: &OAuthClientInformationFull,
        assertion: &Assertion,
        now: i64,
    ) -> Result<IdentityAssertionGrant, TokenError>;
}

/// A verified RFC 7523 §2.2 client assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedClientAssertion {
    /// `jti`: the assertion's unique id, for replay protection.
    pub jti: String,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
    /// How long `jti` must be remembered: `exp` plus the verifier's clock leeway.
    pub replay_until: i64,
}

impl VerifiedClientAssertion {
    /// A verified assertion; `replay_until` = `expires_at`.
    pub fn new(jti: impl Into<String>, expires_at: i64) -> Self {
        Self {
            jti: jti.into(),
            expires_at,
            replay_until: expires_at,
        }
    }
}

/// Why a client assertion was not accepted. The handlers answer `401 invalid_client` for
/// [`Rejected`](Self::Rejected) and a generic server error for [`Provider`](Self::Provider).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAssertionError {
    /// The assertion breaks a rule of RFC 7523 §3 or the client's registration.
    #[error("client assertion rejected: {description}")]
    Rejected {
        /// The broken rule, for the client developer; never the assertion itself.
        description: String,
    },
    /// Keys could not be fetched, or storage failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl ClientAssertionError {
    /// A rejection naming the broken rule.
    pub fn rejected(description: impl Into<String>) -> Self {
        Self::Rejected {
            description: description.into(),
        }
    }
}

impl From<crate::StorageError> for ClientAssertionError {
    fn from(error: crate::StorageError) -> Self {
        Self::Provider(error.into())
    }
}

/// Verifies `private_key_jwt` client assertions (RFC 7523 §2.2 and §3, OIDC Core §9).
///
/// An implementation checks the signature against a key of the client's registered `jwks` or
/// `jwks_uri`, `iss` = `sub` = the client's id, `aud` among `audiences`, `exp` (required) and
/// `nbf`/`iat`, and that `jti` is present. Like [`IdentityAssertionValidator`] it does not track
/// `jti`; the caller does, with the same bounds on `jti` and `replay_until`.
#[async_trait]
pub trait ClientAssertionVerifier: Send + Sync + 'static {
    /// The JWS algorithms this verifier accepts (`alg` values, e.g. `ES256`): what the server
    /// advertises as `token_endpoint_auth_signing_alg_values_supported`.
    fn signing_algorithms(&self) -> Vec<String>;

    /// Verifies `assertion` for `client` at `now`. `audiences` are the values the assertion's
    /// `aud` may take: this server's issuer identifier and its token endpoint URL.
    async fn verify_client_assertion(
        &self,
        client: &OAuthClientInformationFull,
        assertion: &Assertion,
        audiences: &[String],
        now: i64,
    ) -> Result<VerifiedClientAssertion, ClientAssertionError>;
}
