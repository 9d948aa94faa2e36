//! Group commit, on a database file (the deployment's configuration: a writer pool of its own)
//! and in memory (one connection for everything).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{RefreshLookup, TokenStore};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::issue::PARAMS_PER_ISSUE;
use super::*;
use crate::SqliteStore;
use crate::sqlite::writes::tests::{NOW, access, refresh};

/// Issuances started at once by the concurrency tests: many times [`MAX_OPS_PER_COMMIT`].
const CONCURRENT: usize = 200;

/// An issuance: grant, access token, and refresh token if any.
type Tokens = (&'static str, String, Option<String>);

fn tokens(grant: &'static str, access: &str, refresh: Option<&str>) -> Tokens {
    (grant, access.to_owned(), refresh.map(str::to_owned))
}

/// A database file under the system's temporary directory, removed (with its WAL files) when
/// dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "mcp-auth-sqlx-batch-{}-{}.db",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let db = Self(std::env::temp_dir().join(name));
        db.remove();
        db
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

async fn open(url: &str) -> SqliteStore {
    let store = SqliteStore::connect(url).await.expect("open");
    store.migrate().await.expect("migrate");
    store
}

/// Runs `check` on a migrated store over a fresh file, then on one in memory.
async fn on_file_and_in_memory<F: Future<Output = ()>>(check: impl Fn(SqliteStore) -> F) {
    let db = TempDb::new();
    check(open(&db.url()).await).await;
    check(open("sqlite::memory:").await).await;
}

/// A current-thread runtime with timers and I/O, paused if `paused`.
fn runtime(paused: bool) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(paused)
        .build()
        .expect("runtime")
}

/// A store over `db` that issued its first token (`a1` of grant `g`) on `runtime`, where its
/// batcher's task therefore lives.
fn first_issued_on(runtime: &tokio::runtime::Runtime, db: &TempDb) -> SqliteStore {
    runtime.block_on(async {
        let store = open(&db.url()).await;
        assert!(
            store
                .issue_tokens(&access("g", "a1"), None)
                .await
                .expect("first")
        );
        store
    })
}

