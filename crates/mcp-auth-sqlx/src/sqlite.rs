//! [`SqliteStore`]: storage in one SQLite database file (or in memory).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{
    AccessTokenRecord, AuthorizationRequestRecord, AuthorizationRequestStore, ClientRecord,
    ClientStore, CodeRecord, CodeStore, CodeTake, RefreshLookup, RefreshTokenRecord, ReplayStore,
    Rotation, TokenStore,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::codec::{decode, encode, encode_client};
use crate::detach::{detached, fit_for_reuse};
use crate::error::storage_error;
use crate::grant::grant_keep_until;

mod signing_keys;
mod writes;

/// Storage in SQLite: one file shared by the threads of one process (or by several processes
/// on one machine), or an in-memory database for tests and development.
///
/// SQLite serialises writers. Every multi-statement operation (issuing, rotating, revoking,
/// purging tokens) runs in a `BEGIN IMMEDIATE` transaction, which takes the write lock before
/// its first read, so no two of them interleave and none fails half-way on a lock upgrade;
/// single-statement operations (taking a code, recording an assertion id, inserting a signing
/// key) are atomic on their own. Each of those transactions is one query,
/// `BEGIN IMMEDIATE; …; COMMIT`, so one call to the connection's thread (see the
/// `sqlite::writes` module).
///
/// Those transactions run on a task of their own, so a caller that stops waiting (a client
/// hanging up) cannot leave one open and the write lock held: see the crate's `detach` module.
///
/// Writes go through a pool of their own with **one** connection (for a file database): SQLite
/// runs one writer at a time anyway, and a single writing connection keeps its page cache
/// valid from one write to the next (a connection must drop its cache whenever another one
/// has written), while writers wait their turn in the pool's queue instead of polling
/// SQLite's lock with the busy handler's growing sleeps. Reads use a pool of
/// [`MAX_CONNECTIONS`](Self::MAX_CONNECTIONS), which WAL lets run beside the writer.
///
/// Clones share the pools.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads (and the deployment's own queries, through [`pool`](Self::pool)).
    pool: SqlitePool,
    /// Every write: one connection, or the same pool as `pool` where that cannot be (an
    /// in-memory database, a pool from [`from_pool`](Self::from_pool)).
    writer: SqlitePool,
}

impl SqliteStore {
    /// How long a statement waits for another connection's write lock before failing with
    /// `SQLITE_BUSY` (reported as
    /// [`StorageErrorKind::Unavailable`](mcp_auth_core::StorageErrorKind)).
    pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// Connections in the read pool of a file database (the writes have one more of their
    /// own). Readers run concurrently under WAL; eight covers a busy server without holding
    /// many file handles.
    pub const MAX_CONNECTIONS: u32 = 8;

