//! How Redis failures become [`StorageError`] kinds.
//!
//! `Unavailable` tells the client to retry later (`temporarily_unavailable`), so it is kept for
//! failures a retry can cure: no connection, a timeout, a server that is loading, busy, out of
//! memory or a replica mid-failover. Everything else is `Other`.

use mcp_auth_core::{StorageError, StorageErrorKind};
use redis::{ErrorKind, RedisError, ServerErrorKind};

/// Maps a Redis error onto a storage error kind, keeping it as the source for the logs.
pub(crate) fn storage_error(error: RedisError) -> StorageError {
    let kind = if is_unavailable(&error) {
        StorageErrorKind::Unavailable
    } else {
        StorageErrorKind::Other
    };
    StorageError::new(kind, error)
}

fn is_unavailable(error: &RedisError) -> bool {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
    {
        return true;
    }
    match error.kind() {
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => true,
        // `BUSY` (a script is running too long) and `OOM` (maxmemory reached) have no kind of
        // their own in the client.
        _ => matches!(error.code(), Some("BUSY" | "OOM")),
    }
}

/// A stored value that cannot be decoded: corrupt JSON, an unexpected script reply.
pub(crate) fn corrupt(what: &'static str, cause: impl std::fmt::Display) -> StorageError {
    StorageError::other(format!("corrupt {what} in Redis: {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_and_loading_servers_are_unavailable() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(storage_error(refused).kind(), StorageErrorKind::Unavailable);
        let other = RedisError::from((ErrorKind::UnexpectedReturnType, "bad reply"));
        assert_eq!(storage_error(other).kind(), StorageErrorKind::Other);
    }
}
