//! Upstream tokens per grant: one hash per grant (`sealed`, `expires_at`), expiring with the
//! record and filed in its expiry index like every other expiring record, so that Redis drops
//! it at the grant's end by itself and `purge_expired_upstream_tokens` finds it by the
//! caller's clock.

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::storage::{UpstreamTokenRecord, UpstreamTokenStore};

use crate::error::corrupt;
use crate::keys::Index;
use crate::store::{DELETE, INSERT, RedisStore};

#[async_trait]
impl UpstreamTokenStore for RedisStore {
    async fn put_upstream_tokens(&self, record: &UpstreamTokenRecord) -> Result<(), StorageError> {
        // The insert script replaces the key whole (`DEL`, then `HSET`), so a refresh never
        // leaves a mix of old and new fields.
        self.invoke::<()>(
            INSERT
                .key(self.keys.upstream(&record.grant_id))
                .key(self.keys.index(Index::Upstream))
                .arg(record.expires_at)
                .arg("hash")
                .arg("sealed")
                .arg(&record.sealed)
                .arg("expires_at")
                .arg(record.expires_at),
        )
        .await
    }

    async fn get_upstream_tokens(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Option<UpstreamTokenRecord>, StorageError> {
        let (sealed, expires_at): (Option<String>, Option<String>) = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.upstream(grant_id))
                    .arg("sealed")
                    .arg("expires_at"),
            )
            .await?;
        let (Some(sealed), Some(expires_at)) = (sealed, expires_at) else {
            return Ok(None);
        };
        let expires_at: i64 = expires_at
            .parse()
            .map_err(|err| corrupt("upstream tokens expiry", err))?;
        // Redis expires the key by its own clock; the caller's `now` decides what has expired.
        Ok((expires_at > now).then(|| UpstreamTokenRecord::new(grant_id, sealed, expires_at)))
    }

    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StorageError> {
        self.invoke::<i64>(
            DELETE
                .key(self.keys.upstream(grant_id))
                .key(self.keys.index(Index::Upstream)),
        )
        .await?;
        Ok(())
    }

    async fn purge_expired_upstream_tokens(&self, now: i64) -> Result<u64, StorageError> {
        self.purge(Index::Upstream, now).await
    }
}
