//! Backend selection: `--store` names the storage, opened (and migrated) at start-up.

use std::sync::Arc;

use mcp_auth_core::{MemoryStore, Storage, StorageError};
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

/// Whether the store answers: one cheap read that every backend serves from its storage (the
/// provider's client cache is bypassed).
pub(crate) async fn is_healthy(storage: &DynStorage) -> Result<(), StorageError> {
    storage.get_client("healthz").await.map(|_| ())
}
