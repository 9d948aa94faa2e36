//! Group commit: concurrent writes of one kind on SQLite share one transaction.
//!
//! Two kinds of write are batched, each by a [`Batcher`] of its own: token issuances
//! ([`IssueBatcher`], `TokenStore::issue_tokens`) and client registrations
//! ([`ClientInsertBatcher`], `ClientStore::insert_client`, the only write of RFC 7591's
//! `POST /register`). Each kind is an [`Op`]: its parameters, its statements for operation i
//! of a batch, and what its caller learns.
//!
//! # Why
//!
//! A `client_credentials` issuance on SQLite cost about 128 µs of CPU per request on the
//! release server under load (32 concurrent connections), and most of it is paid per
//! *transaction*, not per row: in a `perf` profile of that load, checkpointing took 12 % of the
//! samples, writing WAL frames 8.6 %, the hand-off to sqlx's connection thread about 9 % on that
//! thread plus about 13 % in sqlx and 7.5 % of scheduling on the tokio side, and the B-tree
//! steps and the commit about 17 %. A dynamic client registration cost 60.7 µs of CPU per
//! request on the same server and load, against a goal of 60 µs and 21 µs for the whole request
//! on the memory store: the difference is its one write, an autocommit `INSERT INTO clients`,
//! that is one hand-off to the connection thread and one commit per registration — the same
//! per-transaction costs.
//!
//! # What is amortised
//!
//! Writes of one kind that wait for the writer are committed together: **one** transaction,
//! one query, one call to the connection thread. Over a batch of k writes that shares out
//!
//! - the hand-off to the connection thread and back (two thread wake-ups, sqlx's work per
//!   call, the task scheduling around it): once per batch instead of once per write;
//! - the commit itself (`BEGIN IMMEDIATE`, taking and releasing the write lock, the WAL commit
//!   record);
//! - the WAL frames: a commit appends every page it changed, whole, to the log. The writes of
//!   a batch share some of those pages — the last pages of whatever grows with time (the
//!   `expires_at` indexes, the appended token rows, grants and their `grant_id` entries, since
//!   grant ids start with their creation time), interior pages, and any leaf of the hash and
//!   client-id indexes that two of them land on — and a batch writes each of those once
//!   instead of once per write;
//! - so also the checkpoints, which copy those frames back into the database file: fewer
//!   frames, fewer checkpoints.
//!
//! What stays per write: binding, the B-tree steps of its rows, the JSON encoding.
//!
//! # How
//!
//! Each store (its clones included) has one batcher per kind, with a task each. A task,
//! started at its kind's first write, takes the first write waiting in a bounded queue
//! ([`QUEUE_CAPACITY`]), waits for the writer connection, takes whatever else is waiting by
//! then (up to [`MAX_OPS_PER_COMMIT`]) and runs them as one query: `BEGIN IMMEDIATE;` the
//! statements of write 0, those of write 1, …, `COMMIT;`. It never waits to fill a batch: at
//! low load a batch is a single write, which costs one channel hop and one reply more than
//! before, and batches grow exactly when writes arrive faster than the writer commits them.
//! The two tasks share the one writer connection and take turns on it, in the pool's order.
//!
//! The query for each kind and batch size is generated once ([`Op::sql`]) and kept in a
//! `static`, so sqlx prepares each text once per connection and caches it like any other
//! statement.
//!
//! Write i binds parameters `$Pi+1` … `$Pi+P`, P being its kind's [`Op::PARAMS`]. They are
//! `$n`, not `?n`: SQLite names `$n` parameters, so each statement numbers its own 1, 2, …
//! without gaps, and sqlx binds a named one by its number. A `?n` parameter keeps its number as
//! its index, leaving unnamed gaps below it; sqlx fills those from a running count and stops
//! binding the statement at all once that count passes the number of arguments, which the
//! later writes of a batch would reach.
//!
//! # Outcomes
//!
//! Each write returns its index (`RETURNING i AS op`) from the statement that decides it: an
//! issuance's claim of its grant (none if the grant is revoked: nothing was written), a
//! client's insert (always, if the query commits). The statements run in order inside the
//! transaction, so two writes of one grant or one client in one batch each see the database as
//! the other left it, as two transactions in a row would.
//!
//! A batch that fails is rolled back whole (`writes::run_on`). Then each of its writes runs
//! again alone, in the order they were queued, so that only the faulty one fails (a token hash
//! or a `client_id` already stored: `Conflict`; of two registrations of one new `client_id` in
//! a batch, the first is stored and the second gets `Conflict`) — unless the failure is
//! `Unavailable` (the database is busy or unreachable), which belongs to the database and not
//! to one write: every caller of the batch gets it at once, rather than each waiting out the
//! busy timeout again. If the writer connection cannot be had, every caller of the batch gets
//! that error. A caller whose reply never comes (the task panicked, the runtime is stopping)
//! gets an error, never a success. A caller that finds the task gone (it lived on a runtime
//! that has since shut down) has handed nothing over, and runs its write alone, detached, as
//! before group commit.
//!
//! # Cancellation
//!
//! As with [`crate::detach`]: a write handed to the queue is committed or rolled back by the
//! batcher's task whether or not its caller keeps waiting; only its reply goes unread. A caller
//! dropped while the queue is full has handed over nothing.

