//! Token issuances as a batchable write ([`Issue`]).
//!
//! One text serves access-only issuances and pairs alike: an access-only issuance binds NULL
//! for the refresh token, and the refresh token's insert is guarded by `WHERE $n IS NOT NULL`.
//! Keeping apart the two shapes would need a text per sequence of shapes, or split batches
//! (smaller exactly where a server issues both kinds, code exchanges and `client_credentials`),
//! for the price of one statement that finds nothing to insert.
//!
//! Each issuance's claim of its grant returns its index: an issuance whose index comes back
//! was stored, one whose grant is revoked returns nothing and wrote nothing.

use mcp_auth_core::StorageError;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{AccessTokenRecord, RefreshTokenRecord};

use super::{Bound, Op, Texts, numbered};
use crate::codec::encode;

/// Parameters each issuance binds, numbered from `8i + 1` for issuance i (see
/// [`Issue::statements`]).
pub(super) const PARAMS_PER_ISSUE: usize = 8;

/// One issuance, bound: the values of its [`PARAMS_PER_ISSUE`] parameters, owned, in their
/// order.
#[derive(Debug)]
pub(in crate::sqlite) struct Issue {
    grant_id: String,
    keep_until: i64,
    access: Token,
    refresh: Option<Token>,
}

/// A token's columns: hash, expiry, JSON record.
#[derive(Debug)]
struct Token {
    hash: Vec<u8>,
    expires_at: i64,
    record: String,
}

impl Token {
    fn new(hash: &SecretHash, expires_at: i64, record: String) -> Self {
        Self {
            hash: hash.as_bytes().to_vec(),
            expires_at,
            record,
        }
    }
}

impl Issue {
    /// `TokenStore::issue_tokens`'s values, encoded on the caller's task.
    pub(in crate::sqlite) fn new(
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        keep_until: i64,
    ) -> Result<Self, StorageError> {
        let refresh = match refresh {
            Some(refresh) => Some(Token::new(
                &refresh.token_hash,
                refresh.expires_at,
                encode(refresh)?,
            )),
            None => None,
        };
        Ok(Self {
            grant_id: access.grant_id.clone(),
            keep_until,
            access: Token::new(&access.token_hash, access.expires_at, encode(access)?),
            refresh,
        })
    }
}

impl Op for Issue {
    /// Whether the tokens were stored (`false`: the grant is revoked).
    type Outcome = bool;

    const WHAT: &'static str = "issuance";

    const PARAMS: usize = PARAMS_PER_ISSUE;

    fn texts() -> &'static Texts {
        static TEXTS: Texts = Texts::new();
        &TEXTS
    }

    /// Claims the grant (creates its row or extends its `keep_until`, unless revoked; returns
    /// the issuance's index if claimed), stores the access token and, if one was bound, the
    /// refresh token, each only while the grant is not revoked.
    fn statements(op: usize) -> String {
        let [
            grant,
            keep_until,
            access_hash,
            access_expires,
            access_record,
            refresh_hash,
            refresh_expires,
            refresh_record,
        ] = numbered::<{ Self::PARAMS }>(op);
        format!(
            "INSERT INTO grants (grant_id, revoked, keep_until) VALUES (${grant}, 0, ${keep_until}) \
             ON CONFLICT (grant_id) DO UPDATE SET keep_until = max(keep_until, excluded.keep_until) \
             WHERE NOT revoked \
             RETURNING {op} AS op;\
             INSERT INTO access_tokens (token_hash, grant_id, expires_at, record) \
             SELECT ${access_hash}, ${grant}, ${access_expires}, ${access_record} \
             WHERE EXISTS (SELECT 1 FROM grants WHERE grant_id = ${grant} AND NOT revoked);\
             INSERT INTO refresh_tokens (token_hash, grant_id, expires_at, record) \
             SELECT ${refresh_hash}, ${grant}, ${refresh_expires}, ${refresh_record} \
             WHERE ${refresh_hash} IS NOT NULL \
             AND EXISTS (SELECT 1 FROM grants WHERE grant_id = ${grant} AND NOT revoked);"
        )
    }

    fn bind(self, query: Bound<'static>) -> Bound<'static> {
        let (hash, expires_at, record) = match self.refresh {
            Some(token) => (Some(token.hash), Some(token.expires_at), Some(token.record)),
            None => (None, None, None),
        };
        query
            .bind(self.grant_id)
            .bind(self.keep_until)
            .bind(self.access.hash)
            .bind(self.access.expires_at)
            .bind(self.access.record)
            .bind(hash)
            .bind(expires_at)
            .bind(record)
    }

    fn bind_ref<'q>(&'q self, query: Bound<'q>) -> Bound<'q> {
        let refresh = self.refresh.as_ref();
        query
            .bind(self.grant_id.as_str())
            .bind(self.keep_until)
            .bind(self.access.hash.as_slice())
            .bind(self.access.expires_at)
            .bind(self.access.record.as_str())
            .bind(refresh.map(|token| token.hash.as_slice()))
            .bind(refresh.map(|token| token.expires_at))
            .bind(refresh.map(|token| token.record.as_str()))
    }

    fn outcome(returned: bool) -> Result<bool, StorageError> {
        Ok(returned)
    }
}
