//! Rules shared by both databases for the `grants` table.

use mcp_auth_core::StorageError;
use mcp_auth_core::storage::{AccessTokenRecord, RefreshTokenRecord};

/// How long a grant's row must outlive the tokens being stored: until the later expiry. Also
/// refuses a pair whose tokens name different grants, which would escape revocation of one of
/// them.
pub(crate) fn grant_keep_until(
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
) -> Result<i64, StorageError> {
    match refresh {
        None => Ok(access.expires_at),
        Some(refresh) if refresh.grant_id == access.grant_id => {
            Ok(access.expires_at.max(refresh.expires_at))
        }
        Some(_) => Err(StorageError::other(
            "access and refresh token of one issuance belong to different grants",
        )),
    }
}

/// A rotation stays inside the grant of the token it rotates; new tokens under another grant
/// id would survive the revocation of the family they descend from.
pub(crate) fn check_same_grant(
    grant_id: &str,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
) -> Result<(), StorageError> {
    if access.grant_id == grant_id && refresh.is_none_or(|refresh| refresh.grant_id == grant_id) {
        Ok(())
    } else {
        Err(StorageError::other(
            "rotated tokens must belong to the grant of the token they replace",
        ))
    }
}
