//! Upgrading a database written by an earlier version: the rows survive each migration and
//! the tables end in the shape the queries expect.

use std::path::{Path, PathBuf};

use mcp_auth_core::StorageErrorKind;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{RefreshLookup, TokenStore as _};
use sqlx::migrate::Migrator;

use super::writes::tests::{NOW, access, refresh};
use crate::SqliteStore;

/// The first migration of the token tables as rowid tables.
const TOKEN_ROWIDS: &str = "20261206000001_token_rowids.sql";

/// A directory holding the crate's SQLite migrations up to, not including, `first_left_out`:
/// the schema an earlier version of the crate left behind.
fn migrations_before(first_left_out: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let copy = std::env::temp_dir().join(format!(
        "mcp-auth-sqlx-migrations-{}-{}",
        std::process::id(),
        mcp_auth_core::secrets::random_id()
    ));
    std::fs::create_dir_all(&copy).expect("temporary directory");
    let mut copied = 0;
    for entry in std::fs::read_dir(&source).expect("migrations") {
        let name = entry.expect("entry").file_name();
        if name.to_str().expect("utf-8 name") < first_left_out {
            std::fs::copy(source.join(&name), copy.join(&name)).expect("copy");
            copied += 1;
        }
    }
    assert!(copied > 0 && copied < std::fs::read_dir(&source).expect("migrations").count());
    copy
}

/// The `CREATE` text SQLite keeps for `table`.
async fn table_sql(store: &SqliteStore, table: &str) -> String {
    sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1")
        .bind(table)
        .fetch_one(store.pool())
        .await
        .expect("table")
}

#[tokio::test]
async fn tokens_written_before_the_rowid_tables_survive_the_upgrade() {
    let store = SqliteStore::connect("sqlite::memory:").await.expect("open");
    let earlier = migrations_before(TOKEN_ROWIDS);
    Migrator::new(earlier.as_path())
        .await
        .expect("earlier migrations")
        .run(store.pool())
        .await
        .expect("earlier schema");
    std::fs::remove_dir_all(&earlier).expect("clean up");
    assert!(
        table_sql(&store, "access_tokens")
            .await
            .contains("WITHOUT ROWID")
    );
    for n in 0..3 {
        let (grant, a, r) = (format!("g{n}"), format!("a{n}"), format!("r{n}"));
        let stored = store
            .issue_tokens(&access(&grant, &a), Some(&refresh(&grant, &r)))
            .await
            .expect("issue on the earlier schema");
        assert!(stored);
    }
    store
        .rotate_refresh_token(
            &SecretHash::of("r2"),
            &access("g2", "a3"),
            Some(&refresh("g2", "r3")),
            NOW,
        )
        .await
        .expect("rotate on the earlier schema");

    store.migrate().await.expect("upgrade");

    for table in ["access_tokens", "refresh_tokens"] {
        assert!(!table_sql(&store, table).await.contains("WITHOUT ROWID"));
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 ORDER BY name",
        )
        .bind(table)
        .fetch_all(store.pool())
        .await
        .expect("indexes");
        let expected = ["expires_at", "grant_id", "token_hash"].map(|key| format!("{table}_{key}"));
        assert_eq!(indexes, expected);
    }
    // The rotation's time came along with its row.
    let rotated_at: Option<i64> =
        sqlx::query_scalar("SELECT rotated_at FROM refresh_tokens WHERE token_hash = ?1")
            .bind(SecretHash::of("r2").as_bytes().as_slice())
            .fetch_one(store.pool())
            .await
            .expect("r2's row");
    assert_eq!(rotated_at, Some(NOW));
    for token in ["a0", "a1", "a3"] {
        let found = store.get_access_token(&SecretHash::of(token), NOW).await;
        assert!(found.expect("lookup").is_some(), "{token}");
    }
    // a2 went with the rotation; r2 was rotated, and stays so.
    let gone = store.get_access_token(&SecretHash::of("a2"), NOW).await;
    assert!(gone.expect("lookup").is_none());
    for (token, active) in [("r0", true), ("r1", true), ("r2", false), ("r3", true)] {
        let found = store.get_refresh_token(&SecretHash::of(token), NOW).await;
        match found.expect("lookup") {
            Some(RefreshLookup::Active(_)) => assert!(active, "{token}"),
            Some(RefreshLookup::Rotated { .. }) => assert!(!active, "{token}"),
            None => panic!("{token} was lost in the upgrade"),
        }
    }
    // The hash is still unique, now through its index.
    let again = store
        .issue_tokens(&access("g9", "a0"), None)
        .await
        .expect_err("a second row with a0's hash");
    assert_eq!(again.kind(), StorageErrorKind::Conflict);
    // And the purge still finds every row by expiry.
    let purged = store
        .purge_expired_tokens(NOW + 10_000)
        .await
        .expect("purge");
    assert_eq!(purged, 7, "three access tokens and four refresh tokens");
}