use std::sync::{Arc, OnceLock};

use mcp_auth_core::{StorageError, StorageErrorKind};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Row as _, Sqlite};
use tokio::sync::{mpsc, oneshot};

use super::writes::run_on;
use crate::detach::detached;
use crate::error::{corrupt, storage_error};

mod client;
mod issue;

pub(super) use client::ClientInsert;
pub(super) use issue::Issue;

/// Writes of one kind waiting for their batcher, beyond which a caller waits to enqueue
/// (backpressure instead of an unbounded queue). At one batch of [`MAX_OPS_PER_COMMIT`] per
/// ~0.1–1 ms, 1,024 is some tens of milliseconds of work: far more than the server's concurrent
/// requests, so the queue only fills when the database has stalled.
pub(super) const QUEUE_CAPACITY: usize = 1024;

/// How long a caller waits for its batcher, to hand its write over and for the outcome, before
/// answering `Unavailable` (30 s): the writer's acquire timeout, one batch's busy timeout and
/// a margin, so it fires only when the batcher cannot run at all (its task lives on a runtime
/// that is alive but no longer driven). A write handed over may still commit after that;
/// the caller is told it failed, never that it succeeded.
pub(super) const BATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes of one kind committed in one transaction at most. Each kind and batch size has a
/// query text of its own, cached per connection by sqlx (100 statements per connection, of
/// which this crate's other statements use about 40), so sixteen texts per kind, 32 in all,
/// fit with room to spare. Past sixteen the per-transaction share of a write's cost is already
/// a few percent, while a longer transaction keeps the batch's callers (and every other
/// writer) waiting longer.
pub(super) const MAX_OPS_PER_COMMIT: usize = 16;

/// A query with its arguments, borrowed for `'q` (or owned, for `'static`).
pub(super) type Bound<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

/// The query texts of one kind of write, one per batch size, generated at first use.
pub(super) type Texts = OnceLock<[String; MAX_OPS_PER_COMMIT]>;

/// A kind of write that can be committed in a batch with others of its kind: its values,
/// owned, and how they become statements, arguments and an outcome.
pub(super) trait Op: Send + Sync + Sized + 'static {
    /// What a caller learns of a write that was committed.
    type Outcome: Send + 'static;

    /// What the write is, for messages (`"issuance"`).
    const WHAT: &'static str;

    /// Parameters each write binds, numbered from `PARAMS * i + 1` for write i.
    const PARAMS: usize;

    /// The kind's cache of query texts, a `static` of its own (a `static` in a generic
    /// function would be one for all kinds).
    fn texts() -> &'static Texts;

    /// The statements of write `op` of a batch, each ending in `;`, reading only the
    /// parameters `$PARAMS*op+1` … `$PARAMS*op+PARAMS`; the one that decides the write returns
    /// `op AS op` when the write happened.
    fn statements(op: usize) -> String;

    /// Binds the values by move: a write run alone needs them no more.
    fn bind(self, query: Bound<'static>) -> Bound<'static>;

    /// Binds the values by reference (sqlx copies them for the connection thread), keeping
    /// them to run the write alone if its batch fails.
    fn bind_ref<'q>(&'q self, query: Bound<'q>) -> Bound<'q>;

    /// The caller's outcome of a committed write, from whether its index came back.
    fn outcome(returned: bool) -> Result<Self::Outcome, StorageError>;

    /// The query committing `count` writes (1 to [`MAX_OPS_PER_COMMIT`]), generated once.
    fn sql(count: usize) -> Option<&'static str> {
        let texts = Self::texts().get_or_init(|| std::array::from_fn(|i| text::<Self>(i + 1)));
        texts.get(count.checked_sub(1)?).map(String::as_str)
    }
}

/// `BEGIN IMMEDIATE;`, the statements of each of `count` writes, `COMMIT;`.
fn text<O: Op>(count: usize) -> String {
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for op in 0..count {
        sql.push_str(&O::statements(op));
    }
    sql.push_str("COMMIT;");
    sql
}

/// The parameter numbers of write `op` of a kind with `N` parameters: `N*op+1` … `N*op+N`.
fn numbered<const N: usize>(op: usize) -> [usize; N] {
    std::array::from_fn(|n| N * op + n + 1)
}

