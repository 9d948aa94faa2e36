//! What differs between SQLite and PostgreSQL, as one trait that both stores implement.
//!
//! Most storage operations are one statement whose Rust — binding, row decoding, error mapping
//! — is the same for both databases; only the SQL text differs (`?1` or `$1`, `1` or `TRUE`).
//! Those operations are written once, in [`shared`](crate::shared), against this trait, and
//! each database supplies its statements as one [`Sql`] value: a query added to `Sql` must be
//! written for both databases before the crate compiles, and its Rust exists once.
//!
//! What cannot be shared stays with its database: which pool a read or a write uses (SQLite
//! has a writing pool of one connection beside its reading pool) and which text a database
//! refuses to store (PostgreSQL: NUL), behind [`Dialect`]; the token writes that take a
//! grant's lock, whose atomicity each database reaches its own way (SQLite: one `BEGIN
//! IMMEDIATE; …; COMMIT` query; PostgreSQL: row locks and data-modifying `WITH` clauses),
//! behind [`TokenWrites`]; and how a client registration is written (SQLite: committed with
//! other registrations waiting; PostgreSQL: the shared statement), behind [`ClientWrites`].

use std::future::Future;

use mcp_auth_core::StorageError;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{AccessTokenRecord, RefreshTokenRecord, Rotation};
use sqlx::{Database, Pool};

/// One database's side of a store: its pools, its statements and the text it cannot store.
///
/// Implemented by [`SqliteStore`](crate::SqliteStore) and
/// [`PostgresStore`](crate::PostgresStore) themselves; then
/// [`storage_impls!`](crate::shared::storage_impls) implements the storage traits of each from
/// the one set of bodies.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// The sqlx driver.
    type Db: Database;

    /// Every shared statement, in this database's SQL.
    const SQL: Sql;

    /// The pool for lookups.
    fn reader(&self) -> &Pool<Self::Db>;

    /// The pool for every write, and for a read that is part of a write operation (after
    /// taking a code fails, the look for its redemption marker).
    fn writer(&self) -> &Pool<Self::Db>;

    /// Refuses a text value this database cannot store, naming `what` (never the value).
    /// Checked before a write binds it, so the write fails with a typed error; a lookup of
    /// such a value finds nothing, since no stored value can contain it.
    fn storable(what: &'static str, text: &str) -> Result<(), StorageError>;
}

