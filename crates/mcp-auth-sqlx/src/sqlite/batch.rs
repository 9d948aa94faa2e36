//! Group commit: concurrent token issuances on SQLite share one transaction.
//!
//! # Why
//!
//! A `client_credentials` issuance on SQLite cost about 128 µs of CPU per request on the
//! release server under load (32 concurrent connections), and most of it is paid per
//! *transaction*, not per row: in a `perf` profile of that load, checkpointing took 12 % of the
//! samples, writing WAL frames 8.6 %, the hand-off to sqlx's connection thread about 9 % on that
//! thread plus about 13 % in sqlx and 7.5 % of scheduling on the tokio side, and the B-tree
//! steps and the commit about 17 %.
//!
//! # What is amortised
//!
//! Issuances that wait for the writer are committed together: **one** transaction, one query,
//! one call to the connection thread. Over a batch of k issuances that shares out
//!
//! - the hand-off to the connection thread and back (two thread wake-ups, sqlx's work per
//!   call, the task scheduling around it): once per batch instead of once per issuance;
//! - the commit itself (`BEGIN IMMEDIATE`, taking and releasing the write lock, the WAL commit
//!   record);
//! - the WAL frames: a commit appends every page it changed, whole, to the log. The issuances
//!   of a batch share some of those pages — the leaves at the newest end of the `expires_at`
//!   indexes (their tokens expire at about the same time), interior pages, and any leaf that
//!   two of them land on (rows are keyed by random hashes, so leaves are shared in small tables
//!   more than in big ones) — and a batch writes each of those once instead of once per
//!   issuance;
//! - so also the checkpoints, which copy those frames back into the database file: fewer
//!   frames, fewer checkpoints.
//!
//! What stays per issuance: binding, the B-tree steps of its rows, the JSON encoding.
//!
//! # How
//!
//! Each store (its clones included) has one [`IssueBatcher`]. Its task, started at the first
//! issuance, takes the first issuance waiting in a bounded queue ([`QUEUE_CAPACITY`]), waits
//! for the writer connection, takes whatever else is waiting by then (up to
//! [`MAX_ISSUES_PER_COMMIT`]) and runs them as one query: `BEGIN IMMEDIATE;` the statements of
//! issuance 0, those of issuance 1, …, `COMMIT;`. It never waits to fill a batch: at low load a
//! batch is a single issuance, which costs one channel hop and one reply more than before, and
//! batches grow exactly when issuances arrive faster than the writer commits them.
//!
//! The query for each batch size is generated once ([`issue_sql`]) and kept in a `static`, so
//! sqlx prepares each text once per connection and caches it like any other statement. One
//! text serves access-only issuances and pairs alike: an access-only issuance binds NULL for
//! the refresh token, and the refresh token's insert is guarded by `WHERE $n IS NOT NULL`.
//! Keeping apart the two shapes would need a text per sequence of shapes, or split batches
//! (smaller exactly where a server issues both kinds, code exchanges and `client_credentials`),
//! for the price of one statement that finds nothing to insert.
//!
//! Issuance i binds parameters `$8i+1` … `$8i+8` (grant, keep-until, access hash, expiry and
//! record, the same three of the refresh token). They are `$n`, not `?n`: SQLite names `$n`
//! parameters, so each statement numbers its own 1, 2, … without gaps, and sqlx binds a
//! named one by its number. A `?n` parameter keeps its number as its index, leaving unnamed
//! gaps below it; sqlx fills those from a running count and stops binding the statement at all
//! once that count passes the number of arguments, which the later issuances of a batch would
//! reach.
//!
//! # Outcomes
//!
//! Each issuance's claim of its grant returns its index (`RETURNING i AS op`): an issuance whose
//! index comes back was stored, one whose grant is revoked returns nothing and wrote nothing.
//! The statements run in order inside the transaction, so two issuances of one grant in one
//! batch each see the grant as the other left it, as two transactions in a row would.
//!
//! A batch that fails is rolled back whole (`writes::run_on`). Then each of its issuances runs
//! again alone, so that only the faulty one (a token hash already stored: `Conflict`) fails —
//! unless the failure is `Unavailable` (the database is busy or unreachable), which belongs to
//! the database and not to one issuance: every caller of the batch gets it at once, rather than
//! each waiting out the busy timeout again. If the writer connection cannot be had, every
//! caller of the batch gets that error. A caller whose reply never comes (the task panicked,
//! the runtime is stopping) gets an error, never a success. A caller that finds the task gone
//! (it lived on a runtime that has since shut down) has handed nothing over, and runs its
//! issuance alone, detached, as before group commit.
//!
//! # Cancellation
//!
//! As with [`crate::detach`]: an issuance handed to the queue is committed or rolled back by the
//! batcher's task whether or not its caller keeps waiting; only its reply goes unread. A caller
//! dropped while the queue is full has handed over nothing.