/// A caller's reply: its write's outcome.
type Reply<O> = oneshot::Sender<Result<<O as Op>::Outcome, StorageError>>;

/// A write in the queue, with where its outcome goes.
type Pending<O> = (O, Reply<O>);

/// Token issuances of one store, committed together.
pub(super) type IssueBatcher = Batcher<Issue>;

/// Client registrations of one store, committed together.
pub(super) type ClientInsertBatcher = Batcher<ClientInsert>;

/// The queue of one kind of write of one store and its clones. The task that drains it starts
/// at the first write (a store is built outside any runtime) and ends when the store's last
/// clone is dropped (its queue's only sender), after committing what was queued.
#[derive(Debug)]
pub(super) struct Batcher<O: Op> {
    queue: OnceLock<mpsc::Sender<Pending<O>>>,
    log: Arc<Log>,
}

impl<O: Op> Default for Batcher<O> {
    fn default() -> Self {
        Self {
            queue: OnceLock::new(),
            log: Arc::default(),
        }
    }
}

impl<O: Op> Batcher<O> {
    /// Runs `op` on `writer`, committed with whatever other writes of its kind are waiting.
    pub(super) async fn submit(
        &self,
        writer: &SqlitePool,
        op: O,
    ) -> Result<O::Outcome, StorageError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, queue) = mpsc::channel(QUEUE_CAPACITY);
            let task = Task {
                writer: writer.clone(),
                queue,
                log: Arc::clone(&self.log),
            };
            // Detached: it outlives any one caller.
            drop(tokio::spawn(task.run()));
            sender
        });
        let (reply, outcome) = oneshot::channel();
        let handed_over = async {
            if let Err(mpsc::error::SendError((op, _))) = queue.send((op, reply)).await {
                // The task is gone: the runtime that started it has shut down (the store moved
                // to another runtime) or it panicked. The write was not handed over, so it can
                // run alone, detached as every write is, on the current runtime.
                let writer = writer.clone();
                return detached(async move {
                    let mut conn = writer.acquire().await.map_err(storage_error)?;
                    run_alone(&mut conn, op).await
                })
                .await;
            }
            wait_for::<O>(outcome).await
        };
        tokio::time::timeout(BATCH_WAIT, handed_over)
            .await
            .unwrap_or_else(|_| {
                Err(StorageError::new(
                    StorageErrorKind::Unavailable,
                    BatcherTimedOut { what: O::WHAT },
                ))
            })
    }
}

/// The outcome the batcher sends; an error if it stopped before sending one, since then the
/// write may or may not have been committed.
async fn wait_for<O: Op>(
    outcome: oneshot::Receiver<Result<O::Outcome, StorageError>>,
) -> Result<O::Outcome, StorageError> {
    outcome.await.map_err(|cause| {
        StorageError::other(BatcherStopped {
            what: O::WHAT,
            cause,
        })
    })?
}

/// The batcher did not take a caller's write, or did not report its outcome, within
/// [`BATCH_WAIT`].
#[derive(Debug, thiserror::Error)]
#[error("the {what} batcher did not answer within {BATCH_WAIT:?}")]
struct BatcherTimedOut {
    /// The kind of write ([`Op::WHAT`]).
    what: &'static str,
}

/// The batcher stopped before telling a caller the outcome of its write.
#[derive(Debug, thiserror::Error)]
#[error("the {what} batcher stopped before reporting the outcome")]
struct BatcherStopped {
    /// The kind of write ([`Op::WHAT`]).
    what: &'static str,
    #[source]
    cause: oneshot::error::RecvError,
}

/// A batch's failure, for each of its callers but one (a `StorageError` is not `Clone`).
#[derive(Debug, thiserror::Error)]
#[error("the group commit of this {what} failed: {cause}")]
struct BatchFailed {
    /// The kind of write ([`Op::WHAT`]).
    what: &'static str,
    cause: String,
}

/// A batcher's task: its end of the queue and the pool it writes to.
struct Task<O: Op> {
    writer: SqlitePool,
    queue: mpsc::Receiver<Pending<O>>,
    log: Arc<Log>,
}

