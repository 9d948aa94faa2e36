//! The token writes of [`SqliteStore`].
//!
//! # One call to the database per operation
//!
//! sqlx runs each SQLite connection on a thread of its own, and every call (`BEGIN`, each
//! statement, `COMMIT`) is a message to that thread and a reply back: two thread wake-ups, which
//! cost more CPU than the statements themselves on a local database. So issuing, rotating and
//! revoking each send **one** query: `BEGIN IMMEDIATE; …; COMMIT` as a multi-statement query
//! (sqlx's SQLite driver prepares and caches it like any other: one `VirtualStatement` per
//! connection, its statements prepared once). `?N` parameters are numbered, so every statement
//! of the query reads the same arguments. (A statement that skips numbers — `?5` without
//! `?2`–`?4` — leaves unnamed gaps, which sqlx fills from a running count of arguments and stops
//! binding once that count passes the number of arguments; these texts stay well below, and the
//! generated batch texts use `$N`, see [`super::batch`].) Issuing goes one step further:
//! concurrent issuances share one such query and one commit (see [`super::batch`]).
//!
//! The logic that used to sit between statements is in the SQL instead: every write after the
//! first is guarded by an `EXISTS` over the state that allows it (the grant is live, the old
//! refresh token is live and unrotated), evaluated inside the transaction, and the rows the
//! query returns tell the outcome. `BEGIN IMMEDIATE` takes the write lock before the first read,
//! so no other writer can change that state in between.
//!
//! (Multi-statement prepared queries are SQLite-only in sqlx, and sqlx calls relying on them
//! deprecated in favour of `raw_sql`, which binds no parameters. If a future sqlx refused
//! them, every write here would fail at once, and the storage conformance suite would say so.)
//!
//! # Failures and cancellation
//!
//! A statement that fails stops the query, possibly after `BEGIN` and before `COMMIT`: the
//! transaction would stay open on a pooled connection and hold the write lock. [`run`] rolls
//! it back on the same connection, and closes the connection when even that fails. And sqlx's
//! connection thread stops a query whose caller went away, so these queries run detached
//! from the request (see [`crate::detach`]): a client hanging up cannot stop one half-way.

use mcp_auth_core::StorageError;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{AccessTokenRecord, RefreshTokenRecord, Rotation};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Row as _, Sqlite};

use super::SqliteStore;
use super::batch::Issue;
use crate::codec::encode;
use crate::detach::detached;
use crate::dialect::TokenWrites;
use crate::error::storage_error;
use crate::grant::check_same_grant;

/// A query with its arguments bound and owned, ready to move onto a detached task.
type Prepared = Query<'static, Sqlite, SqliteArguments<'static>>;

/// The condition every write of a rotation waits for: the old refresh token (`?1`, live at
/// `?2`) is unrotated and belongs to `?3`, whose grant row is not revoked. It stays true until
/// the last statement marks the old token rotated.
macro_rules! rotation_allowed {
    () => {
        "EXISTS (SELECT 1 FROM refresh_tokens AS old, grants AS g \
         WHERE old.token_hash = ?1 AND old.expires_at > ?2 AND NOT old.rotated \
         AND old.grant_id = ?3 AND g.grant_id = ?3 AND NOT g.revoked)"
    };
}

/// Rotating: reports the old token (`SELECT`), claims its grant (`?4` keep-until), replaces the
/// grant's access tokens with the new one (`?5`–`?7`), stores the new refresh token (`?8`–`?10`)
/// and marks the old one rotated — the last step, since every earlier one checks it is not.
macro_rules! rotate_sql {
    ($($refresh:literal)?) => {
        concat!(
            "BEGIN IMMEDIATE;",
            "SELECT grant_id, rotated FROM refresh_tokens WHERE token_hash = ?1 AND expires_at > ?2;",
            "INSERT INTO grants (grant_id, revoked, keep_until) \
             SELECT ?3, 0, ?4 WHERE EXISTS (SELECT 1 FROM refresh_tokens \
               WHERE token_hash = ?1 AND expires_at > ?2 AND NOT rotated AND grant_id = ?3) \
             ON CONFLICT (grant_id) DO UPDATE SET keep_until = max(keep_until, excluded.keep_until) \
             WHERE NOT revoked \
             RETURNING 1 AS claimed;",
            "DELETE FROM access_tokens WHERE grant_id = ?3 AND ", rotation_allowed!(), ";",
            "INSERT INTO access_tokens (token_hash, grant_id, expires_at, record) \
             SELECT ?5, ?3, ?6, ?7 WHERE ", rotation_allowed!(), ";",
            $($refresh, rotation_allowed!(), ";",)?
            "UPDATE refresh_tokens SET rotated = 1, rotated_at = ?2 WHERE token_hash = ?1 AND ", rotation_allowed!(), ";",
            "COMMIT;"
        )
    };
}

