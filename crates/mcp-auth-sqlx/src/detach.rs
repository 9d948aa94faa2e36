//! Cancellation safety: work that must finish is not tied to the caller's future.
//!
//! A request future is dropped wherever it is waiting when its client hangs up. sqlx rolls a
//! dropped [`Transaction`](sqlx::Transaction) back, but not one dropped while it is still being
//! opened: `begin_with("BEGIN IMMEDIATE")` runs the statement and then waits once more (to check
//! that a transaction really started), and a drop in that wait leaves the transaction open on a
//! connection that goes back to the pool. On SQLite that connection then holds the database's
//! write lock for good: every other writer, in this process or another, fails with "database is
//! locked", and the connection itself refuses every later `BEGIN`.
//!
//! So every operation that opens a transaction runs on a task of its own ([`detached`]): the
//! caller may stop waiting, but the operation commits or rolls back and returns its connection
//! clean. Single statements outside a transaction need no such care: the database applies each
//! one whole or not at all, and sqlx drains an abandoned reply before reusing the connection.
//! As a second line of defence the pools of [`connect`](crate::SqliteStore::connect) refuse to
//! hand out a connection that is still inside a transaction ([`fit_for_reuse`]).

use std::future::Future;

use mcp_auth_core::StorageError;
use sqlx::Connection;

/// Runs `work` to completion on its own task, whether or not the caller keeps waiting.
pub(crate) async fn detached<T, F>(work: F) -> Result<T, StorageError>
where
    F: Future<Output = Result<T, StorageError>> + Send + 'static,
    T: Send + 'static,
{
    // The task fails only if `work` panicked (a driver bug) or the runtime is shutting down;
    // either way the operation's outcome is unknown, which is a storage failure.
    tokio::spawn(work).await.map_err(StorageError::other)?
}

/// Whether a pooled connection may be handed out: not while it is still inside a transaction,
/// which only a bug can leave open (see the module documentation). The pool closes a refused
/// connection, and closing rolls its transaction back.
pub(crate) fn fit_for_reuse<C: Connection>(conn: &C) -> bool {
    if conn.is_in_transaction() {
        tracing::warn!("a pooled connection was returned inside a transaction; closing it");
        return false;
    }
    true
}
