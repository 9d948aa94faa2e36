//! [`SigningKeyStore`] for [`PostgresStore`](super::PostgresStore).

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::storage::{SigningKeyRecord, SigningKeyStore};

use super::{PostgresStore, storable};
use crate::error::storage_error;
use crate::signing_key::{KeyRow, SELECT_KEYS, key_record};

#[async_trait]
impl SigningKeyStore for PostgresStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        let rows: Vec<KeyRow> = sqlx::query_as(SELECT_KEYS)
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(rows.into_iter().map(key_record).collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StorageError> {
        // Every text column is checked, not only the key's id: a key that cannot be stored
        // whole is refused with a typed error rather than failing the statement.
        storable("signing key kid", &key.kid)?;
        storable("signing key algorithm", &key.algorithm)?;
        storable("signing key public JWK", &key.public_jwk)?;
        storable("signing key private key", &key.private_key)?;
        // Concurrent inserts of one generation queue on the primary key; the first commits and
        // the others find its row and do nothing. Only the generation is the conflict target,
        // so a `kid` stored under another generation fails the unique index (a conflict, see
        // `storage_error`).
        let done = sqlx::query(
            "INSERT INTO signing_keys \
             (generation, kid, algorithm, public_jwk, private_key, created_at, activates_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (generation) DO NOTHING",
        )
        .bind(key.generation)
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_jwk)
        .bind(&key.private_key)
        .bind(key.created_at)
        .bind(key.activates_at)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE generation < $1")
            .bind(generation)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected())
    }
}
