//! Self-contained (JWT) access tokens: the contract between [`StoreProvider`](crate::StoreProvider),
//! which decides what a token says, and a signer, which holds the keys
//! (`mcp_auth_jwt::JwtAccessTokenSigner`).

use std::sync::Arc;

use crate::error::ProviderError;

/// What an RFC 9068 access token asserts (§2.2): everything a resource server on another host
/// needs to accept it without asking this server.
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenClaims<'a> {
    /// `iss`: this authorization server.
    pub issuer: &'a str,
    /// `sub`: the resource owner, or the client itself when it acts in its own name (client
    /// credentials), as RFC 9068 §2.2 asks.
    pub subject: &'a str,
    /// `aud`: the RFC 8707 resource the token was issued for; `None` when the request named
    /// none, and the signer puts its default audience instead.
    pub audience: Option<&'a str>,
    /// `client_id`.
    pub client_id: &'a str,
    /// `scope`, space-separated once signed.
    pub scopes: &'a [String],
    /// `iat`, seconds since the epoch.
    pub issued_at: i64,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
    /// `jti`: 128 random bits, unique per token.
    pub jwt_id: &'a str,
}

/// Signs access tokens, and publishes the keys that verify them.
///
/// Given one ([`StoreProviderBuilder::access_token_signer`](crate::StoreProviderBuilder::access_token_signer)),
/// a `StoreProvider` issues JWTs instead of random strings. It still stores each token's record
/// under the token's hash exactly as for an opaque token, so revocation, introspection and this
/// server's own bearer check work unchanged (and need no signature check: a stored hash proves
/// the token is ours and live); resource servers elsewhere verify the signature against
/// [`key_set`](Self::key_set), published at `jwks_uri`.
pub trait AccessTokenSigner: Send + Sync + 'static {
    /// The signed token (a compact JWS). Signing must not wait: the keys are in memory. An
    /// error is a [`ProviderError`] (no usable key: the token endpoint answers 503), never a
    /// token without a signature.
    fn sign(&self, claims: &AccessTokenClaims<'_>) -> Result<String, ProviderError>;

    /// The JWK Set (RFC 7517 §5) document, as JSON: every key a live token may be signed
    /// with, including keys published ahead of their use and retired keys whose tokens may
    /// not have expired yet. Public keys only.
    fn key_set(&self) -> Arc<str>;
}
