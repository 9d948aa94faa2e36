#![doc = include_str!("../README.md")]

mod http;
pub mod limits;
mod metadata;
mod relying_party;

pub use mcp_auth_jwt::{IdTokenClaims, IdTokenError};
pub use metadata::ClientAuthentication;
pub use relying_party::{
    Callback, OidcRelyingParty, OidcRelyingPartyBuilder, PendingSignIn, SignInStart,
};

/// Who the provider vouches for, and the tokens it gave for them.
#[derive(Debug, Clone)]
pub struct FederatedUser {
    /// The validated ID token's claims.
    pub claims: IdTokenClaims,
    /// The provider's tokens (for tools that act on the user's behalf).
    pub tokens: UpstreamTokens,
}

/// The provider's access and refresh tokens. `Debug` shows neither; they serialize (as JSON)
/// only to be sealed before they are stored.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct UpstreamTokens {
    /// The provider's access token.
    pub access_token: String,
    /// The provider's refresh token, if it gave one.
    pub refresh_token: Option<String>,
    /// When the access token expires, seconds since the epoch, if the provider said.
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in at the provider did not succeed. None of the variants carries a token, a
/// code or the provider's error text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The provider could not be reached, or answered with a server error: the provider's
    /// trouble (`server_error` to the MCP client, 503 on a page).
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused the sign-in (`access_denied`, `login_required`, …).
    #[error("the identity provider refused the sign-in: {error}")]
    Denied {
        /// The OAuth error code it sent (checked to look like one).
        error: String,
    },
    /// The callback's `state` is missing or not this sign-in's: forged, replayed, or from
    /// another browser.
    #[error("the callback does not answer this sign-in (state)")]
    StateMismatch,
    /// The callback's `iss` names another provider (a mix-up attack, RFC 9207).
    #[error("the callback comes from another identity provider (iss)")]
    IssuerMismatch,
    /// The sign-in started more than [`SIGN_IN_LIFETIME`](limits::SIGN_IN_LIFETIME) ago.
    #[error("the sign-in took too long; start again")]
    Expired,
    /// The token endpoint refused the code (used, expired, or not ours).
    #[error("the identity provider refused the code: {error}")]
    TokenRefused {
        /// The OAuth error code (checked to look like one).
        error: String,
    },
    /// The ID token failed a check.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// The provider's answer is not what OpenID Connect describes.
    #[error("{0}")]
    Invalid(&'static str),
}

impl OidcError {
    /// Whether the provider (or this server's link to it) is at fault rather than the user
    /// or an attacker: answered `server_error`/503 rather than `access_denied`.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::IdToken(IdTokenError::Keys(_) | IdTokenError::Unavailable(_))
        )
    }
}

/// A setting the relying party refused.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct OidcConfigError {
    /// The setting.
    pub setting: &'static str,
    /// Why.
    pub reason: String,
}

impl OidcConfigError {
    pub(crate) fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }
}
