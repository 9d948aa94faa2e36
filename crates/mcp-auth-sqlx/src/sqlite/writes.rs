//! The token writes of [`SqliteStore`](super::SqliteStore), each inside a `BEGIN IMMEDIATE`
//! transaction the caller opened and this module commits. They run detached from the request
//! (see [`crate::detach`]); an early return drops the transaction, which rolls it back.

use mcp_auth_core::StorageError;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{AccessTokenRecord, RefreshTokenRecord, Rotation};
use sqlx::{Sqlite, Transaction};

use super::key;
use crate::codec::encode;
use crate::error::storage_error;
use crate::grant::check_same_grant;

type Tx = Transaction<'static, Sqlite>;

/// Stores one access token inside a write transaction.
async fn insert_access(tx: &mut Tx, access: &AccessTokenRecord) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, grant_id, expires_at, record) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(key(&access.token_hash))
    .bind(&access.grant_id)
    .bind(access.expires_at)
    .bind(encode(access)?)
    .execute(&mut **tx)
    .await
    .map_err(storage_error)?;
    Ok(())
}

/// Stores one refresh token inside a write transaction.
async fn insert_refresh(tx: &mut Tx, refresh: &RefreshTokenRecord) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, expires_at, record) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(key(&refresh.token_hash))
    .bind(&refresh.grant_id)
    .bind(refresh.expires_at)
    .bind(encode(refresh)?)
    .execute(&mut **tx)
    .await
    .map_err(storage_error)?;
    Ok(())
}

/// Creates the grant's row, or extends its `keep_until`, unless the grant is revoked; `false`
/// when it is. The `WHERE` on the update makes a revoked row return nothing.
async fn claim_grant(tx: &mut Tx, grant_id: &str, keep_until: i64) -> Result<bool, StorageError> {
    let live: Option<i64> = sqlx::query_scalar(
        "INSERT INTO grants (grant_id, revoked, keep_until) VALUES (?1, 0, ?2) \
         ON CONFLICT (grant_id) DO UPDATE SET keep_until = max(keep_until, excluded.keep_until) \
         WHERE NOT revoked \
         RETURNING 1",
    )
    .bind(grant_id)
    .bind(keep_until)
    .fetch_optional(&mut **tx)
    .await
    .map_err(storage_error)?;
    Ok(live.is_some())
}

/// `TokenStore::issue_tokens`.
pub(super) async fn issue(
    mut tx: Tx,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
    keep_until: i64,
) -> Result<bool, StorageError> {
    if !claim_grant(&mut tx, &access.grant_id, keep_until).await? {
        // Dropping the transaction rolls it back; nothing was written.
        return Ok(false);
    }
    insert_access(&mut tx, access).await?;
    if let Some(refresh) = refresh {
        insert_refresh(&mut tx, refresh).await?;
    }
    tx.commit().await.map_err(storage_error)?;
    Ok(true)
}

/// `TokenStore::rotate_refresh_token`. The write lock is held from the transaction's start to
/// its commit, so the state read here cannot change before the writes that depend on it.
pub(super) async fn rotate(
    mut tx: Tx,
    old_hash: &SecretHash,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
    keep_until: i64,
    now: i64,
) -> Result<Rotation, StorageError> {
    let old: Option<(String, bool)> = sqlx::query_as(
        "SELECT grant_id, rotated FROM refresh_tokens WHERE token_hash = ?1 AND expires_at > ?2",
    )
    .bind(key(old_hash))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(storage_error)?;
    let grant_id = match old {
        None => return Ok(Rotation::Missing),
        Some((grant_id, true)) => return Ok(Rotation::Reused { grant_id }),
        Some((grant_id, false)) => grant_id,
    };
    check_same_grant(&grant_id, access, refresh)?;
    if !claim_grant(&mut tx, &grant_id, keep_until).await? {
        return Ok(Rotation::Missing);
    }
    sqlx::query("UPDATE refresh_tokens SET rotated = 1 WHERE token_hash = ?1")
        .bind(key(old_hash))
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
    sqlx::query("DELETE FROM access_tokens WHERE grant_id = ?1")
        .bind(&grant_id)
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
    insert_access(&mut tx, access).await?;
    if let Some(refresh) = refresh {
        insert_refresh(&mut tx, refresh).await?;
    }
    tx.commit().await.map_err(storage_error)?;
    Ok(Rotation::Rotated)
}

/// `TokenStore::revoke_grant`.
pub(super) async fn revoke(
    mut tx: Tx,
    grant_id: &str,
    keep_until: i64,
) -> Result<(), StorageError> {
    // A live grant's `keep_until` tracked its tokens, which are deleted below, so the
    // revocation's own `keep_until` replaces it; a second revocation can only extend it.
    sqlx::query(
        "INSERT INTO grants (grant_id, revoked, keep_until) VALUES (?1, 1, ?2) \
         ON CONFLICT (grant_id) DO UPDATE SET \
           keep_until = CASE WHEN revoked THEN max(keep_until, excluded.keep_until) \
                             ELSE excluded.keep_until END, \
           revoked = 1",
    )
    .bind(grant_id)
    .bind(keep_until)
    .execute(&mut *tx)
    .await
    .map_err(storage_error)?;
    for statement in [
        "DELETE FROM access_tokens WHERE grant_id = ?1",
        "DELETE FROM refresh_tokens WHERE grant_id = ?1",
    ] {
        sqlx::query(statement)
            .bind(grant_id)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
    }
    tx.commit().await.map_err(storage_error)
}

/// `TokenStore::purge_expired_tokens`.
pub(super) async fn purge_tokens(mut tx: Tx, now: i64) -> Result<u64, StorageError> {
    let mut purged = 0;
    // A live grant's row is bookkeeping, not a record of the contract, so it is deleted
    // (all its tokens have expired by its `keep_until`) but not counted.
    for (statement, counted) in [
        ("DELETE FROM access_tokens WHERE expires_at <= ?1", true),
        ("DELETE FROM refresh_tokens WHERE expires_at <= ?1", true),
        (
            "DELETE FROM grants WHERE keep_until <= ?1 AND revoked",
            true,
        ),
        (
            "DELETE FROM grants WHERE keep_until <= ?1 AND NOT revoked",
            false,
        ),
    ] {
        let done = sqlx::query(statement)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        if counted {
            purged += done.rows_affected();
        }
    }
    tx.commit().await.map_err(storage_error)?;
    Ok(purged)
}
