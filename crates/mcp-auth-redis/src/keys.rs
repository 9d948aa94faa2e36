//! Every Redis key this crate uses, built from one configurable prefix.
//!
//! Keeping them in one place makes the key space auditable: everything under the prefix is
//! ours, and nothing outside it is touched. Variable parts are always the last component (or
//! length-prefixed), so two different inputs can never build the same key. Credentials appear
//! only as hex SHA-256 hashes.

use mcp_auth_core::secrets::SecretHash;

/// The expiry indexes: sorted sets of record keys scored by `expires_at`, which let
/// `purge_*` find what expired at the caller's `now` (Redis' own TTLs use the server clock).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Index {
    /// Pending authorization requests.
    Requests,
    /// Codes and their redemption markers.
    Codes,
    /// Access tokens, refresh tokens (and rotation markers), revocation markers.
    Tokens,
    /// Per-grant token sets: bookkeeping, purged but not counted.
    Grants,
    /// Assertion ids.
    Assertions,
    /// Upstream-token records.
    Upstream,
}

/// Builds keys under a prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// A client's record (JSON string, no expiry).
    pub(crate) fn client(&self, client_id: &str) -> String {
        self.key("client", client_id)
    }

    /// A pending authorization request (JSON string).
    pub(crate) fn request(&self, hash: &SecretHash) -> String {
        self.key("request", &hash.to_hex())
    }

    /// A code (hash: `record`, `redeemed`, `expires_at`); stays as the redemption marker.
    pub(crate) fn code(&self, hash: &SecretHash) -> String {
        self.key("code", &hash.to_hex())
    }

    /// An access token (JSON string): one `GET` per lookup.
    pub(crate) fn access(&self, hash: &SecretHash) -> String {
        self.key("access", &hash.to_hex())
    }

    /// A refresh token (hash: `record`, `rotated`, `expires_at`, `grant_id`).
    pub(crate) fn refresh(&self, hash: &SecretHash) -> String {
        self.key("refresh", &hash.to_hex())
    }

    /// The set of a grant's access-token keys.
    pub(crate) fn grant_access(&self, grant_id: &str) -> String {
        self.key("grant-access", grant_id)
    }

    /// The set of a grant's refresh-token keys, rotated ones included.
    pub(crate) fn grant_refresh(&self, grant_id: &str) -> String {
        self.key("grant-refresh", grant_id)
    }

    /// A revoked grant's marker (its `keep_until`), refusing new tokens while it exists.
    pub(crate) fn revoked(&self, grant_id: &str) -> String {
        self.key("revoked", grant_id)
    }

    /// A grant's upstream tokens (hash: `sealed`, `expires_at`), expiring with the record.
    pub(crate) fn upstream(&self, grant_id: &str) -> String {
        self.key("upstream", grant_id)
    }

    /// A used assertion id (the provider passes the SHA-256 hex of the `jti`, so the key has
    /// a bounded length). The issuer's length goes first so that no `(issuer, jti)` pair can
    /// spell another's key, whatever colons either contains. The value is `1`; the key's
    /// expiry is the entry's.
    pub(crate) fn assertion(&self, issuer: &str, jti: &str) -> String {
        format!("{}jti:{}:{issuer}:{jti}", self.prefix, issuer.len())
    }

    /// Every access-token signing key: a hash from generation (decimal) to the key's JSON, no
    /// expiry. One key, since the whole set is always read at once.
    pub(crate) fn signing_keys(&self) -> String {
        format!("{}signing-keys", self.prefix)
    }

    /// The sign-in users kept in the store: a hash from user name to the user's JSON, no
    /// expiry.
    pub(crate) fn users(&self) -> String {
        format!("{}users", self.prefix)
    }

    /// An expiry index.
    pub(crate) fn index(&self, index: Index) -> String {
        let name = match index {
            Index::Requests => "requests",
            Index::Codes => "codes",
            Index::Tokens => "tokens",
            Index::Grants => "grants",
            Index::Assertions => "assertions",
            Index::Upstream => "upstream",
        };
        self.key("expiry", name)
    }

    /// A rate-limit budget (the GCRA's theoretical arrival time, expiring when the budget is
    /// full again). The caller's key names the budget's purpose and its subject, e.g.
    /// `token:203.0.113.9`.
    pub(crate) fn rate_limit(&self, key: &str) -> String {
        self.key("rate", key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_prefix_and_hold_only_hashes() {
        let keys = Keys::new("app:");
        let hash = SecretHash::of("raw-token");
        for key in [keys.access(&hash), keys.refresh(&hash), keys.code(&hash)] {
            assert!(key.starts_with("app:"));
            assert!(key.ends_with(&hash.to_hex()));
            assert!(!key.contains("raw-token"));
        }
        assert_eq!(keys.index(Index::Tokens), "app:expiry:tokens");
        assert_eq!(keys.signing_keys(), "app:signing-keys");
    }

    #[test]
    fn assertion_keys_cannot_collide() {
        let keys = Keys::new("p:");
        assert_ne!(keys.assertion("a:b", "c"), keys.assertion("a", "b:c"));
    }
}