const ROTATE_TO_ACCESS: &str = rotate_sql!();
const ROTATE_TO_PAIR: &str = rotate_sql!(
    "INSERT INTO refresh_tokens (token_hash, grant_id, expires_at, record) \
     SELECT ?8, ?3, ?9, ?10 WHERE "
);

/// Revoking: marks the grant revoked (creating its row if needed) and deletes its tokens. A
/// live grant's `keep_until` tracked its tokens, which go, so the revocation's own `keep_until`
/// replaces it; a second revocation can only extend it.
const REVOKE: &str = "BEGIN IMMEDIATE;\
     INSERT INTO grants (grant_id, revoked, keep_until) VALUES (?1, 1, ?2) \
     ON CONFLICT (grant_id) DO UPDATE SET \
       keep_until = CASE WHEN revoked THEN max(keep_until, excluded.keep_until) \
                         ELSE excluded.keep_until END, \
       revoked = 1;\
     DELETE FROM access_tokens WHERE grant_id = ?1;\
     DELETE FROM refresh_tokens WHERE grant_id = ?1;\
     COMMIT;";

/// Purging: deletes expired tokens, then the rows of grants past their `keep_until`, and
/// counts what went with `changes()` after each counted statement. A live grant's row is
/// bookkeeping, not a record of the contract, so it is deleted (all its tokens have expired by
/// its `keep_until`) but not counted.
const PURGE_TOKENS: &str = "BEGIN IMMEDIATE;\
     DELETE FROM access_tokens WHERE expires_at <= ?1; SELECT changes() AS purged;\
     DELETE FROM refresh_tokens WHERE expires_at <= ?1; SELECT changes() AS purged;\
     DELETE FROM grants WHERE keep_until <= ?1 AND revoked; SELECT changes() AS purged;\
     DELETE FROM grants WHERE keep_until <= ?1 AND NOT revoked;\
     COMMIT;";

/// Each write is bound here, on the caller's task, and run detached on the writer (issuances
/// by the batcher's task, with the issuances waiting beside them): a caller that stops waiting
/// cannot stop it half-way, with the write lock held.
impl TokenWrites for SqliteStore {
    async fn issue(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        keep_until: i64,
    ) -> Result<bool, StorageError> {
        let issue = Issue::new(access, refresh, keep_until)?;
        self.issues.submit(&self.writer, issue).await
    }

    async fn rotate(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        keep_until: i64,
        now: i64,
    ) -> Result<Rotation, StorageError> {
        let query = rotate_query(old_hash, access, refresh, keep_until, now)?;
        let pool = self.writer.clone();
        let (access, refresh) = (access.clone(), refresh.cloned());
        detached(async move { rotated(pool, query, &access, refresh.as_ref()).await }).await
    }

    async fn revoke(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        let query = revoke_query(grant_id, keep_until);
        let pool = self.writer.clone();
        detached(async move { run(pool, query).await.map(drop) }).await
    }

    async fn purge(&self, now: i64) -> Result<u64, StorageError> {
        let pool = self.writer.clone();
        detached(async move { purge_tokens(pool, now).await }).await
    }
}

fn key(hash: &SecretHash) -> Vec<u8> {
    hash.as_bytes().to_vec()
}

