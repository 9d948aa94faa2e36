//! [`PostgresStore`]: storage in PostgreSQL, shared by any number of server instances.

use std::time::Duration;

use mcp_auth_core::StorageError;
use sqlx::Connection as _;
use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::detach::fit_for_reuse;
use crate::dialect::{ClientWrites, Dialect, Sql};
use crate::error::{NulCharacter, storage_error};
use crate::shared::storage_impls;

mod sql;
mod writes;

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

/// PostgreSQL's side of the shared operations: one pool for reads and writes, no NUL in text.
/// (The token writes are in [`writes`].)
impl Dialect for PostgresStore {
    type Db = Postgres;

    const SQL: Sql = sql::SQL;

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// PostgreSQL text cannot hold a NUL character: a statement binding one fails with an
    /// encoding error. Identifiers are checked first, so a write is refused with a typed error
    /// and a lookup of an id that cannot exist finds nothing, instead of failing as a server
    /// error.
    fn storable(what: &'static str, text: &str) -> Result<(), StorageError> {
        if text.contains('\0') {
            Err(StorageError::other(NulCharacter { what }))
        } else {
            Ok(())
        }
    }
}

/// A registration is the shared `insert_client` statement on the pool: PostgreSQL commits
/// concurrent transactions in parallel, and several instances may share the database.
impl ClientWrites for PostgresStore {
    async fn insert(&self, client_id: &str, record: String) -> Result<(), StorageError> {
        sqlx::query(Self::SQL.insert_client)
            .bind(client_id)
            .bind(record)
            .execute(self.writer())
            .await
            .map_err(storage_error)?;
        Ok(())
    }
}

storage_impls!(PostgresStore);
crate::admin::admin_impls!(PostgresStore);

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
