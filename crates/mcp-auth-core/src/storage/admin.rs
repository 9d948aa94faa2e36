//! What an administrator manages from the command line: sign-in users kept in the store, and
//! the listings behind `client list` and `grant list`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::storage::ClientRecord;

/// A sign-in user as stored: a name and an argon2id PHC string, never a password.
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserRecord {
    /// The user name, which is also the subject of the user's tokens.
    pub name: String,
    /// The password's argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub password_hash: String,
    /// When the user was added, seconds since the epoch.
    pub created_at: i64,
}

impl UserRecord {
    /// A user named `name` with the PHC string `password_hash`.
    pub fn new(name: impl Into<String>, password_hash: impl Into<String>, created_at: i64) -> Self {
        Self {
            name: name.into(),
            password_hash: password_hash.into(),
            created_at,
        }
    }
}

/// The name only: a password hash is no credential, but there is no reason to print it.
impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A live grant: what its newest live token says, for `grant list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GrantRecord {
    /// The grant's id, shared by its code and tokens.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The resource owner (`None` for grants without one).
    pub subject: Option<String>,
    /// The grant's scopes.
    pub scopes: Vec<String>,
    /// RFC 8707 resource.
    pub resource: Option<String>,
    /// When its last live token expires, seconds since the epoch.
    pub expires_at: i64,
}

impl GrantRecord {
    /// A grant as its longest-lived live token describes it.
    pub fn new(
        grant_id: impl Into<String>,
        client_id: impl Into<String>,
        subject: Option<String>,
        scopes: Vec<String>,
        resource: Option<String>,
        expires_at: i64,
    ) -> Self {
        Self {
            grant_id: grant_id.into(),
            client_id: client_id.into(),
            subject,
            scopes,
            resource,
            expires_at,
        }
    }
}

/// Sign-in users and the administrators' listings. Names and ids are exact (no patterns);
/// listings are for an operator's command line, not for request paths.
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Stores a new user; `false` (nothing changed) when the name is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<bool, StorageError>;

    /// Replaces `name`'s password hash; `false` when there is no such user.
    async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError>;

    /// The user named `name`.
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StorageError>;

    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StorageError>;

    /// Deletes `name`; `false` when there was no such user. Its grants are the caller's to
    /// revoke (`StoreProvider::revoke_grants`).
    async fn delete_user(&self, name: &str) -> Result<bool, StorageError>;

    /// Every registered client, by `client_id`.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StorageError>;

    /// The live grants (a live access or refresh token, not revoked) of `subject` and/or
    /// `client_id` (`None`: any), by `grant_id`.
    async fn list_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<GrantRecord>, StorageError>;
}

#[async_trait]
impl<T: AdminStore + ?Sized> AdminStore for Arc<T> {
    async fn insert_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        (**self).insert_user(user).await
    }
    async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        (**self).set_user_password(name, password_hash).await
    }
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        (**self).get_user(name).await
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>, StorageError> {
        (**self).list_users().await
    }
    async fn delete_user(&self, name: &str) -> Result<bool, StorageError> {
        (**self).delete_user(name).await
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StorageError> {
        (**self).list_clients().await
    }
    async fn list_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<GrantRecord>, StorageError> {
        (**self).list_grants(subject, client_id, now).await
    }
}