use std::sync::{Arc, OnceLock};

use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{AccessTokenRecord, RefreshTokenRecord};
use mcp_auth_core::{StorageError, StorageErrorKind};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Row as _, Sqlite};
use tokio::sync::{mpsc, oneshot};

use super::writes::run_on;
use crate::codec::encode;
use crate::detach::detached;
use crate::error::{corrupt, storage_error};

/// Issuances waiting for the batcher, beyond which a caller waits to enqueue (backpressure
/// instead of an unbounded queue). At one batch of [`MAX_ISSUES_PER_COMMIT`] per ~0.1–1 ms,
/// 1,024 is some tens of milliseconds of work: far more than the server's concurrent requests,
/// so the queue only fills when the database has stalled.
pub(super) const QUEUE_CAPACITY: usize = 1024;

/// Issuances committed in one transaction at most. Each batch size has a query text of its
/// own, cached per connection by sqlx (100 statements per connection, of which this crate's
/// other statements use about 40), so sixteen texts fit with room to spare. Past sixteen the
/// per-transaction share of an issuance's cost is already a few percent, while a longer
/// transaction keeps the batch's callers (and every other writer) waiting longer.
pub(super) const MAX_ISSUES_PER_COMMIT: usize = 16;

/// Parameters each issuance binds, numbered from `8i + 1` for issuance i (see [`issue_sql`]).
const PARAMS_PER_ISSUE: usize = 8;

/// A query with its arguments, borrowed for `'q` (or owned, for `'static`).
type Bound<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

/// A caller's reply: whether its tokens were stored (`false`: the grant is revoked).
type Reply = oneshot::Sender<Result<bool, StorageError>>;

/// An issuance in the queue, with where its outcome goes.
type Pending = (Issue, Reply);

/// One issuance, bound: the values of its [`PARAMS_PER_ISSUE`] parameters, owned, in their
/// order.
#[derive(Debug)]
pub(super) struct Issue {
    grant_id: String,
    keep_until: i64,
    access: Token,
    refresh: Option<Token>,
}

/// A token's columns: hash, expiry, JSON record.
#[derive(Debug)]
struct Token {
    hash: Vec<u8>,
    expires_at: i64,
    record: String,
}

impl Token {
    fn new(hash: &SecretHash, expires_at: i64, record: String) -> Self {
        Self {
            hash: hash.as_bytes().to_vec(),
            expires_at,
            record,
        }
    }
}

impl Issue {
    /// `TokenStore::issue_tokens`'s values, encoded on the caller's task.
    pub(super) fn new(
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        keep_until: i64,
    ) -> Result<Self, StorageError> {
        let refresh = match refresh {
            Some(refresh) => Some(Token::new(
                &refresh.token_hash,
                refresh.expires_at,
                encode(refresh)?,
            )),
            None => None,
        };
        Ok(Self {
            grant_id: access.grant_id.clone(),
            keep_until,
            access: Token::new(&access.token_hash, access.expires_at, encode(access)?),
            refresh,
        })
    }

    /// Binds the values by move: an issuance run alone needs them no more.
    fn bind(self, query: Bound<'static>) -> Bound<'static> {
        let (hash, expires_at, record) = match self.refresh {
            Some(token) => (Some(token.hash), Some(token.expires_at), Some(token.record)),
            None => (None, None, None),
        };
        query
            .bind(self.grant_id)
            .bind(self.keep_until)
            .bind(self.access.hash)
            .bind(self.access.expires_at)
            .bind(self.access.record)
            .bind(hash)
            .bind(expires_at)
            .bind(record)
    }

    /// Binds the values by reference (sqlx copies them for the connection thread), keeping
    /// them to run the issuance alone if its batch fails.
    fn bind_ref<'q>(&'q self, query: Bound<'q>) -> Bound<'q> {
        let refresh = self.refresh.as_ref();
        query
            .bind(self.grant_id.as_str())
            .bind(self.keep_until)
            .bind(self.access.hash.as_slice())
            .bind(self.access.expires_at)
            .bind(self.access.record.as_str())
            .bind(refresh.map(|token| token.hash.as_slice()))
            .bind(refresh.map(|token| token.expires_at))
            .bind(refresh.map(|token| token.record.as_str()))
    }
}

/// The issuance queue of one store and its clones. The task that drains it starts at the
/// first issuance (a store is built outside any runtime) and ends when the store's last clone
/// is dropped (its queue's only sender), after committing what was queued.
#[derive(Debug, Default)]
pub(crate) struct IssueBatcher {
    queue: OnceLock<mpsc::Sender<Pending>>,
    log: Arc<Log>,
}

impl IssueBatcher {
    /// Issues on `writer`, committed with whatever other issuances are waiting.
    pub(super) async fn issue(
        &self,
        writer: &SqlitePool,
        issue: Issue,
    ) -> Result<bool, StorageError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, queue) = mpsc::channel(QUEUE_CAPACITY);
            let batcher = Batcher {
                writer: writer.clone(),
                queue,
                log: Arc::clone(&self.log),
            };
            // Detached: it outlives any one caller.
            drop(tokio::spawn(batcher.run()));
            sender
        });
        let (reply, outcome) = oneshot::channel();
        if let Err(mpsc::error::SendError((issue, _))) = queue.send((issue, reply)).await {
            // The task is gone: the runtime that started it has shut down (the store moved to
            // another runtime) or it panicked. The issuance was not handed over, so it can run
            // alone, detached as every write is, on the current runtime.
            let writer = writer.clone();
            return detached(async move {
                let mut conn = writer.acquire().await.map_err(storage_error)?;
                issue_alone(&mut conn, issue).await
            })
            .await;
        }
        wait_for(outcome).await
    }
}

