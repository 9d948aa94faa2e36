//! [`SigningKeyStore`] for [`SqliteStore`](super::SqliteStore).

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::storage::{SigningKeyRecord, SigningKeyStore};

use super::SqliteStore;
use crate::error::storage_error;
use crate::signing_key::{KeyRow, SELECT_KEYS, key_record};

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        let rows: Vec<KeyRow> = sqlx::query_as(SELECT_KEYS)
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(rows.into_iter().map(key_record).collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StorageError> {
        // One statement: of concurrent inserts of one generation, one stores its row and the
        // others change nothing. The conflict target is the generation only, so a `kid` stored
        // under another generation still fails the unique index, which `storage_error` reports
        // as a conflict.
        let done = sqlx::query(
            "INSERT INTO signing_keys \
             (generation, kid, algorithm, public_jwk, private_key, created_at, activates_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (generation) DO NOTHING",
        )
        .bind(key.generation)
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_jwk)
        .bind(&key.private_key)
        .bind(key.created_at)
        .bind(key.activates_at)
        .execute(&self.writer)
        .await
        .map_err(storage_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE generation < ?1")
            .bind(generation)
            .execute(&self.writer)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected())
    }
}
