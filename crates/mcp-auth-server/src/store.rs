//! Backend selection: `--store` names the storage, opened (and migrated) at start-up.

use std::sync::Arc;

use mcp_auth_core::{Clock as _, MemoryStore, Storage, StorageError, SystemClock};
use mcp_auth_redis::RedisStore;
use mcp_auth_sqlx::{PostgresStore, SqliteStore};

use crate::config::StoreUrl;

/// The storage the server runs on, chosen at run time.
pub(crate) type DynStorage = Arc<dyn Storage>;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database or server did not answer, or refused the connection.
    #[error("cannot connect to the {backend} store at {url}: {source}")]
    Connect {
        /// Which backend.
        backend: &'static str,
        /// The URL, password redacted.
        url: String,
        /// Why.
        #[source]
        source: StorageError,
    },
    /// The tables could not be created or upgraded.
    #[error("cannot migrate the {backend} store at {url}: {source}")]
    Migrate {
        /// Which backend.
        backend: &'static str,
        /// The URL, password redacted.
        url: String,
        /// Why.
        #[source]
        source: StorageError,
    },
}

/// Opens the store `url` names: connects, and creates or upgrades its tables. A SQLite file is
/// created when missing. Fails when the database is unreachable, so a misconfigured server
/// stops at start-up instead of answering `temporarily_unavailable`.
pub(crate) async fn open(url: &StoreUrl) -> Result<DynStorage, StoreError> {
    let redacted = url.redacted();
    match url {
        StoreUrl::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreUrl::Sqlite(raw) => {
            let backend = "SQLite";
            let store = SqliteStore::connect(raw)
                .await
                .map_err(|source| StoreError::Connect {
                    backend,
                    url: redacted.clone(),
                    source,
                })?;
            store
                .migrate()
                .await
                .map_err(|source| StoreError::Migrate {
                    backend,
                    url: redacted,
                    source,
                })?;
            Ok(Arc::new(store))
        }
        StoreUrl::Postgres(raw) => {
            let backend = "PostgreSQL";
            let store =
                PostgresStore::connect(raw)
                    .await
                    .map_err(|source| StoreError::Connect {
                        backend,
                        url: redacted.clone(),
                        source,
                    })?;
            store
                .migrate()
                .await
                .map_err(|source| StoreError::Migrate {
                    backend,
                    url: redacted,
                    source,
                })?;
            Ok(Arc::new(store))
        }
        StoreUrl::Redis(raw) => {
            // Redis needs no migration; connecting checks that it answers. Keys expire with
            // their records, and the purge task trims the expiry indexes.
            let store = RedisStore::connect(raw)
                .await
                .map_err(|source| StoreError::Connect {
                    backend: "Redis",
                    url: redacted,
                    source,
                })?;
            Ok(Arc::new(store))
        }
    }
}

/// The replay entry the health check writes: an issuer no real one can be (issuers are URLs
/// or client ids, and real entries hold a 64-digit hash as their id), one id, so the probe
/// keeps at most one entry, expiring a second after each write.
const HEALTH_PROBE_ISSUER: &str = "mcp-auth:health-check";
const HEALTH_PROBE_ID: &str = "write-probe";

/// Whether the store can serve requests: one read that every backend serves from its storage
/// (the provider's client cache is bypassed) and one write, an insert-if-absent of a replay
/// entry living one second. The write is what notices a store that still answers reads but
/// can no longer write: a SQLite file whose write lock another connection holds, a read-only
/// PostgreSQL or Redis replica. Answers within
/// [`HEALTH_CHECK_TIMEOUT`](crate::limits::HEALTH_CHECK_TIMEOUT), as unavailable if the store
/// has not by then.
pub(crate) async fn is_healthy(storage: &DynStorage) -> Result<(), StorageError> {
    let probe = async {
        storage.get_client("healthz").await?;
        let now = SystemClock.now();
        storage
            .record_assertion_id(HEALTH_PROBE_ISSUER, HEALTH_PROBE_ID, now + 1, now)
            .await?;
        Ok(())
    };
    tokio::time::timeout(crate::limits::HEALTH_CHECK_TIMEOUT, probe)
        .await
        .map_err(|_| {
            StorageError::unavailable("the store did not answer the health check in time")
        })?
}

#[cfg(test)]
mod tests {
    use mcp_auth_sqlx::sqlx::sqlite::SqliteConnectOptions;
    use mcp_auth_sqlx::sqlx::{Connection as _, Executor as _, SqliteConnection};

    use super::*;

    /// A fresh SQLite file under the system's temporary directory, and its URL.
    fn sqlite_file_url() -> String {
        let dir = std::env::temp_dir().join(format!(
            "mcp-auth-healthz-{}-{}",
            std::process::id(),
            mcp_auth_core::secrets::random_id()
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        format!("sqlite://{}", dir.join("store.db").display())
    }

    /// A SQLite store that still answers reads but cannot write (another connection holds the
    /// write lock, as a stuck process or a leaked transaction would) is reported unhealthy,
    /// within the health check's timeout rather than after SQLite's busy timeout; once the
    /// lock is released it is healthy again.
    #[tokio::test]
    async fn a_store_that_cannot_write_is_unhealthy() {
        let url = sqlite_file_url();
        let storage = open(&StoreUrl::Sqlite(url.clone())).await.expect("open");
        is_healthy(&storage).await.expect("healthy at first");

        let options: SqliteConnectOptions = url.parse().expect("url");
        let mut holder = SqliteConnection::connect_with(&options)
            .await
            .expect("second connection");
        holder.execute("BEGIN IMMEDIATE").await.expect("write lock");
        let err = is_healthy(&storage)
            .await
            .expect_err("a store that cannot write is unhealthy");
        assert_eq!(err.kind(), mcp_auth_core::StorageErrorKind::Unavailable);

        holder.execute("ROLLBACK").await.expect("release");
        is_healthy(&storage).await.expect("healthy again");
    }

    /// Checks within the probe entry's one-second life find it present (the insert-if-absent
    /// reports a replay) and are healthy all the same.
    #[tokio::test]
    async fn health_checks_in_quick_succession_are_all_healthy() {
        let storage: DynStorage = Arc::new(MemoryStore::new());
        for _ in 0..3 {
            is_healthy(&storage).await.expect("healthy");
        }
    }
}