/// Binds the refresh token's parameters, when there is one, after the access token's.
fn bind_refresh(
    query: Prepared,
    refresh: Option<&RefreshTokenRecord>,
) -> Result<Prepared, StorageError> {
    Ok(match refresh {
        Some(refresh) => query
            .bind(key(&refresh.token_hash))
            .bind(refresh.expires_at)
            .bind(encode(refresh)?),
        None => query,
    })
}

/// `TokenStore::rotate_refresh_token`, bound: run it with [`rotated`].
fn rotate_query(
    old_hash: &SecretHash,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
    keep_until: i64,
    now: i64,
) -> Result<Prepared, StorageError> {
    let query = sqlx::query(if refresh.is_some() {
        ROTATE_TO_PAIR
    } else {
        ROTATE_TO_ACCESS
    })
    .bind(key(old_hash))
    .bind(now)
    .bind(access.grant_id.clone())
    .bind(keep_until)
    .bind(key(&access.token_hash))
    .bind(access.expires_at)
    .bind(encode(access)?);
    bind_refresh(query, refresh)
}

/// Runs a [`rotate_query`] for new tokens of `access`'s grant (and `refresh`'s, the same one:
/// [`grant_keep_until`](crate::grant::grant_keep_until) checked it).
async fn rotated(
    pool: SqlitePool,
    query: Prepared,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
) -> Result<Rotation, StorageError> {
    let rows = run(pool, query).await?;
    let mut old: Option<(String, bool)> = None;
    let mut claimed = false;
    for row in &rows {
        if row.try_get::<i64, _>("claimed").is_ok() {
            claimed = true;
        } else {
            old = Some((
                row.try_get("grant_id").map_err(storage_error)?,
                row.try_get("rotated").map_err(storage_error)?,
            ));
        }
    }
    Ok(match old {
        None => Rotation::Missing,
        Some((grant_id, true)) => Rotation::Reused { grant_id },
        Some((grant_id, false)) => {
            // Another grant's token: every write was guarded on the grant, so none happened.
            check_same_grant(&grant_id, access, refresh)?;
            if claimed {
                Rotation::Rotated
            } else {
                // The grant is revoked; nothing was written.
                Rotation::Missing
            }
        }
    })
}

/// `TokenStore::revoke_grant`, bound: run it with [`run`].
fn revoke_query(grant_id: &str, keep_until: i64) -> Prepared {
    sqlx::query(REVOKE)
        .bind(grant_id.to_owned())
        .bind(keep_until)
}

/// `TokenStore::purge_expired_tokens`.
async fn purge_tokens(pool: SqlitePool, now: i64) -> Result<u64, StorageError> {
    let rows = run(pool, sqlx::query(PURGE_TOKENS).bind(now)).await?;
    let mut purged = 0u64;
    for row in &rows {
        let count: i64 = row.try_get("purged").map_err(storage_error)?;
        purged += u64::try_from(count).unwrap_or(0);
    }
    Ok(purged)
}

/// Runs one `BEGIN IMMEDIATE; …; COMMIT` query on one connection and returns its rows. If it
/// fails, its transaction may be open (a statement after `BEGIN` failed): it is rolled back,
/// and a connection that cannot even do that is closed rather than returned to the pool (a
/// `ROLLBACK` fails when `BEGIN` itself failed, and then there is nothing to undo; closing the
/// connection covers the case where there was).
async fn run(pool: SqlitePool, query: Prepared) -> Result<Vec<SqliteRow>, StorageError> {
    let mut conn = pool.acquire().await.map_err(storage_error)?;
    run_on(&mut conn, query).await
}

/// [`run`] on a connection already acquired (the batcher runs a batch, and after a failure
/// each of its issuances alone, on the one connection).
pub(super) async fn run_on<'q>(
    conn: &mut PoolConnection<Sqlite>,
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
) -> Result<Vec<SqliteRow>, StorageError> {
    // `fetch_all`, never `fetch_optional`/`fetch_one`: those stop the query at the first row,
    // before its `COMMIT`.
    match query.fetch_all(&mut **conn).await {
        Ok(rows) => Ok(rows),
        Err(error) => {
            // (`sqlx::query`, not `raw_sql`: rustc cannot prove the latter's future `Send`
            // for the detached task.)
            if sqlx::query("ROLLBACK").execute(&mut **conn).await.is_err() {
                conn.close_on_drop();
            }
            Err(storage_error(error))
        }
    }
}

