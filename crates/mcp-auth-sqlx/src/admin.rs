//! [`AdminStore`](mcp_auth_core::storage::AdminStore) for both databases, written once like
//! the other operations ([`admin_impls!`]): users in their own table, clients and live grants
//! read from the records the other operations keep.
//!
//! A grant listing reads every live token (not rotated, not expired, its grant not revoked)
//! and describes each grant by its longest-lived one: an administrator's query, one pass over
//! the token tables, never on a request path.

use std::collections::BTreeMap;

use mcp_auth_core::StorageError;
use mcp_auth_core::storage::GrantRecord;
use serde::Deserialize;

/// The fields of a stored code, access- or refresh-token record that describe its grant (the
/// three records have them under these names).
#[derive(Deserialize)]
struct TokenSummary {
    grant_id: String,
    client_id: String,
    subject: Option<String>,
    scopes: Vec<String>,
    resource: Option<String>,
    expires_at: i64,
}

/// The grants of the live token `records` (JSON), each by its longest-lived token, those of
/// `subject` and `client_id` only when given, by grant id.
pub(crate) fn live_grants(
    records: &[String],
    subject: Option<&str>,
    client_id: Option<&str>,
) -> Result<Vec<GrantRecord>, StorageError> {
    let mut grants: BTreeMap<String, TokenSummary> = BTreeMap::new();
    for json in records {
        let token: TokenSummary = crate::codec::decode("token", json)?;
        match grants.get(&token.grant_id) {
            Some(best) if best.expires_at >= token.expires_at => {}
            _ => {
                grants.insert(token.grant_id.clone(), token);
            }
        }
    }
    Ok(grants
        .into_values()
        .filter(|grant| {
            subject.is_none_or(|subject| grant.subject.as_deref() == Some(subject))
                && client_id.is_none_or(|client_id| grant.client_id == client_id)
        })
        .map(|grant| {
            GrantRecord::new(
                grant.grant_id,
                grant.client_id,
                grant.subject,
                grant.scopes,
                grant.resource,
                grant.expires_at,
            )
        })
        .collect())
}

/// Implements `AdminStore` for `$store`, a [`Dialect`](crate::dialect::Dialect).
macro_rules! admin_impls {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use mcp_auth_core::StorageError;
            use mcp_auth_core::storage::{AdminStore, ClientRecord, GrantRecord, UserRecord};

            use $crate::codec::decode;
            use $crate::dialect::Dialect;
            use $crate::error::storage_error;

            #[async_trait]
            impl AdminStore for $store {
                async fn insert_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
                    Self::storable("user name", &user.name)?;
                    Self::storable("password hash", &user.password_hash)?;
                    let done = sqlx::query(Self::SQL.insert_user)
                        .bind(&user.name)
                        .bind(&user.password_hash)
                        .bind(user.created_at)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn set_user_password(
                    &self,
                    name: &str,
                    password_hash: &str,
                ) -> Result<bool, StorageError> {
                    if Self::storable("user name", name).is_err() {
                        return Ok(false);
                    }
                    Self::storable("password hash", password_hash)?;
                    let done = sqlx::query(Self::SQL.set_user_password)
                        .bind(name)
                        .bind(password_hash)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
                    if Self::storable("user name", name).is_err() {
                        return Ok(None);
                    }
                    let row: Option<(String, String, i64)> = sqlx::query_as(Self::SQL.get_user)
                        .bind(name)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(storage_error)?;
                    Ok(row.map(|(name, hash, created_at)| UserRecord::new(name, hash, created_at)))
                }

                async fn list_users(&self) -> Result<Vec<UserRecord>, StorageError> {
                    let rows: Vec<(String, String, i64)> = sqlx::query_as(Self::SQL.list_users)
                        .fetch_all(self.reader())
                        .await
                        .map_err(storage_error)?;
                    Ok(rows
                        .into_iter()
                        .map(|(name, hash, created_at)| UserRecord::new(name, hash, created_at))
                        .collect())
                }

                async fn delete_user(&self, name: &str) -> Result<bool, StorageError> {
                    if Self::storable("user name", name).is_err() {
                        return Ok(false);
                    }
                    let done = sqlx::query(Self::SQL.delete_user)
                        .bind(name)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn list_clients(&self) -> Result<Vec<ClientRecord>, StorageError> {
                    let records: Vec<String> = sqlx::query_scalar(Self::SQL.list_clients)
                        .fetch_all(self.reader())
                        .await
                        .map_err(storage_error)?;
                    records.iter().map(|json| decode("client", json)).collect()
                }

                async fn list_grants(
                    &self,
                    subject: Option<&str>,
                    client_id: Option<&str>,
                    now: i64,
                ) -> Result<Vec<GrantRecord>, StorageError> {
                    let records: Vec<String> = sqlx::query_scalar(Self::SQL.live_token_records)
                        .bind(now)
                        .fetch_all(self.reader())
                        .await
                        .map_err(storage_error)?;
                    $crate::admin::live_grants(&records, subject, client_id)
                }
            }
        };
    };
}

pub(crate) use admin_impls;
