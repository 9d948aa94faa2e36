//! The tokens an upstream identity provider gave for a grant (OpenID Connect sign-in with
//! `--oidc-keep-tokens`), kept so that tools can act on the user's behalf there.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StorageError;

/// A grant's upstream tokens as stored: opaque text that its owner (the server) sealed with
/// AES-256-GCM before handing it over, so storage never holds them in the clear.
#[derive(Clone)]
#[non_exhaustive]
pub struct UpstreamTokenRecord {
    /// The grant the tokens belong to (the `grant_id` of its codes and tokens).
    pub grant_id: String,
    /// The sealed tokens.
    pub sealed: String,
    /// When the record may be purged, seconds since the epoch: the grant's own end.
    pub expires_at: i64,
}

impl UpstreamTokenRecord {
    /// A record for `grant_id`.
    pub fn new(grant_id: impl Into<String>, sealed: impl Into<String>, expires_at: i64) -> Self {
        Self {
            grant_id: grant_id.into(),
            sealed: sealed.into(),
            expires_at,
        }
    }
}

impl std::fmt::Debug for UpstreamTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTokenRecord")
            .field("grant_id", &self.grant_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Upstream tokens per grant. A grant has at most one record; every revocation of the grant
/// deletes it (the provider calls [`delete_upstream_tokens`](Self::delete_upstream_tokens) in
/// its one revocation path), and the purge deletes records past `expires_at`.
#[async_trait]
pub trait UpstreamTokenStore: Send + Sync + 'static {
    /// Stores `record`, replacing the grant's previous one (a refresh at the upstream
    /// provider replaces its tokens).
    async fn put_upstream_tokens(&self, record: &UpstreamTokenRecord) -> Result<(), StorageError>;

    /// The grant's record, `None` when there is none or it expired before `now`.
    async fn get_upstream_tokens(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Option<UpstreamTokenRecord>, StorageError>;

    /// Deletes the grant's record; deleting an absent one is not an error.
    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StorageError>;

    /// Deletes the records that expired before `now`; returns how many went.
    async fn purge_expired_upstream_tokens(&self, now: i64) -> Result<u64, StorageError>;
}

#[async_trait]
impl<T: UpstreamTokenStore + ?Sized> UpstreamTokenStore for Arc<T> {
    async fn put_upstream_tokens(&self, record: &UpstreamTokenRecord) -> Result<(), StorageError> {
        (**self).put_upstream_tokens(record).await
    }

    async fn get_upstream_tokens(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Option<UpstreamTokenRecord>, StorageError> {
        (**self).get_upstream_tokens(grant_id, now).await
    }

    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StorageError> {
        (**self).delete_upstream_tokens(grant_id).await
    }

    async fn purge_expired_upstream_tokens(&self, now: i64) -> Result<u64, StorageError> {
        (**self).purge_expired_upstream_tokens(now).await
    }
}
