//! A bounded, short-lived in-process cache of access-token hashes that storage did not find.
//!
//! A bearer token nobody issued costs a storage read on SQL or Redis; a client retrying with a
//! dead token, or a flood of requests replaying one made-up token, would cost one read per
//! request. This cache remembers such misses for a few seconds, so the same unknown token is
//! answered from memory (and without suspending the request: the bearer layer's immediate
//! path answers it). It cannot help against a *fresh* random token per request — nothing can
//! tell one from a real token without asking storage — which is what rate limits are for.
//!
//! What it must never do is make a real token fail. A token cannot be presented before it
//! is issued, since its 256 bits are random and only its issuer knows them until the response
//! carries them. So a hash can only be in this cache before its issuance if someone guessed
//! it, and issuance is the only way an unknown hash becomes known (expiry and revocation only
//! ever make tokens unknown). Hence:
//!
//! - **Issuance through this provider forgets the hash at once.** Every place the provider
//!   stores a new access token calls [`UnknownTokenCache::issued`] after storage has
//!   committed, before the token leaves in the response. A read that began before that
//!   commit and missed could otherwise still insert the hash afterwards; issuance bumps a
//!   counter that such a read took before reading, and the read drops its entry when the
//!   counter moved (the same ticket scheme as the access-token cache's revocations). So within
//!   one instance the guarantee holds even against a lucky guess.
//! - **Another instance's issuance** cannot reach this cache, and needs not: for this
//!   instance to hold a miss of a hash another instance is about to issue, someone must have
//!   presented that hash before it existed — a guess with odds of 2^-256. Stores that several
//!   instances share (SQL, Redis) show each instance's commits to the others at once, so
//!   once the token exists, no instance can read a fresh miss of it.
//!
//! Entries live [`ttl`](UnknownTokenCache::new) seconds on the provider's clock; at most
//! [`UNKNOWN_TOKEN_CACHE_ENTRIES`](crate::limits::UNKNOWN_TOKEN_CACHE_ENTRIES) are held, the
//! least useful evicted first. Keys are SHA-256 digests of presented tokens, never tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;

use super::StoreProvider;
use crate::error::StorageError;
use crate::secrets::SecretHash;
use crate::storage::{AccessTokenRecord, RefreshTokenRecord, SharedAccessTokenRecord, Storage};

/// See the module documentation.
pub(super) struct UnknownTokenCache {
    ttl: i64,
    /// Per hash: when storage's read of it began (provider clock, seconds).
    entries: Cache<[u8; 32], i64>,
    /// Issuances so far: a miss read before one of them is not trusted.
    issued: AtomicU64,
}

/// A ticket for one storage read: take it before reading, hand it back with a miss.
#[derive(Debug, Clone, Copy)]
pub(super) struct MissTicket {
    issued: u64,
    read_at: i64,
}

impl UnknownTokenCache {
    /// A cache keeping misses for `ttl` seconds, at most `capacity` of them.
    pub(super) fn new(ttl: u64, capacity: usize) -> Self {
        Self {
            ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
            entries: Cache::new(capacity.max(1)),
            issued: AtomicU64::new(0),
        }
    }

    /// Whether storage recently said it holds no live token of `hash`.
    pub(super) fn is_unknown(&self, hash: &SecretHash, now: i64) -> bool {
        let Some(read_at) = self.entries.get(hash.as_bytes()) else {
            return false;
        };
        // A clock that went back counts as expired too: the entry is dropped, never trusted
        // for longer.
        if (0..self.ttl).contains(&(now - read_at)) {
            return true;
        }
        self.entries.remove(hash.as_bytes());
        false
    }

    /// Starts a storage read at `now`.
    pub(super) fn ticket(&self, now: i64) -> MissTicket {
        MissTicket {
            // Pairs with the release in `issued`: an issuance counted after this load
            // committed after the read began.
            issued: self.issued.load(Ordering::Acquire),
            read_at: now,
        }
    }

