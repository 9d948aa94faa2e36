//! How sqlx failures become [`StorageError`] kinds.
//!
//! The kind decides what the client sees: `Unavailable` becomes `temporarily_unavailable`
//! (retry later), everything else a `server_error`. So only failures that a retry can cure —
//! the database is down, restarting, overloaded or busy — are `Unavailable`.

use mcp_auth_core::{StorageError, StorageErrorKind};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;

/// Maps a sqlx error onto a storage error kind, keeping it as the source for the logs.
pub(crate) fn storage_error(error: sqlx::Error) -> StorageError {
    let kind = kind_of(&error);
    StorageError::new(kind, error)
}

fn kind_of(error: &sqlx::Error) -> StorageErrorKind {
    match error {
        // The pool could not hand out a connection in time (every connection attempt failed,
        // or all connections are busy), or the connection broke: the database is unreachable
        // or overloaded.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StorageErrorKind::Unavailable,
        sqlx::Error::Database(db) => database_kind(db.as_ref()),
        sqlx::Error::Migrate(migrate) => match migrate.as_ref() {
            MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
                kind_of(inner)
            }
            _ => StorageErrorKind::Other,
        },
        _ => StorageErrorKind::Other,
    }
}

fn database_kind(db: &dyn DatabaseError) -> StorageErrorKind {
    if matches!(db.kind(), ErrorKind::UniqueViolation) {
        return StorageErrorKind::Conflict;
    }
    let Some(code) = db.code() else {
        return StorageErrorKind::Other;
    };
    if is_unavailable_postgres(&code) || is_unavailable_sqlite(&code) {
        StorageErrorKind::Unavailable
    } else {
        StorageErrorKind::Other
    }
}

/// PostgreSQL SQLSTATEs that mean "not now" rather than "never" (PostgreSQL manual,
/// appendix A): class 08 connection exceptions, class 53 insufficient resources (too many
/// connections, out of memory or disk), 57P01–57P05 (administrator or crash shutdown, cannot
/// connect now, database dropped, idle session timeout) and 40001/40P01 (serialization failure,
/// deadlock: the transaction was rolled back and may simply be retried).
fn is_unavailable_postgres(code: &str) -> bool {
    code.len() == 5
        && (code.starts_with("08")
            || code.starts_with("53")
            || matches!(
                code,
                "57P01" | "57P02" | "57P03" | "57P04" | "57P05" | "40001" | "40P01"
            ))
}

/// SQLite result codes (primary code in the low byte of the extended code) that a retry can
/// cure: `SQLITE_BUSY` (5) and `SQLITE_LOCKED` (6) after the busy timeout, `SQLITE_CANTOPEN`
/// (14) while the file is unreachable. sqlx reports SQLite codes as decimal numbers, which never
/// collide with PostgreSQL's five-character SQLSTATEs that start with a digit pair above.
fn is_unavailable_sqlite(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6 | 14))
        && code.len() < 5
}

/// A value PostgreSQL text cannot store: it contains a NUL character. Handlers refuse control
/// characters in identifiers long before storage; this is the store's own guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {what} containing a NUL character cannot be stored")]
pub(crate) struct NulCharacter {
    /// What the value is (`client_id`, `grant_id`, …); never the value itself.
    pub(crate) what: &'static str,
}

/// A stored row that cannot be decoded: corrupt JSON, a hash of the wrong length.
pub(crate) fn corrupt(what: &'static str, cause: impl std::fmt::Display) -> StorageError {
    StorageError::other(format!("corrupt {what} row: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_postgres_states_are_unavailable() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "40001", "40P01",
        ] {
            assert!(is_unavailable_postgres(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "XX000"] {
            assert!(!is_unavailable_postgres(code), "{code}");
        }
    }

    #[test]
    fn busy_and_locked_sqlite_codes_are_unavailable() {
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT (517), SQLITE_LOCKED_SHAREDCACHE (262), CANTOPEN.
        for code in ["5", "517", "6", "262", "14"] {
            assert!(is_unavailable_sqlite(code), "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_CORRUPT (11), SQLITE_ERROR (1).
        for code in ["2067", "11", "1"] {
            assert!(!is_unavailable_sqlite(code), "{code}");
        }
    }

    #[test]
    fn pool_and_io_failures_are_unavailable() {
        assert_eq!(
            kind_of(&sqlx::Error::PoolTimedOut),
            StorageErrorKind::Unavailable
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            kind_of(&sqlx::Error::Io(refused)),
            StorageErrorKind::Unavailable
        );
        assert_eq!(kind_of(&sqlx::Error::RowNotFound), StorageErrorKind::Other);
    }
}