/// The outcome the batcher sends; an error if it stopped before sending one, since then the
/// issuance may or may not have been committed.
async fn wait_for(
    outcome: oneshot::Receiver<Result<bool, StorageError>>,
) -> Result<bool, StorageError> {
    outcome
        .await
        .map_err(|cause| StorageError::other(BatcherStopped(cause)))?
}

/// The batcher stopped before telling a caller the outcome of its issuance.
#[derive(Debug, thiserror::Error)]
#[error("the token issuance batcher stopped before reporting the outcome")]
struct BatcherStopped(#[source] oneshot::error::RecvError);

/// A batch's failure, for each of its callers but one (a `StorageError` is not `Clone`).
#[derive(Debug, thiserror::Error)]
#[error("the group commit of this issuance failed: {cause}")]
struct BatchFailed {
    cause: String,
}

/// The batcher's task: its end of the queue and the pool it writes to.
struct Batcher {
    writer: SqlitePool,
    queue: mpsc::Receiver<Pending>,
    log: Arc<Log>,
}

impl Batcher {
    async fn run(mut self) {
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_ISSUES_PER_COMMIT);
        while let Some(first) = self.queue.recv().await {
            batch.push(first);
            self.log.first();
            // Wait for the connection before taking the rest: what arrives meanwhile joins.
            let conn = self.writer.acquire().await;
            while batch.len() < MAX_ISSUES_PER_COMMIT {
                match self.queue.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            self.log.batch(batch.len());
            match conn {
                Ok(mut conn) => self.commit(&mut conn, &mut batch).await,
                Err(error) => reply_all(&mut batch, storage_error(error)),
            }
        }
    }

    /// Commits `batch` in one transaction and replies to each caller; leaves `batch` empty.
    async fn commit(&self, conn: &mut PoolConnection<Sqlite>, batch: &mut Vec<Pending>) {
        if batch.len() == 1 {
            if let Some((issue, reply)) = batch.pop() {
                // A reply nobody reads: the caller stopped waiting, the issuance stands.
                let _ = reply.send(issue_alone(conn, issue).await);
            }
            return;
        }
        let outcome = match issue_sql(batch.len()) {
            Some(sql) => {
                let query = batch
                    .iter()
                    .fold(sqlx::query(sql), |query, (issue, _)| issue.bind_ref(query));
                run_on(conn, query).await
            }
            // Not reached: batches are never larger. Each issuance then runs alone.
            None => Err(StorageError::other(format!(
                "no issuance query for a batch of {}",
                batch.len()
            ))),
        };
        match outcome {
            Ok(rows) => match claimed(&rows, batch.len()) {
                Ok(claimed) => {
                    for ((_, reply), claimed) in batch.drain(..).zip(claimed) {
                        let _ = reply.send(Ok(claimed));
                    }
                }
                // Committed, but which issuance was stored is unknown: no caller may be told
                // it succeeded.
                Err(error) => reply_all(batch, error),
            },
            Err(error) if error.kind() == StorageErrorKind::Unavailable => reply_all(batch, error),
            Err(error) => {
                tracing::debug!(
                    %error,
                    issuances = batch.len(),
                    "a group commit failed and was rolled back; its issuances run one by one"
                );
                for (issue, reply) in batch.drain(..) {
                    self.log.alone();
                    let _ = reply.send(issue_alone(conn, issue).await);
                }
            }
        }
    }
}

/// Runs one issuance as a transaction of its own: `false` if its grant is revoked.
pub(super) async fn issue_alone(
    conn: &mut PoolConnection<Sqlite>,
    issue: Issue,
) -> Result<bool, StorageError> {
    let sql = issue_sql(1).ok_or_else(|| StorageError::other("no issuance query for one"))?;
    let rows = run_on(conn, issue.bind(sqlx::query(sql))).await?;
    Ok(!rows.is_empty())
}

/// Which issuances of a batch of `count` were stored: those whose index a row returned.
fn claimed(
    rows: &[SqliteRow],
    count: usize,
) -> Result<[bool; MAX_ISSUES_PER_COMMIT], StorageError> {
    let mut claimed = [false; MAX_ISSUES_PER_COMMIT];
    for row in rows {
        let op: i64 = row.try_get("op").map_err(storage_error)?;
        let slot = usize::try_from(op)
            .ok()
            .filter(|&op| op < count)
            .and_then(|op| claimed.get_mut(op));
        match slot {
            Some(slot) => *slot = true,
            None => return Err(corrupt("issuance", format!("operation index {op}"))),
        }
    }
    Ok(claimed)
}

/// Sends `error` to every caller of `batch` (copies to all but the last); leaves it empty.
fn reply_all(batch: &mut Vec<Pending>, error: StorageError) {
    let mut replies = batch.drain(..).map(|(_, reply)| reply);
    let last = replies.next_back();
    for reply in replies {
        let cause = std::error::Error::source(&error).map_or_else(String::new, ToString::to_string);
        let _ = reply.send(Err(StorageError::new(error.kind(), BatchFailed { cause })));
    }
    if let Some(reply) = last {
        let _ = reply.send(Err(error));
    }
}

/// The query committing `count` issuances (1 to [`MAX_ISSUES_PER_COMMIT`]), generated once.
pub(super) fn issue_sql(count: usize) -> Option<&'static str> {
    static TEXTS: OnceLock<[String; MAX_ISSUES_PER_COMMIT]> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| std::array::from_fn(|index| issue_text(index + 1)));
    texts.get(count.checked_sub(1)?).map(String::as_str)
}

