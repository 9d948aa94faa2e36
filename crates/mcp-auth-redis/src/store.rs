//! [`RedisStore`]: the connection, its settings, and how commands and scripts are sent.

use std::sync::LazyLock;
use std::time::Duration;

use mcp_auth_core::StorageError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Script, ScriptInvocation};

use crate::error::storage_error;
use crate::keys::{Index, Keys};

/// Builds a script from its file in `src/scripts/`, prefixed with the shared helpers.
macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("scripts/prelude.lua"),
                include_str!(concat!("scripts/", $file))
            ))
        })
    };
}

pub(crate) static INSERT: LazyLock<Script> = script!("insert.lua");
pub(crate) static TAKE_CODE: LazyLock<Script> = script!("take_code.lua");
pub(crate) static ISSUE_TOKENS: LazyLock<Script> = script!("issue_tokens.lua");
pub(crate) static ROTATE_REFRESH_TOKEN: LazyLock<Script> = script!("rotate_refresh_token.lua");
pub(crate) static REVOKE_GRANT: LazyLock<Script> = script!("revoke_grant.lua");
pub(crate) static RECORD_ASSERTION_ID: LazyLock<Script> = script!("record_assertion_id.lua");
pub(crate) static INSERT_SIGNING_KEY: LazyLock<Script> = script!("insert_signing_key.lua");
pub(crate) static DELETE_SIGNING_KEYS_BEFORE: LazyLock<Script> =
    script!("delete_signing_keys_before.lua");
pub(crate) static SET_USER_PASSWORD: LazyLock<Script> = script!("set_user_password.lua");
pub(crate) static DELETE: LazyLock<Script> = script!("delete.lua");
static PURGE: LazyLock<Script> = script!("purge.lua");

/// Index entries one purge script visits; small enough that Redis is never blocked for long.
const PURGE_BATCH: usize = 1000;

/// Storage in Redis (7.0 or later), shared by any number of server instances.
///
/// Records are JSON; every key expires with its record (`EXPIREAT` from the record's
/// `expires_at`), so Redis itself bounds what is kept. Clients and signing keys, which have no
/// expiry, are the exceptions: they go when deleted. Operations that read and write run as
/// Lua scripts, which Redis executes atomically, so taking a code, rotating, issuing and
/// revoking are all-or-nothing and linearizable. A token lookup is one `GET`.
///
/// The scripts touch a grant's token keys through per-grant sets, so the key space must live
/// on one Redis server (a primary with replicas is fine; Redis Cluster is not supported).
///
/// Clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) conn: ConnectionManager,
    pub(crate) keys: Keys,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The key prefix used unless another is configured.
    pub const DEFAULT_KEY_PREFIX: &'static str = "mcp-auth:";

    /// How long a command may wait for its reply before failing as
    /// [`Unavailable`](mcp_auth_core::StorageErrorKind::Unavailable). Every operation is a
    /// single command or script that Redis answers in well under a millisecond, so a reply
    /// this late means the server is stuck; failing lets the request answer
    /// `temporarily_unavailable` instead of hanging.
    pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

    /// How long one connection attempt may take.
    pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

    /// Connects to `url` (`redis://[:password@]host:port[/db]`) with the default settings.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a store for `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
            response_timeout: Self::RESPONSE_TIMEOUT,
            connection_timeout: Self::CONNECTION_TIMEOUT,
        }
    }

    /// A store on a connection manager configured by the caller. Give it response and
    /// connection timeouts: without them a call during an outage can wait indefinitely.
    pub fn from_manager(manager: ConnectionManager, key_prefix: impl Into<String>) -> Self {
        Self {
            conn: manager,
            keys: Keys::new(key_prefix),
        }
    }

    /// The prefix of every key this store reads or writes.
    pub fn key_prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Sends one command.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StorageError> {
        let mut conn = self.conn.clone();
        match cmd.query_async(&mut conn).await {
            // The connection manager hands out the outcome of its last connection attempt; a
            // refusal means that attempt failed and nothing was sent. The manager has started a
            // fresh attempt, so one retry is safe and turns the first call after an outage
            // into a success rather than an error.
            Err(err) if err.is_connection_refusal() => {
                cmd.query_async(&mut conn).await.map_err(storage_error)
            }
            result => result.map_err(storage_error),
        }
    }

    /// Runs a script (by `EVALSHA`, loading it on first use), retrying as [`query`] does.
    ///
    /// [`query`]: Self::query
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StorageError> {
        let mut conn = self.conn.clone();
        match invocation.invoke_async(&mut conn).await {
            Err(err) if err.is_connection_refusal() => invocation
                .invoke_async(&mut conn)
                .await
                .map_err(storage_error),
            result => result.map_err(storage_error),
        }
    }

    /// Deletes the records of `index` that expired at `now`, in batches; returns how many
    /// records existed and went (keys Redis expired by itself are not counted twice).
    pub(crate) async fn purge(&self, index: Index, now: i64) -> Result<u64, StorageError> {
        let key = self.keys.index(index);
        let mut purged = 0;
        loop {
            let (deleted, visited): (u64, usize) = self
                .invoke(PURGE.key(&key).arg(now).arg(PURGE_BATCH))
                .await?;
            purged += deleted;
            if visited < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}

/// Settings for [`RedisStore`]; see [`RedisStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    key_prefix: String,
    response_timeout: Duration,
    connection_timeout: Duration,
}

impl RedisStoreBuilder {
    /// The prefix of every key (default [`RedisStore::DEFAULT_KEY_PREFIX`]). Give each
    /// deployment sharing a Redis database its own.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// See [`RedisStore::RESPONSE_TIMEOUT`].
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// See [`RedisStore::CONNECTION_TIMEOUT`].
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Connects, failing if Redis cannot be reached now.
    ///
    /// After that the connection manager reconnects by itself whenever the connection breaks.
    /// It makes one attempt per failed call rather than retrying with back-off, so that while
    /// Redis is down every call fails within the timeouts above (as `Unavailable`) instead of
    /// queueing behind a reconnection loop, and the first call after Redis returns succeeds.
    pub async fn connect(self) -> Result<RedisStore, StorageError> {
        let client = redis::Client::open(self.url.as_str()).map_err(storage_error)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout))
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(storage_error)?;
        Ok(RedisStore::from_manager(manager, self.key_prefix))
    }
}

#[cfg(test)]
mod tests {
    use mcp_auth_core::ErrorChain;

    use super::*;

    /// A connection failure is logged with its whole cause chain; the URL's password must not
    /// be part of it.
    #[tokio::test]
    async fn connection_errors_never_show_the_password() {
        for url in [
            // Nothing listens on port 1: the connection is refused.
            "redis://:hunter2-secret@127.0.0.1:1",
            "redis://alice:hunter2-secret@127.0.0.1:1/0",
            "redis://alice:hunter2-secret@127.0.0.1:not-a-port",
            "redis://alice:hunter2-secret@127.0.0.1:1/not-a-db",
        ] {
            let err = RedisStore::connect(url).await.expect_err(url);
            let logged = format!("{} {err:?}", ErrorChain(&err));
            assert!(!logged.contains("hunter2"), "{url}: {logged}");
        }
    }
}