    /// Remembers that the read begun with `ticket` did not find `hash` — unless a token was
    /// issued meanwhile, which might have been this one.
    pub(super) fn miss(&self, ticket: MissTicket, hash: &SecretHash) {
        if self.issued.load(Ordering::Acquire) != ticket.issued {
            return;
        }
        self.entries.insert(*hash.as_bytes(), ticket.read_at);
        // An issuance between the check above and the insert has already run its `remove`,
        // which the insert undid: take the entry out again.
        if self.issued.load(Ordering::Acquire) != ticket.issued {
            self.entries.remove(hash.as_bytes());
        }
    }

    /// Forgets `hash`, which storage has just committed as a new access token. Call it before
    /// the token is handed out.
    pub(super) fn issued(&self, hash: &SecretHash) {
        self.issued.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(hash.as_bytes());
    }
}

/// The provider's side: every lookup and issuance passes through these.
impl<S: Storage> StoreProvider<S> {
    /// `Some(Ok(None))` when `hash` was recently found unknown.
    pub(super) fn known_unknown(
        &self,
        hash: &SecretHash,
        now: i64,
    ) -> Option<Result<Option<SharedAccessTokenRecord>, StorageError>> {
        let unknown = self.unknown_tokens.as_ref()?;
        let known = unknown.is_unknown(hash, now);
        if known {
            metrics::counter!("mcp_auth_unknown_token_cache_hits_total").increment(1);
        }
        known.then_some(Ok(None))
    }

    /// Stores the tokens of a new issuance, then forgets their access token's hash from the
    /// unknown-token cache before the token can leave in a response. Every issuance goes
    /// through here.
    pub(super) async fn store_new_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError> {
        let stored = self.storage.issue_tokens(access, refresh).await;
        self.forget_unknown(&access.token_hash);
        stored
    }

    /// Removes `hash` from the unknown-token cache: it has just been stored as an access token.
    pub(super) fn forget_unknown(&self, hash: &SecretHash) {
        if let Some(unknown) = &self.unknown_tokens {
            unknown.issued(hash);
        }
    }
}

impl std::fmt::Debug for UnknownTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnknownTokenCache")
            .field("ttl", &self.ttl)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(token: &str) -> SecretHash {
        SecretHash::of(token)
    }

    fn miss(cache: &UnknownTokenCache, token: &str, now: i64) {
        cache.miss(cache.ticket(now), &hash(token));
    }

    #[test]
    fn a_miss_is_remembered_for_the_ttl_and_no_longer() {
        let cache = UnknownTokenCache::new(5, 100);
        assert!(!cache.is_unknown(&hash("t"), 100), "nothing read yet");
        miss(&cache, "t", 100);
        assert!(cache.is_unknown(&hash("t"), 100));
        assert!(cache.is_unknown(&hash("t"), 104));
        assert!(!cache.is_unknown(&hash("t"), 105), "the TTL has passed");
        assert!(!cache.is_unknown(&hash("t"), 101), "and the entry is gone");
        assert!(!cache.is_unknown(&hash("other"), 100));
    }

    #[test]
    fn a_clock_that_went_back_does_not_extend_an_entry() {
        let cache = UnknownTokenCache::new(5, 100);
        miss(&cache, "t", 100);
        assert!(!cache.is_unknown(&hash("t"), 99));
    }

    #[test]
    fn issuance_forgets_the_hash_at_once() {
        let cache = UnknownTokenCache::new(60, 100);
        miss(&cache, "t", 100);
        miss(&cache, "u", 100);
        cache.issued(&hash("t"));
        assert!(!cache.is_unknown(&hash("t"), 100));
        assert!(cache.is_unknown(&hash("u"), 100), "other misses stay");
    }

    #[test]
    fn a_miss_read_before_an_issuance_is_not_remembered() {
        let cache = UnknownTokenCache::new(60, 100);
        // The read began, the token was issued and committed, then the read's miss arrived.
        let ticket = cache.ticket(100);
        cache.issued(&hash("t"));
        cache.miss(ticket, &hash("t"));
        assert!(!cache.is_unknown(&hash("t"), 100));
        // A read begun after the issuance is remembered as usual.
        miss(&cache, "t", 100);
        assert!(cache.is_unknown(&hash("t"), 100));
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache = UnknownTokenCache::new(60, 10);
        for n in 0..1000 {
            miss(&cache, &format!("t{n}"), 100);
        }
        assert!(cache.entries.len() <= 10, "{}", cache.entries.len());
    }
}
