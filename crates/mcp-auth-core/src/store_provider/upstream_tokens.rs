//! Upstream tokens per grant: when the user signed in through an upstream OpenID Provider and
//! the server keeps that provider's tokens, they are stored with the grant the sign-in starts,
//! so that a tool called with one of the grant's access tokens can act on the user's behalf
//! upstream.
//!
//! The provider never sees them in the clear: the server seals them before they get here and
//! opens them after, and storage holds only the sealed text ([`UpstreamTokenRecord`]). They
//! live exactly as long as the grant may: every revocation of the grant deletes them (see
//! `StoreProvider::revoke_grant`), and the purge removes them at the grant's end.

use mcp_auth_types::AccessTokenSecret;

use super::{StoreProvider, secs};
use crate::error::{AuthorizeError, ProviderError};
use crate::provider::OAuthAuthorizationServerProvider;
use crate::storage::{Storage, UpstreamTokenRecord};

/// How long upstream tokens are kept, in seconds, when the provider has no absolute grant
/// lifetime ([`grant_lifetime`](super::StoreProviderBuilder::grant_lifetime) is `None`): 90
/// days. Such a grant can be refreshed for ever, but sealed credentials of another provider
/// should not sit in storage for ever; after 90 days its tools find no upstream tokens and
/// the user signs in again, and a grant that simply stops being used leaves nothing behind
/// longer than that.
pub const DEFAULT_UPSTREAM_TOKEN_LIFETIME: u64 = 90 * 24 * 3600;

impl<S: Storage> StoreProvider<S> {
    /// [`complete_authorization`](Self::complete_authorization), keeping `sealed` (the
    /// upstream provider's tokens, sealed by the caller) with the grant the new code starts,
    /// until the grant's end (its absolute lifetime, or [`DEFAULT_UPSTREAM_TOKEN_LIFETIME`]).
    ///
    /// The record is stored before the code, so that no token of the grant ever exists
    /// without it; if storing the code then fails, the record stays unreachable (no token
    /// names its grant) until the purge removes it.
    pub async fn complete_authorization_with_upstream_tokens(
        &self,
        request_id: &str,
        subject: &str,
        sealed: String,
    ) -> Result<String, AuthorizeError> {
        self.issue_code(request_id, subject, Some(sealed)).await
    }

    /// The upstream tokens of the grant `token` belongs to, or `None` when the token is not a
    /// live access token of this provider (unknown, expired or revoked) or its grant has none.
    ///
    /// The token is verified exactly as the bearer layer verifies it (the same lookup, caches
    /// included), so only a request that would be let through can reach the grant's upstream
    /// credentials.
    pub async fn upstream_tokens(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<UpstreamTokenRecord>, ProviderError> {
        let Some(access) = self.load_access_token(token).await? else {
            return Ok(None);
        };
        Ok(self
            .storage
            .get_upstream_tokens(access.grant_id(), self.now())
            .await?)
    }

    /// Replaces a grant's upstream tokens, after the caller refreshed them at the upstream
    /// provider (whose refresh tokens may rotate, so the old sealed text may be dead). Keep the
    /// `expires_at` of the record being replaced: the grant's end has not moved.
    ///
    /// A replacement racing a revocation of the grant may store the record again after the
    /// revocation deleted it; it is then unreachable, since no token of a revoked grant is
    /// ever live again, and the purge removes it at `expires_at`.
    pub async fn replace_upstream_tokens(
        &self,
        record: &UpstreamTokenRecord,
    ) -> Result<(), ProviderError> {
        Ok(self.storage.put_upstream_tokens(record).await?)
    }

    /// When upstream tokens stored now must go: the end of a grant starting now.
    pub(super) fn upstream_tokens_end(&self) -> i64 {
        let lifetime = self
            .config
            .grant_lifetime
            .unwrap_or(DEFAULT_UPSTREAM_TOKEN_LIFETIME);
        self.now().saturating_add(secs(lifetime))
    }
}
