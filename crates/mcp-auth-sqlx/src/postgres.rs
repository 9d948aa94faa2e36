//! [`PostgresStore`]: storage in PostgreSQL, shared by any number of server instances.

use std::time::Duration;

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{
    AccessTokenRecord, AuthorizationRequestRecord, AuthorizationRequestStore, ClientRecord,
    ClientStore, CodeRecord, CodeStore, CodeTake, RefreshLookup, RefreshTokenRecord, ReplayStore,
    Rotation, TokenStore,
};
use sqlx::Connection as _;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::codec::{decode, encode, encode_client};
use crate::detach::{detached, fit_for_reuse};
use crate::error::{NulCharacter, storage_error};
use crate::grant::{check_same_grant, grant_keep_until};

mod signing_keys;

/// Storage in PostgreSQL. Several server instances on one database see each other's writes at
/// once, which is what a multi-instance deployment needs.
///
/// Every operation that creates or deletes a grant's tokens first locks the grant's row in the
/// `grants` table (an `INSERT … ON CONFLICT DO UPDATE` or `SELECT … FOR UPDATE`), so issuing,
/// rotating and revoking one grant are serialised while different grants proceed in parallel;
/// statements that depend on the locked state run after the lock is taken, in READ COMMITTED,
/// and so see every write that committed before it. Taking a code, recording an assertion id
/// and inserting a signing key are single atomic statements.
///
/// The transactions (rotating, revoking) run on a task of their own, so a caller that stops
/// waiting cannot leave one open with its row locks held: see the crate's `detach` module.
///
/// Clones share the pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connections in the pool made by [`connect`](Self::connect). Each operation holds one for
    /// a few round trips at most, so ten serve thousands of requests a second while leaving
    /// room under PostgreSQL's default limit of 100 for several instances.
    pub const MAX_CONNECTIONS: u32 = 10;

    /// How long an operation waits for a connection, including attempts to reconnect, before
    /// failing with [`StorageErrorKind::Unavailable`](mcp_auth_core::StorageErrorKind). Short,
    /// so that an outage turns into prompt `temporarily_unavailable` answers rather than
    /// requests that hang; sqlx's own default is 30 s.
    pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

    /// A pooled connection idle for longer than this is pinged before use, so that connections
    /// broken by a database restart are replaced instead of failing the next request. Busy
    /// connections are not pinged: that would double the round trips of every operation.
    pub const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

    /// Connects to `url` (`postgres://user:password@host:port/database`) with the settings
    /// above. Does not create the tables: call [`migrate`](Self::migrate).
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(Self::MAX_CONNECTIONS)
            .acquire_timeout(Self::ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    // A connection left inside a transaction would keep its row locks: closing
                    // it rolls the transaction back (see `detach`).
                    if !fit_for_reuse(conn) {
                        return Ok(false);
                    }
                    if meta.idle_for >= Self::PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await
            .map_err(storage_error)?;
        Ok(Self { pool })
    }

    /// A store on a pool configured by the caller.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates or upgrades the tables with the migrations embedded in this crate
    /// (`migrations/postgres/`). Idempotent, and safe to run from several instances at once:
    /// sqlx serialises migrations with an advisory lock.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|err| storage_error(err.into()))
    }

    /// The pool, for health checks and the deployment's own queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn key(hash: &SecretHash) -> &[u8] {
    hash.as_bytes()
}