    /// Opens (creating if missing) the database at `url` — `sqlite://path/to/file.db`,
    /// `sqlite:relative.db` or `sqlite::memory:` — with the settings documented in the crate
    /// README: WAL journal with `synchronous = NORMAL`, a [`BUSY_TIMEOUT`](Self::BUSY_TIMEOUT),
    /// foreign keys on, [`MAX_CONNECTIONS`](Self::MAX_CONNECTIONS) connections for reads and
    /// one for writes (a writer waits at most [`BUSY_TIMEOUT`](Self::BUSY_TIMEOUT) for it,
    /// as it would for SQLite's lock). An in-memory
    /// database lives only as long as its connection, so it gets exactly one connection that
    /// the pool never closes.
    ///
    /// **Durability.** In WAL mode, `NORMAL` writes each commit to the write-ahead log without
    /// waiting for the disk, and syncs at checkpoints. A crash of the process loses nothing; a
    /// power loss or kernel crash may lose the transactions committed since the last checkpoint
    /// (at most the last ~1,000 pages of writes, SQLite's default auto-checkpoint), but never
    /// corrupts the database: it reopens in the state of an earlier commit. For this store
    /// that means a just-issued token, registration or rotation may be gone after a power cut
    /// (the client signs in or registers again) and a just-made revocation may be undone (the
    /// revoked tokens live until their own expiry). `FULL` would close that window at the cost
    /// of a disk flush per commit, several times the CPU of the whole write on a local disk; a
    /// deployment that needs it passes its own pool to [`from_pool`](Self::from_pool).
    ///
    /// Does not create the tables: call [`migrate`](Self::migrate).
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(storage_error)?
            .create_if_missing(true)
            .busy_timeout(Self::BUSY_TIMEOUT)
            .foreign_keys(true)
            // See "Durability" above: WAL + NORMAL never corrupts, and may lose only the last
            // commits to a power loss.
            .synchronous(SqliteSynchronous::Normal);
        if in_memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                // A local database never hangs up, so a ping before each use would only add
                // latency.
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .map_err(storage_error)?;
            return Ok(Self::from_pool(pool));
        }
        let options = options.journal_mode(SqliteJournalMode::Wal);
        // A connection left inside a transaction would hold the write lock for good; closing
        // it rolls the transaction back. (Not for an in-memory database, which closing would
        // erase; its transactions are kept safe by `detach` alone.) The store's own
        // transactions are single queries that roll themselves back on failure
        // (`writes::run`); this guards transactions opened through sqlx on `pool()`.
        let file_pool = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .test_before_acquire(false)
                .before_acquire(|conn, _meta| Box::pin(async move { Ok(fit_for_reuse(conn)) }))
        };
        // The writer first: it sets the journal mode, which readers then find in the file.
        let writer = file_pool(1)
            .acquire_timeout(Self::BUSY_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(storage_error)?;
        let pool = file_pool(Self::MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(storage_error)?;
        Ok(Self { pool, writer })
    }

    /// A store on a pool configured by the caller, used for reads and writes alike. The pool's
    /// connections should have a busy timeout; without one, concurrent writers fail at once
    /// with `SQLITE_BUSY`.
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            writer: pool.clone(),
            pool,
        }
    }

    /// Creates or upgrades the tables with the migrations embedded in this crate
    /// (`migrations/sqlite/`). Idempotent; safe to call at every start.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.writer)
            .await
            .map_err(|err| storage_error(err.into()))
    }

    /// The read pool, for health checks and the deployment's own queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn key(hash: &SecretHash) -> &[u8] {
    hash.as_bytes()
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO clients (client_id, record) VALUES (?1, ?2)")
            .bind(&client.info.client_id)
            .bind(encode_client(client)?)
            .execute(&self.writer)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO clients (client_id, record) VALUES (?1, ?2) \
             ON CONFLICT (client_id) DO UPDATE SET record = excluded.record",
        )
        .bind(&client.info.client_id)
        .bind(encode_client(client)?)
        .execute(&self.writer)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        let record: Option<String> =
            sqlx::query_scalar("SELECT record FROM clients WHERE client_id = ?1")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_error)?;
        record.map(|json| decode("client", &json)).transpose()
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM clients WHERE client_id = ?1")
            .bind(client_id)
            .execute(&self.writer)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl AuthorizationRequestStore for SqliteStore {
    async fn insert_authorization_request(
        &self,
        request: &AuthorizationRequestRecord,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO authorization_requests (request_hash, expires_at, record) \
             VALUES (?1, ?2, ?3)",
        )
        .bind(key(&request.request_hash))
        .bind(request.expires_at)
        .bind(encode(request)?)
        .execute(&self.writer)
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
             WHERE request_hash = ?1 AND expires_at > ?2",
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
        // One statement: of concurrent deletes of one row, only one sees it.
        let record: Option<String> = sqlx::query_scalar(
            "DELETE FROM authorization_requests \
             WHERE request_hash = ?1 AND expires_at > ?2 RETURNING record",
        )
        .bind(key(request_hash))
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(storage_error)?;
        record
            .map(|json| decode("authorization request", &json))
            .transpose()
    }

    async fn purge_expired_authorization_requests(&self, now: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM authorization_requests WHERE expires_at <= ?1")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO codes (code_hash, grant_id, expires_at, record) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(key(&code.code_hash))
        .bind(&code.grant_id)
        .bind(code.expires_at)
        .bind(encode(code)?)
        .execute(&self.writer)
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
            "SELECT record FROM codes WHERE code_hash = ?1 AND NOT redeemed AND expires_at > ?2",
        )
        .bind(key(code_hash))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        record.map(|json| decode("code", &json)).transpose()
    }

    async fn take_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeTake, StorageError> {
        // The flag flip is one statement, so of concurrent takers exactly one sees the row
        // unredeemed. The row stays as the redemption marker until it expires.
        let record: Option<String> = sqlx::query_scalar(
            "UPDATE codes SET redeemed = 1 \
             WHERE code_hash = ?1 AND NOT redeemed AND expires_at > ?2 RETURNING record",
        )
        .bind(key(code_hash))
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(storage_error)?;
        if let Some(json) = record {
            return Ok(CodeTake::Taken(decode("code", &json)?));
        }
        // Nothing taken: a redemption marker means the code was replayed. Redeemed is final, so
        // reading it outside the update cannot see a state the update did not.
        let grant_id: Option<String> = sqlx::query_scalar(
            "SELECT grant_id FROM codes WHERE code_hash = ?1 AND redeemed AND expires_at > ?2",
        )
        .bind(key(code_hash))
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(storage_error)?;
        Ok(match grant_id {
            Some(grant_id) => CodeTake::AlreadyRedeemed { grant_id },
            None => CodeTake::Missing,
        })
    }

    async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM codes WHERE expires_at <= ?1")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn issue_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError> {
        let query = writes::issue(access, refresh, grant_keep_until(access, refresh)?)?;
        let pool = self.writer.clone();
        detached(async move { writes::issued(pool, query).await }).await
    }

    async fn get_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StorageError> {
        let record: Option<String> = sqlx::query_scalar(
            "SELECT record FROM access_tokens WHERE token_hash = ?1 AND expires_at > ?2",
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
            "SELECT rotated, record FROM refresh_tokens WHERE token_hash = ?1 AND expires_at > ?2",
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
        let query = writes::rotate(old_hash, access, refresh, keep_until, now)?;
        let pool = self.writer.clone();
        let (access, refresh) = (access.clone(), refresh.cloned());
        detached(async move { writes::rotated(pool, query, &access, refresh.as_ref()).await }).await
    }

    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        let query = writes::revoke(grant_id, keep_until);
        let pool = self.writer.clone();
        detached(async move { writes::run(pool, query).await.map(drop) }).await
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError> {
        let pool = self.writer.clone();
        detached(async move { writes::purge_tokens(pool, now).await }).await
    }
}

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn record_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        // Insert if absent, or take over an entry that has expired; one statement, so two
        // concurrent first uses cannot both succeed.
        let first: Option<i64> = sqlx::query_scalar(
            "INSERT INTO assertion_ids (issuer, jti, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE assertion_ids.expires_at <= ?4 \
             RETURNING 1",
        )
        .bind(issuer)
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(storage_error)?;
        Ok(first.is_some())
    }

    async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM assertion_ids WHERE expires_at <= ?1")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(storage_error)?;
        Ok(done.rows_affected())
    }
}
