//! An opt-in, bounded, short-lived in-process cache of access-token lookups.
//!
//! Every protected request looks its token up. On the in-memory store that is a hash-map read;
//! on SQL or Redis it is a round trip costing several times the rest of the request (see the
//! `mcp-auth-axum` README). Clients reuse one access token for many calls, so caching the
//! record of a token that storage has just confirmed takes the store off the hot path.
//!
//! What the cache must not do is outlive a revocation. Three rules keep it honest:
//!
//! - **Only confirmed tokens are cached**, never a miss: a token just issued by another
//!   instance is found at once, and random tokens cannot fill the cache.
//! - **Local revocations are exact.** Every place this provider revokes tokens (RFC 7009
//!   revocation, refresh-token reuse, code replay, rotation deleting a grant's earlier access
//!   tokens) calls [`AccessTokenCache::revoke_grant`] *after* storage has committed. A
//!   revocation takes a number from a counter; an entry records the counter as it was *before*
//!   its storage read; an entry older than a revocation of its grant is dead. So a lookup racing
//!   a revocation cannot re-insert a stale record: it read the counter before the revocation
//!   took its number.
//! - **Other instances' revocations are seen within the TTL.** Nothing tells this process that
//!   another one revoked a grant in the shared database; an entry is served for at most `ttl`
//!   seconds after it was read. That bounded lag is the price of the cache, which is why it is
//!   off by default and meant for a short TTL (a few seconds) when several instances share a
//!   store, or any TTL for a single instance on a local database.
//!
//! A token's own expiry is always checked on a hit. Keys are the tokens' SHA-256 digests (the
//! same value storage indexes), so the cache holds no credential.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use quick_cache::sync::Cache;

use crate::secrets::SecretHash;
use crate::storage::SharedAccessTokenRecord;

/// Revocation marks kept at most before the cache gives up on precision and forgets every
/// entry read so far (which is always safe). Marks older than the TTL are dropped first.
const MAX_REVOCATION_MARKS: usize = 16_384;

/// A cached lookup.
struct Entry {
    record: SharedAccessTokenRecord,
    /// The revocation counter when the storage read began.
    epoch: u64,
    /// When the storage read began, on the provider's clock (seconds).
    read_at: i64,
}

/// Revocations recently made through this cache's provider.
#[derive(Default)]
struct Revocations {
    /// Per grant: the counter value its latest revocation took, and when (provider clock).
    marks: HashMap<String, (u64, i64)>,
    /// Entries read before this counter value are dead: set when `marks` overflows.
    floor: u64,
}

/// See the module documentation.
pub(super) struct AccessTokenCache {
    ttl: i64,
    entries: Cache<[u8; 32], Arc<Entry>>,
    epoch: AtomicU64,
    /// Read on every hit, written only by revocations: a read-write lock keeps hits from
    /// queueing behind one another.
    revocations: RwLock<Revocations>,
}

/// A ticket for one storage read: take it before reading, hand it back with the result.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadTicket {
    epoch: u64,
    read_at: i64,
}

impl AccessTokenCache {
    /// A cache serving entries for `ttl` seconds, holding at most `capacity` tokens.
    pub(super) fn new(ttl: u64, capacity: usize) -> Self {
        Self {
            ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
            entries: Cache::new(capacity.max(1)),
            epoch: AtomicU64::new(0),
            revocations: RwLock::new(Revocations::default()),
        }
    }

    /// The live cached record of `hash` at `now`, if any.
    pub(super) fn get(&self, hash: &SecretHash, now: i64) -> Option<SharedAccessTokenRecord> {
        let found = self.entries.get(hash.as_bytes()).and_then(|entry| {
            let fresh = now - entry.read_at < self.ttl && entry.record.expires_at() > now;
            if fresh && !self.revoked_since(&entry) {
                return Some(entry.record.clone());
            }
            self.entries.remove(hash.as_bytes());
            None
        });
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("mcp_auth_access_token_cache_total", "result" => result).increment(1);
        found
    }

    /// Starts a storage read at `now`.
    pub(super) fn ticket(&self, now: i64) -> ReadTicket {
        ReadTicket {
            // Acquire pairs with the release in `revoke_grant`: a revocation numbered after
            // this load is ordered after the storage commit it follows.
            epoch: self.epoch.load(Ordering::Acquire),
            read_at: now,
        }
    }

    /// Caches what a storage read begun with `ticket` found for `hash`.
    pub(super) fn put(
        &self,
        ticket: ReadTicket,
        hash: &SecretHash,
        record: &SharedAccessTokenRecord,
    ) {
        let entry = Arc::new(Entry {
            record: record.clone(),
            epoch: ticket.epoch,
            read_at: ticket.read_at,
        });
        if self.revoked_since(&entry) {
            return;
        }
        self.entries.insert(*hash.as_bytes(), entry);
    }

    /// Records that every access token of `grant_id` issued so far is dead. Call it after the
    /// storage change has committed.
    pub(super) fn revoke_grant(&self, grant_id: &str, now: i64) {
        let mut revocations = self
            .revocations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let number = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let ttl = self.ttl;
        if revocations.marks.len() >= MAX_REVOCATION_MARKS {
            // An entry lives at most `ttl`, so a mark older than that guards nothing.
            revocations
                .marks
                .retain(|_, (_, revoked_at)| now - *revoked_at <= ttl);
        }
        if revocations.marks.len() >= MAX_REVOCATION_MARKS {
            revocations.marks.clear();
            revocations.floor = number;
        } else {
            revocations.marks.insert(grant_id.to_owned(), (number, now));
        }
    }

