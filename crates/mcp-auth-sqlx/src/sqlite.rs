//! [`SqliteStore`]: storage in one SQLite database file (or in memory).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_core::StorageError;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::detach::fit_for_reuse;
use crate::dialect::{ClientWrites, Dialect, Sql};
use crate::error::storage_error;
use crate::shared::storage_impls;
use batch::{ClientInsert, ClientInsertBatcher, IssueBatcher};

mod batch;
mod sql;
#[cfg(test)]
mod upgrade_tests;
mod writes;

/// Storage in SQLite: one file shared by the threads of one process (or by several processes
/// on one machine), or an in-memory database for tests and development.
///
/// SQLite serialises writers. Every multi-statement operation (issuing, rotating, revoking,
/// purging tokens; registering clients, which are committed several at a time) runs in a
/// `BEGIN IMMEDIATE` transaction, which takes the write lock before its first read, so no two
/// of them interleave and none fails half-way on a lock upgrade; single-statement operations
/// (taking a code, recording an assertion id, inserting a signing key) are atomic on their
/// own. Each of those transactions is one query, `BEGIN IMMEDIATE; …; COMMIT`, so one call to
/// the connection's thread (see the `sqlite::writes` module).
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
/// Concurrent token issuances are committed together, in one transaction per batch (group
/// commit; see the `sqlite::batch` module), and so are concurrent client registrations.
///
/// Clones share the pools and the batchers.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads (and the deployment's own queries, through [`pool`](Self::pool)).
    pool: SqlitePool,
    /// Every write: one connection, or the same pool as `pool` where that cannot be (an
    /// in-memory database, a pool from [`from_pool`](Self::from_pool)).
    writer: SqlitePool,
    /// Queues token issuances for group commit on `writer`.
    issues: Arc<IssueBatcher>,
    /// Queues client registrations for group commit on `writer`.
    client_inserts: Arc<ClientInsertBatcher>,
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
        Ok(Self {
            pool,
            writer,
            issues: Arc::default(),
            client_inserts: Arc::default(),
        })
    }

    /// A store on a pool configured by the caller, used for reads and writes alike. The pool's
    /// connections should have a busy timeout; without one, concurrent writers fail at once
    /// with `SQLITE_BUSY`.
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            writer: pool.clone(),
            pool,
            issues: Arc::default(),
            client_inserts: Arc::default(),
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

/// SQLite's side of the shared operations: reads on the read pool, writes on the writer, every
/// text storable. (The token writes are in [`writes`].)
impl Dialect for SqliteStore {
    type Db = Sqlite;

    const SQL: Sql = sql::SQL;

    fn reader(&self) -> &SqlitePool {
        &self.pool
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// SQLite text holds any string, NUL included.
    fn storable(_what: &'static str, _text: &str) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A registration is committed with the others waiting for the writer (group commit, see the
/// `sqlite::batch` module), by the batcher's task whatever the caller does.
impl ClientWrites for SqliteStore {
    async fn insert(&self, client_id: &str, record: String) -> Result<(), StorageError> {
        let insert = ClientInsert::new(client_id, record);
        self.client_inserts.submit(&self.writer, insert).await
    }
}

storage_impls!(SqliteStore);
crate::admin::admin_impls!(SqliteStore);
