//! The token writes of [`PostgresStore`], each database's own (see
//! [`crate::dialect`]): every one that creates or deletes a grant's tokens locks the grant's
//! row first, as the store's documentation describes. Issuing and purging are one statement
//! each (data-modifying `WITH` clauses), so one round trip and atomic on their own; rotating
//! and revoking are transactions, run on a task of their own (see [`crate::detach`]).

use mcp_auth_core::StorageError;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{AccessTokenRecord, RefreshTokenRecord, Rotation};

use super::PostgresStore;
use crate::codec::encode;
use crate::detach::detached;
use crate::dialect::TokenWrites;
use crate::error::storage_error;
use crate::grant::check_same_grant;
use crate::shared::key;

impl TokenWrites for PostgresStore {
    async fn issue(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        keep_until: i64,
    ) -> Result<bool, StorageError> {
        let refresh_json = refresh.map(encode).transpose()?;
        // One statement, so one round trip and atomic on its own. The upsert locks the grant's
        // row (waiting for a revocation in progress, then re-reading its outcome); on a revoked
        // grant its `WHERE` fails, `grant_row` is empty and the inserts select nothing.
        let issued: i64 = sqlx::query_scalar(
            "WITH grant_row AS ( \
                 INSERT INTO grants (grant_id, revoked, keep_until) VALUES ($1, FALSE, $2) \
                 ON CONFLICT (grant_id) DO UPDATE \
                   SET keep_until = GREATEST(grants.keep_until, EXCLUDED.keep_until) \
                   WHERE NOT grants.revoked \
                 RETURNING grant_id \
             ), access AS ( \
                 INSERT INTO access_tokens (token_hash, grant_id, expires_at, record) \
                 SELECT $3, grant_id, $4, $5 FROM grant_row \
             ), refresh AS ( \
                 INSERT INTO refresh_tokens (token_hash, grant_id, expires_at, record) \
                 SELECT $6, grant_id, $7, $8 FROM grant_row WHERE $6::bytea IS NOT NULL \
             ) \
             SELECT count(*) FROM grant_row",
        )
        .bind(&access.grant_id)
        .bind(keep_until)
        .bind(key(&access.token_hash))
        .bind(access.expires_at)
        .bind(encode(access)?)
        .bind(refresh.map(|r| key(&r.token_hash)))
        .bind(refresh.map(|r| r.expires_at))
        .bind(refresh_json)
        .fetch_one(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(issued > 0)
    }

    async fn rotate(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        keep_until: i64,
        now: i64,
    ) -> Result<Rotation, StorageError> {
        let (pool, old_hash) = (self.pool.clone(), *old_hash);
        let (access, refresh) = (access.clone(), refresh.cloned());
        // Runs on its own task (see `detach`): the transaction commits or rolls back even if
        // the caller stops waiting.
        detached(async move {
            let refresh = refresh.as_ref();
            let mut tx = pool.begin().await.map_err(storage_error)?;
            // Lock the grant first, as every writer of a grant's tokens does, so that concurrent
            // rotations and a revocation queue here; a revoked grant has no tokens left to find.
            let locked: Option<(String, bool)> = sqlx::query_as(
                "SELECT grant_id, revoked FROM grants WHERE grant_id = \
                   (SELECT grant_id FROM refresh_tokens WHERE token_hash = $1 AND expires_at > $2) \
                 FOR UPDATE",
            )
            .bind(key(&old_hash))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage_error)?;
            let grant_id = match locked {
                Some((grant_id, false)) => grant_id,
                // Dropping the transaction rolls it back.
                _ => return Ok(Rotation::Missing),
            };
            check_same_grant(&grant_id, &access, refresh)?;
            // This statement starts after the lock was granted, so its snapshot holds every
            // committed write to this grant: the `NOT rotated` test sees a rotation that won the
            // race, and the access-token delete sees every token issued before. All parts are
            // conditional on the old token being marked here.
            let rotated: i64 = sqlx::query_scalar(
                "WITH old AS ( \
                     UPDATE refresh_tokens SET rotated = TRUE, rotated_at = $2 \
                     WHERE token_hash = $1 AND expires_at > $2 AND NOT rotated \
                     RETURNING grant_id \
                 ), deleted AS ( \
                     DELETE FROM access_tokens WHERE grant_id = $3 AND EXISTS (SELECT 1 FROM old) \
                 ), access AS ( \
                     INSERT INTO access_tokens (token_hash, grant_id, expires_at, record) \
                     SELECT $4, $3, $5, $6 FROM old \
                 ), refresh AS ( \
                     INSERT INTO refresh_tokens (token_hash, grant_id, expires_at, record) \
                     SELECT $7, $3, $8, $9 FROM old WHERE $7::bytea IS NOT NULL \
                 ), grant_row AS ( \
                     UPDATE grants SET keep_until = GREATEST(keep_until, $10) \
                     WHERE grant_id = $3 AND EXISTS (SELECT 1 FROM old) \
                 ) \
                 SELECT count(*) FROM old",
            )
            .bind(key(&old_hash))
            .bind(now)
            .bind(&grant_id)
            .bind(key(&access.token_hash))
            .bind(access.expires_at)
            .bind(encode(&access)?)
            .bind(refresh.map(|r| key(&r.token_hash)))
            .bind(refresh.map(|r| r.expires_at))
            .bind(refresh.map(encode).transpose()?)
            .bind(keep_until)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage_error)?;
            if rotated == 0 {
                // The token was live under the lock but already rotated: a replay.
                return Ok(Rotation::Reused { grant_id });
            }
            tx.commit().await.map_err(storage_error)?;
            Ok(Rotation::Rotated)
        })
        .await
    }

    async fn revoke(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        let (pool, grant_id) = (self.pool.clone(), grant_id.to_owned());
        // On its own task, as rotation is.
        detached(async move {
            let mut tx = pool.begin().await.map_err(storage_error)?;
            // Marking the grant takes its row lock, so a rotation or issuance in flight either
            // committed before (and its tokens are deleted below, by a statement whose snapshot
            // starts after the lock) or waits and then finds the grant revoked. A live grant's
            // `keep_until` tracked its tokens, which go now; a second revocation can only extend.
            sqlx::query(
                "INSERT INTO grants (grant_id, revoked, keep_until) VALUES ($1, TRUE, $2) \
                 ON CONFLICT (grant_id) DO UPDATE SET \
                   keep_until = CASE WHEN grants.revoked \
                                     THEN GREATEST(grants.keep_until, EXCLUDED.keep_until) \
                                     ELSE EXCLUDED.keep_until END, \
                   revoked = TRUE",
            )
            .bind(&grant_id)
            .bind(keep_until)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
            sqlx::query(
                "WITH access AS (DELETE FROM access_tokens WHERE grant_id = $1) \
                 DELETE FROM refresh_tokens WHERE grant_id = $1",
            )
            .bind(&grant_id)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
            tx.commit().await.map_err(storage_error)
        })
        .await
    }

    async fn purge(&self, now: i64) -> Result<u64, StorageError> {
        // A live grant's row is bookkeeping, not a record of the contract: it goes (all its
        // tokens expired by its `keep_until`) but is not counted. A grant row locked by a
        // rotation is re-checked after the lock, so a `keep_until` just extended survives.
        let purged: i64 = sqlx::query_scalar(
            "WITH access AS ( \
                 DELETE FROM access_tokens WHERE expires_at <= $1 RETURNING 1 \
             ), refresh AS ( \
                 DELETE FROM refresh_tokens WHERE expires_at <= $1 RETURNING 1 \
             ), grant_rows AS ( \
                 DELETE FROM grants WHERE keep_until <= $1 RETURNING revoked \
             ) \
             SELECT (SELECT count(*) FROM access) + (SELECT count(*) FROM refresh) \
                  + (SELECT count(*) FROM grant_rows WHERE revoked)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(u64::try_from(purged).unwrap_or(0))
    }
}
