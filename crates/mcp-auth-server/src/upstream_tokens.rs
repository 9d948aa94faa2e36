//! `--oidc-keep-tokens`: the OpenID Provider's tokens of each federated grant, sealed at rest,
//! handed to what acts on the user's behalf — a tool handler, or the gateway's
//! `X-MCP-Auth-Upstream-Token` — and refreshed at the provider when they expire.
//!
//! The tokens reach storage only sealed (AES-256-GCM under a key derived from
//! `--secret-key-file` for this purpose alone), live as long as their grant, and go with it:
//! every revocation of the grant deletes them. A tool handler finds the source in the HTTP
//! request's extensions and asks it for the verified principal's token:
//!
//! ```text
//! let source = parts.extensions.get::<Arc<UpstreamTokenSource>>();
//! let token = source.access_token(&authenticated.token().token).await?;
//! ```

use std::sync::Arc;

use mcp_auth_core::{ErrorChain, UpstreamTokenRecord};
use mcp_auth_jwt::SealingKey;
use mcp_auth_oidc::{OidcRelyingParty, UpstreamTokens};
use mcp_auth_types::{AccessToken, AccessTokenSecret};

use crate::sign_in::Provider;

/// The HKDF purpose of the key that seals the provider's tokens.
pub(crate) const TOKENS_KEY_PURPOSE: &str = "upstream tokens at rest";

/// The additional data of every sealed record.
const SEAL_CONTEXT: &str = "oidc upstream tokens";

/// A token this close to its expiry (seconds) is refreshed first: it must still be valid
/// when the upstream service receives it.
const REFRESH_MARGIN: i64 = 30;

/// Why the provider's token cannot be had now.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamTokenError {
    /// The store did not answer.
    #[error("the store cannot be read: {0}")]
    Storage(String),
    /// The sealed record does not open with this server's secret key.
    #[error("the stored tokens do not open with this secret key")]
    Sealed,
    /// The token expired, and the provider gave no refresh token or refused it.
    #[error("the provider's token expired and cannot be refreshed: {0}")]
    Expired(String),
}

/// The provider's tokens of each federated grant, sealed, refreshed on demand.
pub struct UpstreamTokenSource {
    provider: Arc<Provider>,
    relying_party: OidcRelyingParty,
    key: SealingKey,
    /// One refresh at a time: providers that rotate refresh tokens refuse the second of two
    /// concurrent refreshes (and may revoke the grant for it).
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for UpstreamTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokenSource")
            .field("relying_party", &self.relying_party)
            .finish_non_exhaustive()
    }
}

impl UpstreamTokenSource {
    pub(crate) fn new(
        provider: Arc<Provider>,
        relying_party: OidcRelyingParty,
        key: SealingKey,
    ) -> Self {
        Self {
            provider,
            relying_party,
            key,
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// `tokens` sealed for storage.
    pub(crate) fn seal(&self, tokens: &UpstreamTokens) -> Option<String> {
        let json = serde_json::to_vec(tokens).ok()?;
        self.key.seal_text(SEAL_CONTEXT, &json).ok()
    }

    fn open(&self, record: &UpstreamTokenRecord) -> Result<UpstreamTokens, UpstreamTokenError> {
        let json = self
            .key
            .open_text(SEAL_CONTEXT, &record.sealed)
            .map_err(|_| UpstreamTokenError::Sealed)?;
        serde_json::from_slice(&json).map_err(|_| UpstreamTokenError::Sealed)
    }

    /// The provider's access token for the grant of the valid access token `token`:
    /// `Ok(None)` when the grant has none (a local user, or a token unknown, expired or
    /// revoked here), refreshed at the provider first when it expired or is about to.
    pub async fn access_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<String>, UpstreamTokenError> {
        let Some(tokens) = self.current(token).await? else {
            return Ok(None);
        };
        if is_fresh(&tokens) {
            return Ok(Some(tokens.access_token));
        }
        let _refreshing = self.refreshing.lock().await;
        // Another request may have refreshed while this one waited.
        let Some(record) = self.record(token).await? else {
            return Ok(None);
        };
        let tokens = self.open(&record)?;
        if is_fresh(&tokens) {
            return Ok(Some(tokens.access_token));
        }
        let refresh_token = tokens
            .refresh_token
            .ok_or_else(|| UpstreamTokenError::Expired("no refresh token".to_owned()))?;
        let fresh = self
            .relying_party
            .refresh(&refresh_token)
            .await
            .map_err(|err| UpstreamTokenError::Expired(err.to_string()))?;
        let sealed = self.seal(&fresh).ok_or(UpstreamTokenError::Sealed)?;
        self.provider
            .replace_upstream_tokens(&UpstreamTokenRecord::new(
                record.grant_id,
                sealed,
                record.expires_at,
            ))
            .await
            .map_err(|err| UpstreamTokenError::Storage(ErrorChain(&err).to_string()))?;
        Ok(Some(fresh.access_token))
    }

    async fn record(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<UpstreamTokenRecord>, UpstreamTokenError> {
        self.provider
            .upstream_tokens(token)
            .await
            .map_err(|err| UpstreamTokenError::Storage(ErrorChain(&err).to_string()))
    }

    async fn current(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<UpstreamTokens>, UpstreamTokenError> {
        match self.record(token).await? {
            Some(record) => self.open(&record).map(Some),
            None => Ok(None),
        }
    }
}

fn is_fresh(tokens: &UpstreamTokens) -> bool {
    tokens
        .expires_at
        .is_none_or(|expires_at| expires_at > now().saturating_add(REFRESH_MARGIN))
}

fn now() -> i64 {
    mcp_auth_core::Clock::now(&mcp_auth_core::SystemClock)
}

/// The gateway's `X-MCP-Auth-Upstream-Token` (`--forward-upstream-token`).
#[async_trait::async_trait]
impl mcp_auth_gateway::PrincipalCredential for UpstreamTokenSource {
    async fn credential(&self, token: &AccessToken) -> Result<Option<String>, String> {
        self.access_token(&token.token)
            .await
            .map_err(|err| err.to_string())
    }
}
