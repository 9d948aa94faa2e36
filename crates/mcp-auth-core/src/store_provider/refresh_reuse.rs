//! The refresh-token reuse interval (`StoreProviderBuilder::refresh_reuse_interval`): a token
//! rotated moments ago gets a further pair of its grant instead of revoking it.

use mcp_auth_types::{OAuthClientInformationFull, OAuthToken, RefreshToken, RefreshTokenSecret};

use super::{StoreProvider, StoredRefreshToken, invalid_grant, secs};
use crate::audit;
use crate::error::{ProviderError, TokenError};
use crate::secrets::SecretHash;
use crate::storage::{AccessTokenRecord, RefreshTokenRecord, Storage};

impl<S: Storage> StoreProvider<S> {
    /// The grant record of `hash`, a refresh token of `client` rotated no longer than the
    /// reuse interval ago; `None` when the interval is 0 or has passed.
    pub(super) async fn recently_rotated(
        &self,
        hash: &SecretHash,
        client: &OAuthClientInformationFull,
    ) -> Result<Option<RefreshTokenRecord>, ProviderError> {
        if self.config.refresh_reuse_interval == 0 {
            return Ok(None);
        }
        let now = self.now();
        Ok(self
            .storage
            .refresh_token_rotation(hash, now)
            .await?
            .filter(|(rotated_at, record)| {
                now - rotated_at <= secs(self.config.refresh_reuse_interval)
                    && record.client_id == client.client_id
            })
            .map(|(_, record)| record))
    }

    /// Stores a further pair for the grant of a refresh token rotated within the reuse
    /// interval, leaving the pair the rotation issued working: of two refreshes racing with
    /// one token, both callers end up with working tokens and the grant survives.
    pub(super) async fn reissue(
        &self,
        client: &OAuthClientInformationFull,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        response: OAuthToken,
    ) -> Result<OAuthToken, TokenError> {
        if !self.store_new_tokens(access, refresh).await? {
            return Err(invalid_grant());
        }
        // At WARN: a legitimate client racing itself looks exactly like a thief replaying a
        // token within the interval, and each such pair starts a refresh chain of its own.
        crate::audit_event!(
            warn: audit::REFRESH_REUSED_WITHIN_INTERVAL,
            client_id = %client.client_id,
            subject = access.subject.as_deref().unwrap_or(""),
            grant_id = %access.grant_id,
            scope = %access.scopes.join(" "),
        );
        Ok(response)
    }
}

/// The provider's refresh token for `record`, presented as `token`.
pub(super) fn loaded_refresh_token(
    token: &RefreshTokenSecret,
    record: RefreshTokenRecord,
    reissue: bool,
) -> StoredRefreshToken {
    let mut loaded = RefreshToken::new(
        token.clone(),
        record.client_id.clone(),
        record.scopes.clone(),
    );
    loaded.expires_at = Some(record.expires_at);
    loaded.subject = record.subject.clone();
    loaded.resource = record.resource.clone();
    StoredRefreshToken {
        token: loaded,
        record,
        reissue,
    }
}
