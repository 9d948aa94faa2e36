//! [`MeteredStorage`]: every storage operation timed, by backend and operation.

use std::time::Instant;

use async_trait::async_trait;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{
    AccessTokenRecord, AdminStore, AuthorizationRequestRecord, AuthorizationRequestStore,
    ClientRecord, ClientStore, CodeRecord, CodeStore, CodeTake, GrantRecord, RefreshLookup,
    RefreshTokenRecord, ReplayStore, Rotation, SigningKeyRecord, SigningKeyStore, TokenStore,
    UpstreamTokenRecord, UpstreamTokenStore, UserRecord,
};
use mcp_auth_core::{StorageError, StorageErrorKind, storage::SharedAccessTokenRecord};

use crate::store::DynStorage;

/// A store that records each operation's latency in
/// `mcp_auth_storage_operation_duration_seconds{backend, operation}` and each failure in
/// `mcp_auth_storage_errors_total{backend, operation, kind}`, then answers exactly as the store
/// it wraps. Used only with `--metrics-bind`: two clock reads and a histogram update per
/// operation.
pub(crate) struct MeteredStorage {
    inner: DynStorage,
    backend: &'static str,
}

impl MeteredStorage {
    /// `inner`, metered under the label `backend` (`memory`, `sqlite`, `postgres`, `redis`).
    pub(crate) fn wrap(inner: DynStorage, backend: &'static str) -> DynStorage {
        std::sync::Arc::new(Self { inner, backend })
    }

    fn record<T>(
        &self,
        operation: &'static str,
        started: Instant,
        result: &Result<T, StorageError>,
    ) {
        let backend = self.backend;
        metrics::histogram!(
            "mcp_auth_storage_operation_duration_seconds",
            "backend" => backend,
            "operation" => operation,
        )
        .record(started.elapsed().as_secs_f64());
        if let Err(error) = result {
            let kind = match error.kind() {
                StorageErrorKind::Conflict => "conflict",
                StorageErrorKind::Unavailable => "unavailable",
                _ => "other",
            };
            metrics::counter!(
                "mcp_auth_storage_errors_total",
                "backend" => backend,
                "operation" => operation,
                "kind" => kind,
            )
            .increment(1);
        }
    }
}

/// Times `$call` (an `.await`ed storage call) as `$operation`.
macro_rules! metered {
    ($self:ident, $operation:literal, $call:expr) => {{
        let started = Instant::now();
        let result = $call;
        $self.record($operation, started, &result);
        result
    }};
}

#[async_trait]
impl ClientStore for MeteredStorage {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        metered!(
            self,
            "insert_client",
            self.inner.insert_client(client).await
        )
    }
    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        metered!(
            self,
            "upsert_client",
            self.inner.upsert_client(client).await
        )
    }
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        metered!(self, "get_client", self.inner.get_client(client_id).await)
    }
    async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        metered!(
            self,
            "delete_client",
            self.inner.delete_client(client_id).await
        )
    }
}

#[async_trait]
impl AuthorizationRequestStore for MeteredStorage {
    async fn insert_authorization_request(
        &self,
        request: &AuthorizationRequestRecord,
    ) -> Result<(), StorageError> {
        metered!(
            self,
            "insert_authorization_request",
            self.inner.insert_authorization_request(request).await
        )
    }
    async fn get_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        metered!(
            self,
            "get_authorization_request",
            self.inner
                .get_authorization_request(request_hash, now)
                .await
        )
    }
    async fn take_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        metered!(
            self,
            "take_authorization_request",
            self.inner
                .take_authorization_request(request_hash, now)
                .await
        )
    }
    async fn purge_expired_authorization_requests(&self, now: i64) -> Result<u64, StorageError> {
        metered!(
            self,
            "purge_expired_authorization_requests",
            self.inner.purge_expired_authorization_requests(now).await
        )
    }
}