impl<O: Op> Task<O> {
    async fn run(mut self) {
        let mut batch: Vec<Pending<O>> = Vec::with_capacity(MAX_OPS_PER_COMMIT);
        while let Some(first) = self.queue.recv().await {
            batch.push(first);
            self.log.first();
            // Wait for the connection before taking the rest: what arrives meanwhile joins.
            let conn = self.writer.acquire().await;
            while batch.len() < MAX_OPS_PER_COMMIT {
                match self.queue.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            self.log.batch(batch.len());
            match conn {
                Ok(mut conn) => self.commit(&mut conn, &mut batch).await,
                Err(error) => reply_all::<O>(&mut batch, storage_error(error)),
            }
        }
    }

    /// Commits `batch` in one transaction and replies to each caller; leaves `batch` empty.
    async fn commit(&self, conn: &mut PoolConnection<Sqlite>, batch: &mut Vec<Pending<O>>) {
        if batch.len() == 1 {
            if let Some((op, reply)) = batch.pop() {
                // A reply nobody reads: the caller stopped waiting, the write stands.
                let _ = reply.send(run_alone(conn, op).await);
            }
            return;
        }
        let outcome = match O::sql(batch.len()) {
            Some(sql) => {
                let query = batch
                    .iter()
                    .fold(sqlx::query(sql), |query, (op, _)| op.bind_ref(query));
                run_on(conn, query).await
            }
            // Not reached: batches are never larger. Each write then runs alone.
            None => Err(StorageError::other(format!(
                "no {} query for a batch of {}",
                O::WHAT,
                batch.len()
            ))),
        };
        match outcome {
            Ok(rows) => match returned::<O>(&rows, batch.len()) {
                Ok(returned) => {
                    for ((_, reply), returned) in batch.drain(..).zip(returned) {
                        let _ = reply.send(O::outcome(returned));
                    }
                }
                // Committed, but which write was stored is unknown: no caller may be told it
                // succeeded.
                Err(error) => reply_all::<O>(batch, error),
            },
            Err(error) if error.kind() == StorageErrorKind::Unavailable => {
                reply_all::<O>(batch, error);
            }
            Err(error) => {
                tracing::debug!(
                    %error,
                    kind = O::WHAT,
                    writes = batch.len(),
                    "a group commit failed and was rolled back; its writes run one by one"
                );
                let mut writes = std::mem::take(batch).into_iter();
                while let Some((op, reply)) = writes.next() {
                    self.log.alone();
                    match run_alone(conn, op).await {
                        // The database's failure, not this write's: the rest of the batch
                        // gets it at once rather than each waiting out the busy timeout.
                        Err(error) if error.kind() == StorageErrorKind::Unavailable => {
                            let copy = batch_copy::<O>(&error);
                            let _ = reply.send(Err(error));
                            reply_all::<O>(&mut writes.collect(), copy);
                            break;
                        }
                        outcome => {
                            let _ = reply.send(outcome);
                        }
                    }
                }
            }
        }
    }
}

/// Runs one write as a transaction of its own.
pub(super) async fn run_alone<O: Op>(
    conn: &mut PoolConnection<Sqlite>,
    op: O,
) -> Result<O::Outcome, StorageError> {
    let sql = O::sql(1).ok_or_else(|| StorageError::other(format!("no {} query", O::WHAT)))?;
    let rows = run_on(conn, op.bind(sqlx::query(sql))).await?;
    let [returned, ..] = returned::<O>(&rows, 1)?;
    O::outcome(returned)
}

/// Which writes of a batch of `count` returned their index.
fn returned<O: Op>(
    rows: &[SqliteRow],
    count: usize,
) -> Result<[bool; MAX_OPS_PER_COMMIT], StorageError> {
    let mut returned = [false; MAX_OPS_PER_COMMIT];
    for row in rows {
        let op: i64 = row.try_get("op").map_err(storage_error)?;
        let slot = usize::try_from(op)
            .ok()
            .filter(|&op| op < count)
            .and_then(|op| returned.get_mut(op));
        match slot {
            Some(slot) => *slot = true,
            None => return Err(corrupt(O::WHAT, format!("operation index {op}"))),
        }
    }
    Ok(returned)
}

/// Sends `error` to every caller of `batch` (copies to all but the last); leaves it empty.
fn reply_all<O: Op>(batch: &mut Vec<Pending<O>>, error: StorageError) {
    let mut replies = batch.drain(..).map(|(_, reply)| reply);
    let last = replies.next_back();
    for reply in replies {
        let _ = reply.send(Err(batch_copy::<O>(&error)));
    }
    if let Some(reply) = last {
        let _ = reply.send(Err(error));
    }
}

/// `error` again, for another caller of the same batch: its kind, and its cause as text (a
/// `StorageError` is not `Clone`, and its own message is only its kind).
fn batch_copy<O: Op>(error: &StorageError) -> StorageError {
    let cause = std::error::Error::source(error).map_or_else(String::new, ToString::to_string);
    StorageError::new(
        error.kind(),
        BatchFailed {
            what: O::WHAT,
            cause,
        },
    )
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

/// What the batcher did: how many batches it started (took a first write for), the size of
/// every batch it took, and how many writes it ran alone after their batch failed.
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
