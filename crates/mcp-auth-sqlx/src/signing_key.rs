//! Rules shared by both databases for the `signing_keys` table.

use mcp_auth_core::storage::SigningKeyRecord;

/// Every key, by increasing generation: the same statement in both dialects (no parameters).
pub(crate) const SELECT_KEYS: &str = "SELECT generation, kid, algorithm, public_jwk, private_key, \
     created_at, activates_at FROM signing_keys ORDER BY generation";

/// A row of [`SELECT_KEYS`], column by column.
pub(crate) type KeyRow = (i64, String, String, String, String, i64, i64);

/// The record a row of [`SELECT_KEYS`] holds.
pub(crate) fn key_record(row: KeyRow) -> SigningKeyRecord {
    let (generation, kid, algorithm, public_jwk, private_key, created_at, activates_at) = row;
    SigningKeyRecord::new(
        generation,
        kid,
        algorithm,
        public_jwk,
        private_key,
        created_at,
        activates_at,
    )
}