    fn revoked_since(&self, entry: &Entry) -> bool {
        let revocations = self.revocations();
        entry.epoch < revocations.floor
            || revocations
                .marks
                .get(entry.record.grant_id())
                .is_some_and(|(number, _)| *number > entry.epoch)
    }

    fn revocations(&self) -> RwLockReadGuard<'_, Revocations> {
        // The guarded data stays consistent whatever a panicking holder did.
        self.revocations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for AccessTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenCache")
            .field("ttl", &self.ttl)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(grant: &str, expires_at: i64) -> SharedAccessTokenRecord {
        SharedAccessTokenRecord::from(crate::storage::AccessTokenRecord {
            token_hash: SecretHash::of("unused"),
            grant_id: grant.into(),
            client_id: "c".into(),
            scopes: vec!["mcp:tools".into()],
            expires_at,
            resource: None,
            subject: Some("alice".into()),
            claims: None,
        })
    }

    fn put(
        cache: &AccessTokenCache,
        ticket: ReadTicket,
        token: &str,
        grant: &str,
        expires_at: i64,
    ) {
        cache.put(ticket, &SecretHash::of(token), &record(grant, expires_at));
    }

    fn cached(cache: &AccessTokenCache, token: &str, now: i64) -> Option<String> {
        cache
            .get(&SecretHash::of(token), now)
            .map(|record| record.grant_id().to_owned())
    }

    #[test]
    fn serves_a_confirmed_token_until_the_ttl_or_its_expiry() {
        let cache = AccessTokenCache::new(5, 100);
        put(&cache, cache.ticket(100), "t", "g", 103);
        assert_eq!(cached(&cache, "t", 100).as_deref(), Some("g"));
        assert_eq!(cached(&cache, "t", 102).as_deref(), Some("g"));
        assert_eq!(cached(&cache, "t", 103), None, "the token's own expiry");

        put(&cache, cache.ticket(200), "u", "g", 1000);
        assert_eq!(cached(&cache, "u", 204).as_deref(), Some("g"));
        assert_eq!(cached(&cache, "u", 205), None, "the cache's TTL");
        assert_eq!(cached(&cache, "other", 200), None);
    }

    #[test]
    fn a_revoked_grant_is_gone_at_once_and_only_that_grant() {
        let cache = AccessTokenCache::new(60, 100);
        put(&cache, cache.ticket(100), "t1", "g", 1000);
        put(&cache, cache.ticket(100), "t2", "g", 1000);
        put(&cache, cache.ticket(100), "x", "h", 1000);
        cache.revoke_grant("g", 101);
        assert_eq!(cached(&cache, "t1", 101), None);
        assert_eq!(cached(&cache, "t2", 101), None);
        assert_eq!(cached(&cache, "x", 101).as_deref(), Some("h"));
    }

    #[test]
    fn a_read_racing_a_revocation_is_never_cached() {
        let cache = AccessTokenCache::new(60, 100);
        // The read began before the revocation committed and returned the old record.
        let ticket = cache.ticket(100);
        cache.revoke_grant("g", 100);
        put(&cache, ticket, "t", "g", 1000);
        assert_eq!(cached(&cache, "t", 100), None);
    }

    #[test]
    fn a_token_read_after_a_rotation_is_cached() {
        // Rotation marks the grant; the grant's new access token, read afterwards, is live.
        let cache = AccessTokenCache::new(60, 100);
        cache.revoke_grant("g", 100);
        put(&cache, cache.ticket(101), "new", "g", 1000);
        assert_eq!(cached(&cache, "new", 101).as_deref(), Some("g"));
    }

    #[test]
    fn overflowing_revocation_marks_forget_everything_read_before() {
        let cache = AccessTokenCache::new(60, 100);
        put(&cache, cache.ticket(100), "t", "keep-me", 1000);
        for grant in 0..=MAX_REVOCATION_MARKS {
            cache.revoke_grant(&format!("g{grant}"), 100);
        }
        assert_eq!(cached(&cache, "t", 100), None, "safe, not precise");
        put(&cache, cache.ticket(100), "t", "keep-me", 1000);
        assert_eq!(cached(&cache, "t", 100).as_deref(), Some("keep-me"));
    }

    #[test]
    fn old_marks_are_dropped_before_the_floor_is_raised() {
        let cache = AccessTokenCache::new(5, 100);
        for grant in 0..MAX_REVOCATION_MARKS {
            cache.revoke_grant(&format!("g{grant}"), 100);
        }
        put(&cache, cache.ticket(200), "t", "h", 1000);
        // Every earlier mark is older than the TTL, so this one fits without a floor.
        cache.revoke_grant("another", 200);
        assert_eq!(cached(&cache, "t", 200).as_deref(), Some("h"));
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache = AccessTokenCache::new(60, 10);
        for n in 0..100 {
            put(&cache, cache.ticket(100), &format!("t{n}"), "g", 1000);
        }
        assert!(cache.entries.len() <= 10, "{}", cache.entries.len());
    }
}