/// Starts every issuance at once, each on a task of its own, and returns their outcomes in
/// order.
async fn issue_concurrently(
    store: &SqliteStore,
    issues: &[Tokens],
) -> Vec<Result<bool, StorageError>> {
    let tasks: Vec<_> = issues
        .iter()
        .map(|(grant, token, refresh_token)| {
            let store = store.clone();
            let access = access(grant, token);
            let refresh = refresh_token.as_deref().map(|token| refresh(grant, token));
            tokio::spawn(async move { store.issue_tokens(&access, refresh.as_ref()).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("issuing task"));
    }
    outcomes
}

/// [`issue_concurrently`] while the test holds the writer connection, released once every
/// issuance is in the batcher's hands (taken as the first of a batch, or queued): then they
/// are committed in batches of [`MAX_OPS_PER_COMMIT`], and of all the rest.
async fn issue_queued(store: &SqliteStore, issues: &[Tokens]) -> Vec<Result<bool, StorageError>> {
    let held = store.writer.acquire().await.expect("hold the writer");
    let firsts = store.issues.log.firsts.load(Ordering::SeqCst);
    let outcomes = issue_concurrently(store, issues);
    let release = async {
        loop {
            let taken = store.issues.log.firsts.load(Ordering::SeqCst) - firsts;
            let queued = store
                .issues
                .queue
                .get()
                .map_or(0, |queue| queue.max_capacity() - queue.capacity());
            if taken + queued == issues.len() {
                break;
            }
            // Waiting for a condition, not timing anything.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(held);
    };
    let (outcomes, ()) = tokio::join!(outcomes, release);
    outcomes
}

fn batches(store: &SqliteStore) -> Vec<usize> {
    store.issues.log.batches.lock().expect("log").clone()
}

/// Issuances run alone after their batch failed.
fn ran_alone(store: &SqliteStore) -> usize {
    store.issues.log.alone.load(Ordering::SeqCst)
}

/// Asserts that each issuance's tokens are stored if `stored`, and absent otherwise.
async fn assert_stored(store: &SqliteStore, issue: &Tokens, stored: bool) {
    let (_, token, refresh_token) = issue;
    let found = store.get_access_token(&SecretHash::of(token), NOW).await;
    assert_eq!(found.expect("lookup").is_some(), stored, "{token}");
    if let Some(refresh_token) = refresh_token {
        let found = store
            .get_refresh_token(&SecretHash::of(refresh_token), NOW)
            .await;
        match found.expect("lookup") {
            Some(RefreshLookup::Active(_)) => assert!(stored, "{refresh_token}"),
            None => assert!(!stored, "{refresh_token}"),
            Some(other) => panic!("{refresh_token}: {other:?}"),
        }
    }
}

/// Half pairs, half access tokens alone; every fifth issuance shares a grant with others.
fn many_issuances() -> Vec<Tokens> {
    const GRANTS: [&str; 5] = ["g0", "g1", "g2", "g3", "g4"];
    (0..CONCURRENT)
        .map(|i| {
            let refresh = (i % 2 == 0).then(|| format!("r{i}"));
            tokens(
                GRANTS[i % GRANTS.len()],
                &format!("a{i}"),
                refresh.as_deref(),
            )
        })
        .collect()
}

async fn check_concurrent_issuances_are_committed_together(store: SqliteStore) {
    let issues = many_issuances();
    let outcomes = issue_queued(&store, &issues).await;
    for (issue, outcome) in issues.iter().zip(outcomes) {
        assert!(outcome.expect("issued"), "{issue:?}");
        assert_stored(&store, issue, true).await;
    }
    let batches = batches(&store);
    assert_eq!(batches.iter().sum::<usize>(), CONCURRENT);
    assert!(batches.iter().all(|&size| size <= MAX_OPS_PER_COMMIT));
    assert_eq!(batches.len(), CONCURRENT.div_ceil(MAX_OPS_PER_COMMIT));
    // Committed as batches, not one by one after a failed batch.
    assert_eq!(ran_alone(&store), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issuances_are_committed_together_and_all_stored() {
    on_file_and_in_memory(check_concurrent_issuances_are_committed_together).await;
}

async fn check_free_running_issuances_are_all_stored(store: SqliteStore) {
    let issues = many_issuances();
    let outcomes = issue_concurrently(&store, &issues).await;
    for (issue, outcome) in issues.iter().zip(outcomes) {
        assert!(outcome.expect("issued"), "{issue:?}");
        assert_stored(&store, issue, true).await;
    }
    assert_eq!(batches(&store).iter().sum::<usize>(), CONCURRENT);
    assert_eq!(ran_alone(&store), 0);
}

/// The same without holding anything back: however the issuances fall into batches, each is
/// stored once and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuances_racing_the_batcher_are_all_stored() {
    on_file_and_in_memory(check_free_running_issuances_are_all_stored).await;
}

async fn check_revoked_grant_in_a_batch(store: SqliteStore) {
    store
        .revoke_grant("revoked", NOW + 600)
        .await
        .expect("revoke");
    let issues = [
        tokens("g1", "a1", Some("r1")),
        tokens("revoked", "a2", Some("r2")),
        tokens("g1", "a3", None),
        tokens("g2", "a4", None),
        tokens("revoked", "a5", None),
    ];
    let outcomes = issue_queued(&store, &issues).await;
    let stored: Vec<bool> = outcomes.into_iter().map(|o| o.expect("issue")).collect();
    assert_eq!(stored, [true, false, true, true, false]);
    for (issue, stored) in issues.iter().zip(stored) {
        assert_stored(&store, issue, stored).await;
    }
    assert_eq!(batches(&store), [issues.len()]);
    assert_eq!(ran_alone(&store), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_in_a_batch_stores_nothing_and_the_others_are_stored() {
    on_file_and_in_memory(check_revoked_grant_in_a_batch).await;
}

async fn check_failing_issuance_in_a_batch(store: SqliteStore) {
    assert!(
        store
            .issue_tokens(&access("g0", "taken"), None)
            .await
            .expect("first use of the hash")
    );
    let issues = [
        tokens("g1", "a1", Some("r1")),
        tokens("g2", "taken", None),
        tokens("g3", "a3", None),
    ];
    let outcomes = issue_queued(&store, &issues).await;
    let mut outcomes = outcomes.into_iter();
    assert!(outcomes.next().expect("a1").expect("a1 stored"));
    let failed = outcomes
        .next()
        .expect("taken")
        .expect_err("a hash stored twice");
    assert_eq!(failed.kind(), StorageErrorKind::Conflict);
    assert!(outcomes.next().expect("a3").expect("a3 stored"));
    assert_stored(&store, &issues[0], true).await;
    assert_stored(&store, &issues[2], true).await;
    assert_eq!(batches(&store), [1, issues.len()]);
    assert_eq!(ran_alone(&store), issues.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_issuance_fails_alone_and_the_rest_of_its_batch_is_stored() {
    on_file_and_in_memory(check_failing_issuance_in_a_batch).await;
}

/// Another connection holds the write lock and the store does not wait for it: the batch's
/// `BEGIN IMMEDIATE` is busy. That is the database's state, not one issuance's fault, so every
/// caller gets it at once and none is retried alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_database_fails_the_whole_batch_at_once() {
    let db = TempDb::new();
    let store = open(&db.url()).await;
    let options = SqliteConnectOptions::from_str(&db.url())
        .expect("url")
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::ZERO);
    let impatient = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("second pool");
    let impatient = SqliteStore::from_pool(impatient);
    let mut locker = store.writer.acquire().await.expect("writer");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *locker)
        .await
        .expect("take the write lock");

    let issues = [tokens("g1", "a1", None), tokens("g2", "a2", Some("r2"))];
    for outcome in issue_queued(&impatient, &issues).await {
        let error = outcome.expect_err("the database is locked");
        assert_eq!(error.kind(), StorageErrorKind::Unavailable);
    }
    assert_eq!(batches(&impatient), [issues.len()]);
    assert_eq!(ran_alone(&impatient), 0);

    sqlx::query("ROLLBACK")
        .execute(&mut *locker)
        .await
        .expect("release the write lock");
    drop(locker);
    assert!(
        impatient
            .issue_tokens(&access("g1", "a1"), None)
            .await
            .expect("issued once the lock is free")
    );
}

/// The batcher's task lives on the runtime of the first issuance; a store used after that
/// runtime is gone still issues, one transaction per issuance. (On a file: sqlx loses an
/// in-memory database whose connection was being returned to the pool when the runtime
/// stopped.)
#[test]
fn a_store_outliving_the_batchers_runtime_still_issues() {
    let db = TempDb::new();
    let store = first_issued_on(&runtime(false), &db);
    runtime(false).block_on(async {
        assert!(
            store
                .issue_tokens(&access("g", "a2"), None)
                .await
                .expect("second")
        );
        for token in ["a1", "a2"] {
            assert_stored(&store, &tokens("g", token, None), true).await;
        }
    });
}

/// A library user's first write ran inside a runtime that stays alive but is no longer
/// driven: the batcher lives there and never runs again. A caller on another runtime must not
/// wait forever.
#[test]
fn a_batcher_that_cannot_run_answers_unavailable_within_the_wait_bound() {
    let db = TempDb::new();
    let idle = runtime(false);
    let store = first_issued_on(&idle, &db);
    runtime(true).block_on(async {
        let started = tokio::time::Instant::now();
        let error = store
            .issue_tokens(&access("g", "a2"), None)
            .await
            .expect_err("nobody runs the batcher");
        assert_eq!(error.kind(), StorageErrorKind::Unavailable);
        assert_eq!(started.elapsed(), BATCH_WAIT);
    });
    drop(idle);
}

#[tokio::test]
async fn a_reply_that_never_comes_is_an_error_not_a_success() {
    let (reply, outcome) = oneshot::channel();
    drop(reply);
    let error = wait_for::<Issue>(outcome).await.expect_err("no outcome");
    assert_eq!(error.kind(), StorageErrorKind::Other);
}

#[test]
fn issuance_texts_number_each_issuance_apart_and_return_its_index() {
    assert!(Issue::sql(0).is_none());
    assert!(Issue::sql(MAX_OPS_PER_COMMIT + 1).is_none());
    for count in 1..=MAX_OPS_PER_COMMIT {
        let sql = Issue::sql(count).expect("text");
        assert_eq!(sql.matches("RETURNING").count(), count, "{sql}");
        let last = count - 1;
        assert!(sql.contains(&format!("RETURNING {last} AS op;")), "{sql}");
        let highest = format!("${}", PARAMS_PER_ISSUE * count);
        assert!(sql.contains(&highest), "{sql}");
        // Numbered `?n` parameters would leave unnamed gaps that sqlx binds wrongly.
        assert!(!sql.contains('?'), "{sql}");
    }
}

mod clients;