/// The token writes, which take a grant's lock and so are each database's own: implemented in
/// `sqlite/writes.rs` and `postgres/writes.rs`, called by the shared `TokenStore` impl after the
/// grant rules of [`crate::grant`] were checked (so `keep_until` is the grant row's new lower
/// bound) and, for issuing, after the grant id passed [`Dialect::storable`].
pub(crate) trait TokenWrites: Dialect {
    /// `TokenStore::issue_tokens`.
    fn issue(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        keep_until: i64,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// `TokenStore::rotate_refresh_token`.
    fn rotate(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        keep_until: i64,
        now: i64,
    ) -> impl Future<Output = Result<Rotation, StorageError>> + Send;

    /// `TokenStore::revoke_grant`, for a `grant_id` that passed [`Dialect::storable`].
    fn revoke(
        &self,
        grant_id: &str,
        keep_until: i64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// `TokenStore::purge_expired_tokens`.
    fn purge(&self, now: i64) -> impl Future<Output = Result<u64, StorageError>> + Send;
}

/// How a client registration is written: implemented in `sqlite.rs` (group commit, see the
/// `sqlite::batch` module) and `postgres.rs` (the shared statement, [`Sql::insert_client`]),
/// called by the shared `ClientStore::insert_client` after the `client_id` passed
/// [`Dialect::storable`] and the record was encoded.
pub(crate) trait ClientWrites: Dialect {
    /// `ClientStore::insert_client`: stores `record` (JSON) under `client_id`; a taken id is a
    /// unique violation (`Conflict`).
    fn insert(
        &self,
        client_id: &str,
        record: String,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// The statements of the shared operations, one field per statement, each written once per
/// database (`sqlite/sql.rs`, `postgres/sql.rs`). A field's documentation gives its parameters,
/// which both texts bind in that order, and what it must return; the operation that runs it is
/// in [`shared`](crate::shared).
pub(crate) struct Sql {
    /// Inserts a client: `client_id`, `record`. A taken id fails the primary key. Run by
    /// [`ClientWrites`]; SQLite's text is one statement that its batches repeat, renumbered
    /// (`sqlite::batch`).
    pub(crate) insert_client: &'static str,
    /// Inserts or replaces a client: `client_id`, `record`.
    pub(crate) upsert_client: &'static str,
    /// A client's `record` by `client_id`.
    pub(crate) get_client: &'static str,
    /// Deletes a client by `client_id`.
    pub(crate) delete_client: &'static str,

    /// Inserts a pending request: `request_hash`, `expires_at`, `record`.
    pub(crate) insert_authorization_request: &'static str,
    /// A live pending request's `record`: `request_hash`, `now`.
    pub(crate) get_authorization_request: &'static str,
    /// Deletes a live pending request and returns its `record`: `request_hash`, `now`. One
    /// statement, so of concurrent deletes of one row only one returns it.
    pub(crate) take_authorization_request: &'static str,
    /// Deletes the requests expired at `now`.
    pub(crate) purge_authorization_requests: &'static str,

    /// Inserts a code: `code_hash`, `grant_id`, `expires_at`, `record`.
    pub(crate) insert_code: &'static str,
    /// A live unredeemed code's `record`: `code_hash`, `now`.
    pub(crate) get_code: &'static str,
    /// Marks a live unredeemed code redeemed and returns its `record`: `code_hash`, `now`. One
    /// statement, so of concurrent takers exactly one sees the row unredeemed.
    pub(crate) take_code: &'static str,
    /// The `grant_id` of a live redeemed code (the redemption marker): `code_hash`, `now`.
    pub(crate) code_redeemed: &'static str,
    /// Deletes the codes and markers expired at `now`.
    pub(crate) purge_codes: &'static str,

    /// A live access token's `record`: `token_hash`, `now`.
    pub(crate) get_access_token: &'static str,
    /// A live refresh token's `rotated` flag and `record`: `token_hash`, `now`.
    pub(crate) get_refresh_token: &'static str,

    /// Records an assertion id unless a live entry holds it, returning a row only when it
    /// recorded: `issuer`, `jti`, `expires_at`, `now`. One statement, so two concurrent first
    /// uses cannot both return a row.
    pub(crate) record_assertion_id: &'static str,
    /// Deletes the assertion ids expired at `now`.
    pub(crate) purge_assertion_ids: &'static str,

    /// Inserts a signing key unless its `generation` is stored: `generation`, `kid`,
    /// `algorithm`, `public_jwk`, `private_key`, `created_at`, `activates_at`. Only the
    /// generation is the conflict target, so a `kid` stored under another generation still
    /// fails the unique index (a conflict, see [`crate::error`]).
    pub(crate) insert_signing_key: &'static str,
    /// Deletes the signing keys of generations below the one bound.
    pub(crate) delete_signing_keys_before: &'static str,

    /// A rotated refresh token's `rotated_at` and `record`: `token_hash`, `now` (not expired).
    pub(crate) refresh_token_rotation: &'static str,

    /// Inserts a user unless the name is taken: `name`, `password_hash`, `created_at`.
    pub(crate) insert_user: &'static str,
    /// Replaces a user's password hash: `name`, `password_hash`.
    pub(crate) set_user_password: &'static str,
    /// A user's `name`, `password_hash`, `created_at` by `name`.
    pub(crate) get_user: &'static str,
    /// Every user's `name`, `password_hash`, `created_at`, by name.
    pub(crate) list_users: &'static str,
    /// Deletes a user by `name`.
    pub(crate) delete_user: &'static str,
    /// Every client's `record`, by `client_id`.
    pub(crate) list_clients: &'static str,
    /// The `record` of every live credential at `now` (access tokens, unrotated refresh tokens
    /// and unredeemed codes, not expired) whose grant is not revoked: a grant whose code is
    /// not yet redeemed is a grant to list and revoke too.
    pub(crate) live_token_records: &'static str,

    /// Stores a grant's upstream tokens, replacing its earlier row: `grant_id`, `sealed`,
    /// `expires_at`. One statement (an upsert), so concurrent replacements leave one whole row.
    pub(crate) put_upstream_tokens: &'static str,
    /// A grant's live upstream tokens' `sealed`, `expires_at`: `grant_id`, `now`.
    pub(crate) get_upstream_tokens: &'static str,
    /// Deletes a grant's upstream tokens by `grant_id`.
    pub(crate) delete_upstream_tokens: &'static str,
    /// Deletes the upstream tokens expired at `now`.
    pub(crate) purge_upstream_tokens: &'static str,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{PostgresStore, SqliteStore};

    /// Every statement with its field's name. Destructured without `..`, so a field added to
    /// [`Sql`] does not compile here until it is listed, and so is checked below.
    fn statements(sql: Sql) -> Vec<(&'static str, &'static str)> {
        let Sql {
            insert_client,
            upsert_client,
            get_client,
            delete_client,
            insert_authorization_request,
            get_authorization_request,
            take_authorization_request,
            purge_authorization_requests,
            insert_code,
            get_code,
            take_code,
            code_redeemed,
            purge_codes,
            get_access_token,
            get_refresh_token,
            record_assertion_id,
            purge_assertion_ids,
            insert_signing_key,
            delete_signing_keys_before,
            refresh_token_rotation,
            insert_user,
            set_user_password,
            get_user,
            list_users,
            delete_user,
            list_clients,
            live_token_records,
            put_upstream_tokens,
            get_upstream_tokens,
            delete_upstream_tokens,
            purge_upstream_tokens,
        } = sql;
        vec![
            ("insert_client", insert_client),
            ("upsert_client", upsert_client),
            ("get_client", get_client),
            ("delete_client", delete_client),
            ("insert_authorization_request", insert_authorization_request),
            ("get_authorization_request", get_authorization_request),
            ("take_authorization_request", take_authorization_request),
            ("purge_authorization_requests", purge_authorization_requests),
            ("insert_code", insert_code),
            ("get_code", get_code),
            ("take_code", take_code),
            ("code_redeemed", code_redeemed),
            ("purge_codes", purge_codes),
            ("get_access_token", get_access_token),
            ("get_refresh_token", get_refresh_token),
            ("record_assertion_id", record_assertion_id),
            ("purge_assertion_ids", purge_assertion_ids),
            ("insert_signing_key", insert_signing_key),
            ("delete_signing_keys_before", delete_signing_keys_before),
            ("refresh_token_rotation", refresh_token_rotation),
            ("insert_user", insert_user),
            ("set_user_password", set_user_password),
            ("get_user", get_user),
            ("list_users", list_users),
            ("delete_user", delete_user),
            ("list_clients", list_clients),
            ("live_token_records", live_token_records),
            ("put_upstream_tokens", put_upstream_tokens),
            ("get_upstream_tokens", get_upstream_tokens),
            ("delete_upstream_tokens", delete_upstream_tokens),
            ("purge_upstream_tokens", purge_upstream_tokens),
        ]
    }

    /// The parameter numbers a statement reads, written `<sigil>N`.
    fn parameters(sql: &str, sigil: char) -> BTreeSet<u32> {
        sql.split(sigil)
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits
                    .parse()
                    .expect("a sigil is followed by a parameter number")
            })
            .collect()
    }

    /// The shared bodies bind one argument list for both databases, so the two texts of a
    /// statement must read exactly the same parameters, numbered from 1 without a gap.
    #[test]
    fn both_dialects_read_the_same_parameters_in_every_statement() {
        let sqlite = statements(<SqliteStore as Dialect>::SQL);
        let postgres = statements(<PostgresStore as Dialect>::SQL);
        for ((name, sqlite), (_, postgres)) in sqlite.into_iter().zip(postgres) {
            assert!(!sqlite.contains('$'), "{name}: {sqlite}");
            assert!(!postgres.contains('?'), "{name}: {postgres}");
            let read = parameters(sqlite, '?');
            assert_eq!(read, parameters(postgres, '$'), "{name}");
            assert!(
                read.iter().copied().eq(1..=read.len() as u32),
                "{name}: {read:?}"
            );
        }
    }
}