/// `BEGIN IMMEDIATE;`, then for each issuance: claim the grant (create its row or extend its
/// `keep_until`, unless revoked; return the issuance's index if claimed), store the access
/// token and, if one was bound, the refresh token, each only while the grant is not revoked;
/// then `COMMIT;`.
fn issue_text(count: usize) -> String {
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for op in 0..count {
        let [
            grant,
            keep_until,
            access_hash,
            access_expires,
            access_record,
            refresh_hash,
            refresh_expires,
            refresh_record,
        ]: [usize; PARAMS_PER_ISSUE] = std::array::from_fn(|n| PARAMS_PER_ISSUE * op + n + 1);
        sql.push_str(&format!(
            "INSERT INTO grants (grant_id, revoked, keep_until) VALUES (${grant}, 0, ${keep_until}) \
             ON CONFLICT (grant_id) DO UPDATE SET keep_until = max(keep_until, excluded.keep_until) \
             WHERE NOT revoked \
             RETURNING {op} AS op;\
             INSERT INTO access_tokens (token_hash, grant_id, expires_at, record) \
             SELECT ${access_hash}, ${grant}, ${access_expires}, ${access_record} \
             WHERE EXISTS (SELECT 1 FROM grants WHERE grant_id = ${grant} AND NOT revoked);\
             INSERT INTO refresh_tokens (token_hash, grant_id, expires_at, record) \
             SELECT ${refresh_hash}, ${grant}, ${refresh_expires}, ${refresh_record} \
             WHERE ${refresh_hash} IS NOT NULL \
             AND EXISTS (SELECT 1 FROM grants WHERE grant_id = ${grant} AND NOT revoked);"
        ));
    }
    sql.push_str("COMMIT;");
    sql
}

/// What the batcher did, for the tests; nothing outside them.
#[cfg(not(test))]
#[derive(Debug, Default)]
struct Log;

#[cfg(not(test))]
impl Log {
    fn first(&self) {}
    fn batch(&self, _size: usize) {}
    fn alone(&self) {}
}

/// What the batcher did: how many batches it started (took a first issuance for), the size of
/// every batch it took, and how many issuances it ran alone after their batch failed.
#[cfg(test)]
#[derive(Debug, Default)]
struct Log {
    firsts: std::sync::atomic::AtomicUsize,
    batches: std::sync::Mutex<Vec<usize>>,
    alone: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
impl Log {
    fn first(&self) {
        self.firsts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn batch(&self, size: usize) {
        self.batches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(size);
    }

    fn alone(&self) {
        self.alone.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests;
