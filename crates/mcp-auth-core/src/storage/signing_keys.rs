//! The keys an authorization server signs its JWT access tokens with, kept in storage so that
//! every instance of a deployment signs with, and publishes, the same keys.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// One signing key as stored.
///
/// Storage treats every field as opaque text or a number: the key's owner
/// (`mcp_auth_jwt::SigningKeys`) decides what they mean, and seals `private_key` (AES-256-GCM)
/// when the operator gives it a secret key. `generation` orders the keys and is unique: the
/// rotation that inserts generation *n + 1* happens once, however many instances race to do it.
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SigningKeyRecord {
    /// Position in the rotation, from 1; unique.
    pub generation: i64,
    /// The key id (`kid`) tokens name it by: its RFC 7638 thumbprint.
    pub kid: String,
    /// The JWS algorithm (`ES256`, `EdDSA`, `RS256`).
    pub algorithm: String,
    /// The public key as a JWK (a JSON object), as published at `jwks_uri`.
    pub public_jwk: String,
    /// The private key, encoded (and sealed, when a secret key is configured) by its owner.
    pub private_key: String,
    /// When it was stored, seconds since the epoch; it is published from then on.
    pub created_at: i64,
    /// From when it signs, seconds since the epoch. A key is published before it signs, so that
    /// resource servers holding a cached key set know it before they meet a token it signed.
    pub activates_at: i64,
}

impl SigningKeyRecord {
    /// A record of generation `generation`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        generation: i64,
        kid: String,
        algorithm: String,
        public_jwk: String,
        private_key: String,
        created_at: i64,
        activates_at: i64,
    ) -> Self {
        Self {
            generation,
            kid,
            algorithm,
            public_jwk,
            private_key,
            created_at,
            activates_at,
        }
    }
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("generation", &self.generation)
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// Access-token signing keys. A deployment holds a handful (the signing key, the next one
/// published ahead of it, the previous ones until the tokens they signed have expired), so the
/// whole set is read at once.
///
/// The text fields are opaque: a backend stores any string faithfully, or refuses one it cannot
/// hold (PostgreSQL text cannot hold NUL) with a [`StorageError`] and stores nothing of that
/// key. It never panics on one.
#[async_trait]
pub trait SigningKeyStore: Send + Sync + 'static {
    /// Every stored key, by increasing `generation`.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError>;

    /// Stores `key` unless a key of the same generation is stored — insert if absent,
    /// atomically, so that of several instances rotating at once exactly one succeeds. Returns
    /// whether it was stored; a duplicate `kid` under another generation is a
    /// [`StorageErrorKind::Conflict`](crate::StorageErrorKind). The generation is checked first:
    /// a key whose generation is stored returns `Ok(false)` whatever its `kid`, so retrying an
    /// insert that succeeded is harmless.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StorageError>;

    /// Deletes the keys of generations below `generation` (keys retired for longer than any
    /// token they signed lives), comparing generations exactly as integers; returns how many.
    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StorageError>;
}

#[async_trait]
impl<T: SigningKeyStore + ?Sized> SigningKeyStore for Arc<T> {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        (**self).signing_keys().await
    }
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StorageError> {
        (**self).insert_signing_key(key).await
    }
    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StorageError> {
        (**self).delete_signing_keys_before(generation).await
    }
}