#[async_trait]
impl CodeStore for MeteredStorage {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError> {
        metered!(self, "insert_code", self.inner.insert_code(code).await)
    }
    async fn get_code(
        &self,
        code_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<CodeRecord>, StorageError> {
        metered!(self, "get_code", self.inner.get_code(code_hash, now).await)
    }
    async fn take_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeTake, StorageError> {
        metered!(
            self,
            "take_code",
            self.inner.take_code(code_hash, now).await
        )
    }
    async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError> {
        metered!(
            self,
            "purge_expired_codes",
            self.inner.purge_expired_codes(now).await
        )
    }
}

#[async_trait]
impl TokenStore for MeteredStorage {
    async fn issue_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError> {
        metered!(
            self,
            "issue_tokens",
            self.inner.issue_tokens(access, refresh).await
        )
    }
    async fn get_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StorageError> {
        metered!(
            self,
            "get_access_token",
            self.inner.get_access_token(token_hash, now).await
        )
    }
    fn get_access_token_now(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Option<Result<Option<SharedAccessTokenRecord>, StorageError>> {
        let started = Instant::now();
        let found = self.inner.get_access_token_now(token_hash, now)?;
        self.record("get_access_token_now", started, &found);
        Some(found)
    }
    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RefreshLookup>, StorageError> {
        metered!(
            self,
            "get_refresh_token",
            self.inner.get_refresh_token(token_hash, now).await
        )
    }
    async fn rotate_refresh_token(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> Result<Rotation, StorageError> {
        metered!(
            self,
            "rotate_refresh_token",
            self.inner
                .rotate_refresh_token(old_hash, access, refresh, now)
                .await
        )
    }
    async fn refresh_token_rotation(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<(i64, RefreshTokenRecord)>, StorageError> {
        metered!(
            self,
            "refresh_token_rotation",
            self.inner.refresh_token_rotation(token_hash, now).await
        )
    }
    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        metered!(
            self,
            "revoke_grant",
            self.inner.revoke_grant(grant_id, keep_until).await
        )
    }
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError> {
        metered!(
            self,
            "purge_expired_tokens",
            self.inner.purge_expired_tokens(now).await
        )
    }
}

#[async_trait]
impl ReplayStore for MeteredStorage {
    async fn record_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        metered!(
            self,
            "record_assertion_id",
            self.inner
                .record_assertion_id(issuer, jti, expires_at, now)
                .await
        )
    }
    async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError> {
        metered!(
            self,
            "purge_expired_assertion_ids",
            self.inner.purge_expired_assertion_ids(now).await
        )
    }
}

#[async_trait]
impl SigningKeyStore for MeteredStorage {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        metered!(self, "signing_keys", self.inner.signing_keys().await)
    }
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StorageError> {
        metered!(
            self,
            "insert_signing_key",
            self.inner.insert_signing_key(key).await
        )
    }
    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StorageError> {
        metered!(
            self,
            "delete_signing_keys_before",
            self.inner.delete_signing_keys_before(generation).await
        )
    }
}

#[async_trait]
impl UpstreamTokenStore for MeteredStorage {
    async fn put_upstream_tokens(&self, record: &UpstreamTokenRecord) -> Result<(), StorageError> {
        metered!(
            self,
            "put_upstream_tokens",
            self.inner.put_upstream_tokens(record).await
        )
    }
    async fn get_upstream_tokens(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Option<UpstreamTokenRecord>, StorageError> {
        metered!(
            self,
            "get_upstream_tokens",
            self.inner.get_upstream_tokens(grant_id, now).await
        )
    }
    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StorageError> {
        metered!(
            self,
            "delete_upstream_tokens",
            self.inner.delete_upstream_tokens(grant_id).await
        )
    }
    async fn purge_expired_upstream_tokens(&self, now: i64) -> Result<u64, StorageError> {
        metered!(
            self,
            "purge_expired_upstream_tokens",
            self.inner.purge_expired_upstream_tokens(now).await
        )
    }
}

/// Administration is a command line's, not a request's: forwarded unmeasured, except the
/// user lookup of every sign-in.
#[async_trait]
impl AdminStore for MeteredStorage {
    async fn insert_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        self.inner.insert_user(user).await
    }
    async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        self.inner.set_user_password(name, password_hash).await
    }
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        metered!(self, "get_user", self.inner.get_user(name).await)
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>, StorageError> {
        self.inner.list_users().await
    }
    async fn delete_user(&self, name: &str) -> Result<bool, StorageError> {
        self.inner.delete_user(name).await
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StorageError> {
        self.inner.list_clients().await
    }
    async fn list_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<GrantRecord>, StorageError> {
        self.inner.list_grants(subject, client_id, now).await
    }
}
