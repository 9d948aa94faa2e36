//! The storage operations both databases share, written once: [`storage_impls!`].
//!
//! Each operation here is the whole of its Rust — which pool it uses, what it binds, how it
//! decodes the rows, how failures map and what it returns — and takes its SQL from the
//! store's [`Dialect::SQL`](crate::dialect::Dialect::SQL). A new query is one field of
//! [`Sql`](crate::dialect::Sql), its text for each database, and one body here.
//!
//! A macro rather than generic code: the storage traits belong to `mcp-auth-core`, so a
//! blanket `impl<S: Dialect> ClientStore for S` is not allowed and each store needs impls of
//! its own; and generic sqlx code would need a bound for every type bound or decoded, where
//! each expansion of the macro is plain code for one driver (the workspace keeps one concrete
//! store per database, none generic over `Database`). The impls sit in an unnamed `const` so
//! that their imports stay inside it.

use mcp_auth_core::secrets::SecretHash;

/// A secret's hash as bound to a primary-key column (`BLOB` / `BYTEA`).
pub(crate) fn key(hash: &SecretHash) -> &[u8] {
    hash.as_bytes()
}

/// Implements every storage trait of `mcp-auth-core` for `$store`, a
/// [`Dialect`](crate::dialect::Dialect) with [`TokenWrites`](crate::dialect::TokenWrites) and
/// [`ClientWrites`](crate::dialect::ClientWrites): the shared operations in full, the token
/// writes by the store's own after the grant rules of [`crate::grant`], and a client's insert
/// by the store's own after the shared checks and encoding.
macro_rules! storage_impls {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use mcp_auth_core::StorageError;
            use mcp_auth_core::secrets::SecretHash;
            use mcp_auth_core::storage::{
                AccessTokenRecord, AuthorizationRequestRecord, AuthorizationRequestStore,
                ClientRecord, ClientStore, CodeRecord, CodeStore, CodeTake, RefreshLookup,
                RefreshTokenRecord, ReplayStore, Rotation, SigningKeyRecord, SigningKeyStore,
                TokenStore, UpstreamTokenRecord, UpstreamTokenStore,
            };

            use $crate::codec::{decode, encode, encode_client};
            use $crate::dialect::{ClientWrites, Dialect, TokenWrites};
            use $crate::error::storage_error;
            use $crate::grant::grant_keep_until;
            use $crate::shared::key;
            use $crate::signing_key::{KeyRow, SELECT_KEYS, key_record};

            #[async_trait]
            impl ClientStore for $store {
                async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
                    Self::storable("client_id", &client.info.client_id)?;
                    let record = encode_client(client)?;
                    ClientWrites::insert(self, &client.info.client_id, record).await
                }

                async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
                    Self::storable("client_id", &client.info.client_id)?;
                    sqlx::query(Self::SQL.upsert_client)
                        .bind(&client.info.client_id)
                        .bind(encode_client(client)?)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(())
                }

                async fn get_client(
                    &self,
                    client_id: &str,
                ) -> Result<Option<ClientRecord>, StorageError> {
                    if Self::storable("client_id", client_id).is_err() {
                        // No stored id can contain it, so the client is simply absent.
                        return Ok(None);
                    }
                    let record: Option<String> = sqlx::query_scalar(Self::SQL.get_client)
                        .bind(client_id)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(storage_error)?;
                    record.map(|json| decode("client", &json)).transpose()
                }

                async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
                    if Self::storable("client_id", client_id).is_err() {
                        return Ok(false);
                    }
                    let done = sqlx::query(Self::SQL.delete_client)
                        .bind(client_id)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected() > 0)
                }
            }

            #[async_trait]
            impl AuthorizationRequestStore for $store {
                async fn insert_authorization_request(
                    &self,
                    request: &AuthorizationRequestRecord,
                ) -> Result<(), StorageError> {
                    sqlx::query(Self::SQL.insert_authorization_request)
                        .bind(key(&request.request_hash))
                        .bind(request.expires_at)
                        .bind(encode(request)?)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(())
                }

                async fn get_authorization_request(
                    &self,
                    request_hash: &SecretHash,
                    now: i64,
                ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
                    let record: Option<String> =
                        sqlx::query_scalar(Self::SQL.get_authorization_request)
                            .bind(key(request_hash))
                            .bind(now)
                            .fetch_optional(self.reader())
                            .await
                            .map_err(storage_error)?;
                    record
                        .map(|json| decode("authorization request", &json))
                        .transpose()
                }

                async fn take_authorization_request(
                    &self,
                    request_hash: &SecretHash,
                    now: i64,
                ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
                    // One statement: of concurrent deletes of one row, one deletes it and the
                    // others find nothing.
                    let record: Option<String> =
                        sqlx::query_scalar(Self::SQL.take_authorization_request)
                            .bind(key(request_hash))
                            .bind(now)
                            .fetch_optional(self.writer())
                            .await
                            .map_err(storage_error)?;
                    record
                        .map(|json| decode("authorization request", &json))
                        .transpose()
                }

                async fn purge_expired_authorization_requests(
                    &self,
                    now: i64,
                ) -> Result<u64, StorageError> {
                    let done = sqlx::query(Self::SQL.purge_authorization_requests)
                        .bind(now)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl CodeStore for $store {
                async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError> {
                    Self::storable("grant_id", &code.grant_id)?;
                    sqlx::query(Self::SQL.insert_code)
                        .bind(key(&code.code_hash))
                        .bind(&code.grant_id)
                        .bind(code.expires_at)
                        .bind(encode(code)?)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(())
                }

                async fn get_code(
                    &self,
                    code_hash: &SecretHash,
                    now: i64,
                ) -> Result<Option<CodeRecord>, StorageError> {
                    let record: Option<String> = sqlx::query_scalar(Self::SQL.get_code)
                        .bind(key(code_hash))
                        .bind(now)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(storage_error)?;
                    record.map(|json| decode("code", &json)).transpose()
                }

                async fn take_code(
                    &self,
                    code_hash: &SecretHash,
                    now: i64,
                ) -> Result<CodeTake, StorageError> {
                    // The flag flip is one statement, so of concurrent takers exactly one sees
                    // the row unredeemed. The row stays as the redemption marker until it
                    // expires.
                    let record: Option<String> = sqlx::query_scalar(Self::SQL.take_code)
                        .bind(key(code_hash))
                        .bind(now)
                        .fetch_optional(self.writer())
                        .await
                        .map_err(storage_error)?;
                    if let Some(json) = record {
                        return Ok(CodeTake::Taken(decode("code", &json)?));
                    }
                    // Nothing taken: a redemption marker means the code was replayed. Redeemed
                    // is final, so reading it outside the update cannot see a state the update
                    // did not.
                    let grant_id: Option<String> = sqlx::query_scalar(Self::SQL.code_redeemed)
                        .bind(key(code_hash))
                        .bind(now)
                        .fetch_optional(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(match grant_id {
                        Some(grant_id) => CodeTake::AlreadyRedeemed { grant_id },
                        None => CodeTake::Missing,
                    })
                }

                async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError> {
                    let done = sqlx::query(Self::SQL.purge_codes)
                        .bind(now)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl TokenStore for $store {
                async fn issue_tokens(
                    &self,
                    access: &AccessTokenRecord,
                    refresh: Option<&RefreshTokenRecord>,
                ) -> Result<bool, StorageError> {
                    let keep_until = grant_keep_until(access, refresh)?;
                    Self::storable("grant_id", &access.grant_id)?;
                    TokenWrites::issue(self, access, refresh, keep_until).await
                }

                async fn get_access_token(
                    &self,
                    token_hash: &SecretHash,
                    now: i64,
                ) -> Result<Option<AccessTokenRecord>, StorageError> {
                    let record: Option<String> = sqlx::query_scalar(Self::SQL.get_access_token)
                        .bind(key(token_hash))
                        .bind(now)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(storage_error)?;
                    record.map(|json| decode("access token", &json)).transpose()
                }

                async fn get_refresh_token(
                    &self,
                    token_hash: &SecretHash,
                    now: i64,
                ) -> Result<Option<RefreshLookup>, StorageError> {
                    let row: Option<(bool, String)> = sqlx::query_as(Self::SQL.get_refresh_token)
                        .bind(key(token_hash))
                        .bind(now)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(storage_error)?;
                    row.map(|(rotated, json)| {
                        let record: RefreshTokenRecord = decode("refresh token", &json)?;
                        Ok(if rotated {
                            RefreshLookup::Rotated {
                                grant_id: record.grant_id,
                            }
                        } else {
                            RefreshLookup::Active(record)
                        })
                    })
                    .transpose()
                }

                async fn rotate_refresh_token(
                    &self,
                    old_hash: &SecretHash,
                    access: &AccessTokenRecord,
                    refresh: Option<&RefreshTokenRecord>,
                    now: i64,
                ) -> Result<Rotation, StorageError> {
                    let keep_until = grant_keep_until(access, refresh)?;
                    TokenWrites::rotate(self, old_hash, access, refresh, keep_until, now).await
                }

                async fn refresh_token_rotation(
                    &self,
                    token_hash: &SecretHash,
                    now: i64,
                ) -> Result<Option<(i64, RefreshTokenRecord)>, StorageError> {
                    let row: Option<(i64, String)> =
                        sqlx::query_as(Self::SQL.refresh_token_rotation)
                            .bind(key(token_hash))
                            .bind(now)
                            .fetch_optional(self.reader())
                            .await
                            .map_err(storage_error)?;
                    row.map(|(rotated_at, json)| {
                        decode::<RefreshTokenRecord>("refresh token", &json)
                            .map(|record| (rotated_at, record))
                    })
                    .transpose()
                }

                async fn revoke_grant(
                    &self,
                    grant_id: &str,
                    keep_until: i64,
                ) -> Result<(), StorageError> {
                    if Self::storable("grant_id", grant_id).is_err() {
                        // No token can carry it (issuing refuses such ids), so there is nothing
                        // to revoke and nothing to refuse later.
                        return Ok(());
                    }
                    TokenWrites::revoke(self, grant_id, keep_until).await
                }

                async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError> {
                    TokenWrites::purge(self, now).await
                }
            }

            #[async_trait]
            impl ReplayStore for $store {
                async fn record_assertion_id(
                    &self,
                    issuer: &str,
                    jti: &str,
                    expires_at: i64,
                    now: i64,
                ) -> Result<bool, StorageError> {
                    // Refused rather than reported as a first use: an entry that cannot be
                    // recorded must not let the assertion through twice.
                    Self::storable("assertion issuer", issuer)?;
                    Self::storable("assertion id", jti)?;
                    // Insert if absent, or take over an entry that has expired; one statement,
                    // so two concurrent first uses cannot both get a row back.
                    let first = sqlx::query(Self::SQL.record_assertion_id)
                        .bind(issuer)
                        .bind(jti)
                        .bind(expires_at)
                        .bind(now)
                        .fetch_optional(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(first.is_some())
                }

                async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError> {
                    let done = sqlx::query(Self::SQL.purge_assertion_ids)
                        .bind(now)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl SigningKeyStore for $store {
                async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
                    let rows: Vec<KeyRow> = sqlx::query_as(SELECT_KEYS)
                        .fetch_all(self.reader())
                        .await
                        .map_err(storage_error)?;
                    Ok(rows.into_iter().map(key_record).collect())
                }

                async fn insert_signing_key(
                    &self,
                    key: &SigningKeyRecord,
                ) -> Result<bool, StorageError> {
                    // Every text column is checked, not only the key's id: a key that cannot be
                    // stored whole is refused with a typed error rather than failing the
                    // statement.
                    Self::storable("signing key kid", &key.kid)?;
                    Self::storable("signing key algorithm", &key.algorithm)?;
                    Self::storable("signing key public JWK", &key.public_jwk)?;
                    Self::storable("signing key private key", &key.private_key)?;
                    // One statement: of concurrent inserts of one generation, one stores its row
                    // and the others change nothing.
                    let done = sqlx::query(Self::SQL.insert_signing_key)
                        .bind(key.generation)
                        .bind(&key.kid)
                        .bind(&key.algorithm)
                        .bind(&key.public_jwk)
                        .bind(&key.private_key)
                        .bind(key.created_at)
                        .bind(key.activates_at)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_signing_keys_before(
                    &self,
                    generation: i64,
                ) -> Result<u64, StorageError> {
                    let done = sqlx::query(Self::SQL.delete_signing_keys_before)
                        .bind(generation)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl UpstreamTokenStore for $store {
                async fn put_upstream_tokens(
                    &self,
                    record: &UpstreamTokenRecord,
                ) -> Result<(), StorageError> {
                    Self::storable("grant_id", &record.grant_id)?;
                    Self::storable("sealed upstream tokens", &record.sealed)?;
                    // An upsert: a refresh upstream replaces the grant's row in one statement.
                    sqlx::query(Self::SQL.put_upstream_tokens)
                        .bind(&record.grant_id)
                        .bind(&record.sealed)
                        .bind(record.expires_at)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(())
                }

                async fn get_upstream_tokens(
                    &self,
                    grant_id: &str,
                    now: i64,
                ) -> Result<Option<UpstreamTokenRecord>, StorageError> {
                    if Self::storable("grant_id", grant_id).is_err() {
                        return Ok(None);
                    }
                    let row: Option<(String, i64)> = sqlx::query_as(Self::SQL.get_upstream_tokens)
                        .bind(grant_id)
                        .bind(now)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(storage_error)?;
                    Ok(row.map(|(sealed, expires_at)| {
                        UpstreamTokenRecord::new(grant_id, sealed, expires_at)
                    }))
                }

                async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StorageError> {
                    if Self::storable("grant_id", grant_id).is_err() {
                        // No row can carry it (storing refuses such ids).
                        return Ok(());
                    }
                    sqlx::query(Self::SQL.delete_upstream_tokens)
                        .bind(grant_id)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(())
                }

                async fn purge_expired_upstream_tokens(
                    &self,
                    now: i64,
                ) -> Result<u64, StorageError> {
                    let done = sqlx::query(Self::SQL.purge_upstream_tokens)
                        .bind(now)
                        .execute(self.writer())
                        .await
                        .map_err(storage_error)?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}
pub(crate) use storage_impls;
