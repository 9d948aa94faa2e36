//! Records as JSON text, the payload column of every table.
//!
//! The columns a query filters on (hash, grant id, expiry, flags) are real, indexed columns;
//! the rest of a record travels as JSON so that a field added to a `#[non_exhaustive]` record
//! type needs no migration. Hashes inside the JSON are hex SHA-256 values, never credentials.

use mcp_auth_core::StorageError;
use mcp_auth_core::storage::ClientRecord;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::corrupt;

/// Serialises a record for the payload column.
pub(crate) fn encode<T: Serialize>(record: &T) -> Result<String, StorageError> {
    serde_json::to_string(record).map_err(StorageError::other)
}

/// Serialises a client, dropping a raw secret that a caller left in `info` by mistake: only
/// its hash may be stored.
pub(crate) fn encode_client(client: &ClientRecord) -> Result<String, StorageError> {
    if client.info.client_secret.is_none() {
        return encode(client);
    }
    let mut client = client.clone();
    client.info.client_secret = None;
    encode(&client)
}

/// Parses a payload column; corrupt JSON is a storage failure, never a panic.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    json: &str,
) -> Result<T, StorageError> {
    serde_json::from_str(json).map_err(|err| corrupt(what, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_json_is_an_error_not_a_panic() {
        let err = decode::<ClientRecord>("client", "{not json").unwrap_err();
        assert_eq!(err.kind(), mcp_auth_core::StorageErrorKind::Other);
    }
}