/// Also the record builders of the batch tests (`super::batch::tests`).
#[cfg(test)]
pub(super) mod tests {
    use mcp_auth_core::storage::{RefreshLookup, TokenStore};

    use super::*;
    use crate::SqliteStore;
    use crate::sqlite::batch::{MAX_OPS_PER_COMMIT, Op as _, run_alone};

    pub(in crate::sqlite) const NOW: i64 = 1_000;

    pub(in crate::sqlite) fn access(grant: &str, token: &str) -> AccessTokenRecord {
        serde_json::from_value(serde_json::json!({
            "token_hash": SecretHash::of(token), "grant_id": grant, "client_id": "c",
            "scopes": ["mcp:tools"], "expires_at": NOW + 60,
        }))
        .expect("access record")
    }

    pub(in crate::sqlite) fn refresh(grant: &str, token: &str) -> RefreshTokenRecord {
        serde_json::from_value(serde_json::json!({
            "token_hash": SecretHash::of(token), "grant_id": grant, "client_id": "c",
            "scopes": ["mcp:tools"], "expires_at": NOW + 600, "grant_issued_at": NOW,
        }))
        .expect("refresh record")
    }

    async fn store(migrated: bool) -> SqliteStore {
        let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
        if migrated {
            store.migrate().await.expect("migrate");
        }
        store
    }

    #[test]
    fn every_write_query_is_one_transaction_from_begin_to_commit() {
        let issues = (1..=MAX_OPS_PER_COMMIT).map(|count| Issue::sql(count).expect("text"));
        for sql in issues.chain([ROTATE_TO_ACCESS, ROTATE_TO_PAIR, REVOKE, PURGE_TOKENS]) {
            assert!(sql.starts_with("BEGIN IMMEDIATE;"), "{sql}");
            assert!(sql.ends_with("COMMIT;"), "{sql}");
            assert_eq!(sql.matches("BEGIN").count(), 1, "{sql}");
            assert_eq!(sql.matches("COMMIT").count(), 1, "{sql}");
        }
    }

    /// Without the tables, the query fails on its second statement, after `BEGIN`: the
    /// transaction must not stay open on the in-memory database's only connection.
    #[tokio::test]
    async fn a_write_failing_half_way_rolls_back_and_leaves_the_connection_usable() {
        let store = store(false).await;
        let pool = store.pool().clone();
        sqlx::query("CREATE TABLE marker (x INTEGER)")
            .execute(&pool)
            .await
            .expect("create");
        let issue = Issue::new(&access("g", "a"), None, NOW + 60).expect("bind");
        let mut conn = pool.acquire().await.expect("connection");
        assert!(run_alone(&mut conn, issue).await.is_err());
        drop(conn);
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&pool)
            .await
            .expect("no transaction was left open");
        sqlx::query("ROLLBACK")
            .execute(&pool)
            .await
            .expect("rollback");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM marker")
            .fetch_one(&pool)
            .await
            .expect("the database is still there");
        assert_eq!(rows, 0);
    }

    #[tokio::test]
    async fn a_rotation_into_another_grant_is_refused_and_writes_nothing() {
        let store = store(true).await;
        assert!(
            store
                .issue_tokens(&access("g", "a1"), Some(&refresh("g", "r1")))
                .await
                .expect("issue")
        );
        let outcome = store
            .rotate_refresh_token(
                &SecretHash::of("r1"),
                &access("other", "a2"),
                Some(&refresh("other", "r2")),
                NOW,
            )
            .await;
        assert!(outcome.is_err());
        assert!(matches!(
            store.get_refresh_token(&SecretHash::of("r1"), NOW).await,
            Ok(Some(RefreshLookup::Active(_)))
        ));
        for token in ["a2", "a1"] {
            let found = store.get_access_token(&SecretHash::of(token), NOW).await;
            assert_eq!(found.expect("lookup").is_some(), token == "a1", "{token}");
        }
        assert!(matches!(
            store.get_refresh_token(&SecretHash::of("r2"), NOW).await,
            Ok(None)
        ));
    }
}
