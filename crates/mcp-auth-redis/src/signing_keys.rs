//! Access-token signing keys: one hash, from generation to the key's JSON.
//!
//! The keys never expire by themselves: a key goes only when its owner retires it
//! ([`delete_signing_keys_before`](SigningKeyStore::delete_signing_keys_before)), since a key
//! that vanished early would fail every token it signed.

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::storage::{SigningKeyRecord, SigningKeyStore};

use crate::error::corrupt;
use crate::records::{decode, encode};
use crate::store::{DELETE_SIGNING_KEYS_BEFORE, INSERT_SIGNING_KEY, RedisStore};

#[async_trait]
impl SigningKeyStore for RedisStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        let stored: Vec<String> = self
            .query(redis::cmd("HVALS").arg(self.keys.signing_keys()))
            .await?;
        let mut keys = stored
            .iter()
            .map(|json| decode::<SigningKeyRecord>("signing key", json))
            .collect::<Result<Vec<_>, _>>()?;
        // A hash has no order of its own.
        keys.sort_by_key(|key| key.generation);
        Ok(keys)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StorageError> {
        let stored: i64 = self
            .invoke(
                INSERT_SIGNING_KEY
                    .key(self.keys.signing_keys())
                    .arg(key.generation)
                    .arg(&key.kid)
                    .arg(encode(key)?),
            )
            .await?;
        match stored {
            0 => Ok(false),
            1 => Ok(true),
            2 => Err(StorageError::conflict(format!(
                "a signing key with kid {:?} is stored under another generation",
                key.kid
            ))),
            other => Err(corrupt("insert_signing_key reply", other)),
        }
    }

    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StorageError> {
        self.invoke(
            DELETE_SIGNING_KEYS_BEFORE
                .key(self.keys.signing_keys())
                .arg(generation),
        )
        .await
    }
}
