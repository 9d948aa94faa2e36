//! Access and refresh tokens, grouped in grants.
//!
//! Each grant has a set of its access-token keys and one of its refresh-token keys, and a
//! revoked grant a marker key. The scripts that issue, rotate and revoke read and change these
//! together, atomically, which is what makes revocation linearizable with rotation.

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{
    AccessTokenRecord, RefreshLookup, RefreshTokenRecord, Rotation, TokenStore,
};

use crate::error::corrupt;
use crate::keys::Index;
use crate::records::{decode, encode};
use crate::store::{ISSUE_TOKENS, REVOKE_GRANT, ROTATE_REFRESH_TOKEN, RedisStore};

#[async_trait]
impl TokenStore for RedisStore {
    async fn issue_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError> {
        let grant = &access.grant_id;
        let mut invocation = ISSUE_TOKENS.prepare_invoke();
        invocation
            .key(self.keys.revoked(grant))
            .key(self.keys.grant_access(grant))
            .key(self.keys.grant_refresh(grant))
            .key(self.keys.index(Index::Tokens))
            .key(self.keys.index(Index::Grants))
            .key(self.keys.access(&access.token_hash))
            .arg(grant)
            .arg(encode(access)?)
            .arg(access.expires_at);
        if let Some(refresh) = refresh {
            if refresh.grant_id != *grant {
                return Err(StorageError::other(
                    "access and refresh token of one issuance belong to different grants",
                ));
            }
            invocation
                .key(self.keys.refresh(&refresh.token_hash))
                .arg(encode(refresh)?)
                .arg(refresh.expires_at);
        }
        let issued: i64 = self.invoke(&invocation).await?;
        Ok(issued == 1)
    }

    async fn get_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StorageError> {
        // One GET: this runs on every protected request.
        let json: Option<String> = self
            .query(redis::cmd("GET").arg(self.keys.access(token_hash)))
            .await?;
        let Some(json) = json else { return Ok(None) };
        let record: AccessTokenRecord = decode("access token", &json)?;
        Ok((record.expires_at > now).then_some(record))
    }

    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RefreshLookup>, StorageError> {
        let (json, rotated): (Option<String>, Option<String>) = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.refresh(token_hash))
                    .arg("record")
                    .arg("rotated"),
            )
            .await?;
        let Some(json) = json else { return Ok(None) };
        let record: RefreshTokenRecord = decode("refresh token", &json)?;
        if record.expires_at <= now {
            return Ok(None);
        }
        Ok(Some(if rotated.as_deref() == Some("1") {
            RefreshLookup::Rotated {
                grant_id: record.grant_id,
            }
        } else {
            RefreshLookup::Active(record)
        }))
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> Result<Rotation, StorageError> {
        let grant = &access.grant_id;
        let mut invocation = ROTATE_REFRESH_TOKEN.prepare_invoke();
        invocation
            .key(self.keys.refresh(old_hash))
            .key(self.keys.revoked(grant))
            .key(self.keys.grant_access(grant))
            .key(self.keys.grant_refresh(grant))
            .key(self.keys.index(Index::Tokens))
            .key(self.keys.index(Index::Grants))
            .key(self.keys.access(&access.token_hash))
            .arg(now)
            .arg(grant)
            .arg(encode(access)?)
            .arg(access.expires_at);
        if let Some(refresh) = refresh {
            if refresh.grant_id != *grant {
                return Err(mismatched_grant());
            }
            invocation
                .key(self.keys.refresh(&refresh.token_hash))
                .arg(encode(refresh)?)
                .arg(refresh.expires_at);
        }
        let (state, grant_id): (i64, String) = self.invoke(&invocation).await?;
        match state {
            0 => Ok(Rotation::Missing),
            1 => Ok(Rotation::Rotated),
            2 => Ok(Rotation::Reused { grant_id }),
            3 => Err(mismatched_grant()),
            other => Err(corrupt("rotate reply", other)),
        }
    }

    async fn refresh_token_rotation(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<(i64, RefreshTokenRecord)>, StorageError> {
        let (json, rotated, rotated_at): (Option<String>, Option<String>, Option<i64>) = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.refresh(token_hash))
                    .arg("record")
                    .arg("rotated")
                    .arg("rotated_at"),
            )
            .await?;
        let (Some(json), Some(rotated_at)) = (json, rotated_at) else {
            return Ok(None);
        };
        if rotated.as_deref() != Some("1") {
            return Ok(None);
        }
        let record: RefreshTokenRecord = decode("refresh token", &json)?;
        Ok((record.expires_at > now).then_some((rotated_at, record)))
    }

    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        self.invoke::<()>(
            REVOKE_GRANT
                .key(self.keys.revoked(grant_id))
                .key(self.keys.grant_access(grant_id))
                .key(self.keys.grant_refresh(grant_id))
                .key(self.keys.index(Index::Tokens))
                .arg(keep_until),
        )
        .await
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError> {
        let purged = self.purge(Index::Tokens, now).await?;
        // Grant sets are bookkeeping: they go with their last token but are not counted.
        self.purge(Index::Grants, now).await?;
        Ok(purged)
    }
}

/// New tokens under another grant id than the token they replace would escape the revocation
/// of the family they descend from.
fn mismatched_grant() -> StorageError {
    StorageError::other("rotated tokens must belong to the grant of the token they replace")
}