/// PostgreSQL text cannot hold a NUL character: a statement binding one fails with an encoding
/// error. Identifiers are checked first, so a write is refused with a typed error and a lookup
/// of an id that cannot exist finds nothing, instead of failing as a server error.
fn storable(what: &'static str, text: &str) -> Result<(), StorageError> {
    if text.contains('\0') {
        Err(StorageError::other(NulCharacter { what }))
    } else {
        Ok(())
    }
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        storable("client_id", &client.info.client_id)?;
        sqlx::query("INSERT INTO clients (client_id, record) VALUES ($1, $2)")
            .bind(&client.info.client_id)
            .bind(encode_client(client)?)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        storable("client_id", &client.info.client_id)?;
        sqlx::query(
            "INSERT INTO clients (client_id, record) VALUES ($1, $2) \
             ON CONFLICT (client_id) DO UPDATE SET record = EXCLUDED.record",
        )
        .bind(&client.info.client_id)
        .bind(encode_client(client)?)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        if storable("client_id", client_id).is_err() {
            // No stored id can contain it, so the client is simply absent.
            return Ok(None);
        }
        let record: Option<String> =
            sqlx::query_scalar("SELECT record FROM clients WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_error)?;
        record.map(|json| decode("client", &json)).transpose()
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        if storable("client_id", client_id).is_err() {
            return Ok(false);
        }
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl AuthorizationRequestStore for PostgresStore {
    async fn insert_authorization_request(
        &self,
        request: &AuthorizationRequestRecord,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO authorization_requests (request_hash, expires_at, record) \
             VALUES ($1, $2, $3)",
        )
        .bind(key(&request.request_hash))
        .bind(request.expires_at)
        .bind(encode(request)?)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn get_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        let record: Option<String> = sqlx::query_scalar(
            "SELECT record FROM authorization_requests \
             WHERE request_hash = $1 AND expires_at > $2",
        )
        .bind(key(request_hash))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        record
            .map(|json| decode("authorization request", &json))
            .transpose()
    }

    async fn take_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        // Of concurrent deletes of one row, one deletes it and the others find nothing.
        let record: Option<String> = sqlx::query_scalar(
            "DELETE FROM authorization_requests \
             WHERE request_hash = $1 AND expires_at > $2 RETURNING record",
        )
        .bind(key(request_hash))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        record
            .map(|json| decode("authorization request", &json))
            .transpose()
    }

    async fn purge_expired_authorization_requests(&self, now: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM authorization_requests WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError> {
        storable("grant_id", &code.grant_id)?;
        sqlx::query(
            "INSERT INTO codes (code_hash, grant_id, expires_at, record) VALUES ($1, $2, $3, $4)",
        )
        .bind(key(&code.code_hash))
        .bind(&code.grant_id)
        .bind(code.expires_at)
        .bind(encode(code)?)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn get_code(
        &self,
        code_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<CodeRecord>, StorageError> {
        let record: Option<String> = sqlx::query_scalar(
            "SELECT record FROM codes WHERE code_hash = $1 AND NOT redeemed AND expires_at > $2",
        )
        .bind(key(code_hash))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        record.map(|json| decode("code", &json)).transpose()
    }

    async fn take_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeTake, StorageError> {
        // Concurrent updates of one row queue on its row lock; each re-checks `NOT redeemed`
        // against the version the one before it committed, so exactly one matches. The row
        // stays as the redemption marker until it expires.
        let record: Option<String> = sqlx::query_scalar(
            "UPDATE codes SET redeemed = TRUE \
             WHERE code_hash = $1 AND NOT redeemed AND expires_at > $2 RETURNING record",
        )
        .bind(key(code_hash))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        if let Some(json) = record {
            return Ok(CodeTake::Taken(decode("code", &json)?));
        }
        // Redeemed is final, so this second read cannot contradict the update above.
        let grant_id: Option<String> = sqlx::query_scalar(
            "SELECT grant_id FROM codes WHERE code_hash = $1 AND redeemed AND expires_at > $2",
        )
        .bind(key(code_hash))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(match grant_id {
            Some(grant_id) => CodeTake::AlreadyRedeemed { grant_id },
            None => CodeTake::Missing,
        })
    }

    async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM codes WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn issue_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError> {
        let keep_until = grant_keep_until(access, refresh)?;
        storable("grant_id", &access.grant_id)?;
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

    async fn get_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StorageError> {
        let record: Option<String> = sqlx::query_scalar(
            "SELECT record FROM access_tokens WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(key(token_hash))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        record.map(|json| decode("access token", &json)).transpose()
    }

    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RefreshLookup>, StorageError> {
        let row: Option<(bool, String)> = sqlx::query_as(
            "SELECT rotated, record FROM refresh_tokens WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(key(token_hash))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        row.map(|(rotated, json)| {
            let record: RefreshTokenRecord = decode("refresh token", &json)?;
            Ok(if rotated {
                RefreshLookup::Rotated {
                    grant_id: record.grant_id,
                }
            } else {
                RefreshLookup::Active(record)
            })
        })
        .transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> Result<Rotation, StorageError> {
        let keep_until = grant_keep_until(access, refresh)?;
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
                     UPDATE refresh_tokens SET rotated = TRUE \
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

    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        if storable("grant_id", grant_id).is_err() {
            // No token can carry it (issuing refuses such ids), so there is nothing to revoke
            // and nothing to refuse later.
            return Ok(());
        }
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

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError> {
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

#[async_trait]
impl ReplayStore for PostgresStore {
    async fn record_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        // Refused rather than reported as a first use: an entry that cannot be recorded must
        // not let the assertion through twice.
        storable("assertion issuer", issuer)?;
        storable("assertion id", jti)?;
        // Insert if absent, or take over an expired entry. Concurrent inserts of one key queue
        // on the unique index; the loser's `DO UPDATE` re-reads the winner's row, which has not
        // expired, so it returns nothing.
        let first: Option<i32> = sqlx::query_scalar(
            "INSERT INTO assertion_ids (issuer, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at \
             WHERE assertion_ids.expires_at <= $4 \
             RETURNING 1",
        )
        .bind(issuer)
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(first.is_some())
    }

    async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM assertion_ids WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use mcp_auth_core::ErrorChain;

    use super::*;

    /// A connection failure is logged with its whole cause chain; the URL's password must not
    /// be part of it, whether the URL is refused by the parser or by the network.
    #[tokio::test]
    async fn connection_errors_never_show_the_password() {
        for url in [
            // Nothing listens on port 1: the connection is refused.
            "postgres://alice:hunter2-secret@127.0.0.1:1/db",
            "postgres://alice:hunter2-secret@127.0.0.1:not-a-port/db",
            "postgres://alice@127.0.0.1:1/db?password=hunter2-secret",
            "postgres://alice:hunter2-secret@127.0.0.1:1/db?sslmode=no-such-mode",
        ] {
            let err = PostgresStore::connect(url).await.expect_err(url);
            let logged = format!("{} {err:?}", ErrorChain(&err));
            assert!(!logged.contains("hunter2"), "{url}: {logged}");
        }
    }
}
