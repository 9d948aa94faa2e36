//! Verified access tokens, remembered by hash until they expire, in a bounded cache
//! (quick_cache, the workspace's cache: CLOCK-Pro eviction), so that a client's second request
//! costs a SHA-256 and a lookup instead of a signature check.

use std::sync::Arc;

use mcp_auth_types::{AccessToken, AccessTokenInfo, AccessTokenSecret};
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::limits::MAX_VERIFIED_TOKEN_AGE;

/// What a verified token granted, by the SHA-256 of the token (the token itself is not kept:
/// a hit rebuilds the [`AccessToken`] around the token presented).
pub(super) struct VerifiedTokens {
    entries: Option<Cache<[u8; 32], Entry>>,
}

#[derive(Clone)]
struct Entry {
    info: Arc<AccessTokenInfo>,
    expires_at: i64,
}

fn key(token: &AccessTokenSecret) -> [u8; 32] {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens (0: none).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: (capacity > 0).then(|| Cache::new(capacity)),
        }
    }

    /// The token's grant if it was verified and has not expired at `now`.
    pub(super) fn get(&self, token: &AccessTokenSecret, now: i64) -> Option<AccessToken> {
        let entries = self.entries.as_ref()?;
        let key = key(token);
        let entry = entries.get(&key)?;
        if entry.expires_at <= now {
            entries.remove(&key);
            return None;
        }
        Some(AccessToken::with_info(token.clone(), entry.info))
    }

    /// Remembers a verified token until its `exp` but at most [`MAX_VERIFIED_TOKEN_AGE`];
    /// beyond the capacity the cache evicts the entries least likely to be used again.
    pub(super) fn insert(&self, token: &AccessTokenSecret, access: &AccessToken, now: i64) {
        let (Some(entries), Some(expires_at)) = (self.entries.as_ref(), access.expires_at) else {
            return;
        };
        if expires_at <= now {
            return;
        }
        entries.insert(
            key(token),
            Entry {
                info: Arc::clone(access.info()),
                expires_at: expires_at.min(now.saturating_add(MAX_VERIFIED_TOKEN_AGE)),
            },
        );
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, expires_at: i64) -> (AccessTokenSecret, AccessToken) {
        let secret = AccessTokenSecret::new(name);
        let mut access = AccessToken::new(secret.clone(), "client", vec!["read".into()]);
        access.expires_at = Some(expires_at);
        (secret, access)
    }

    #[test]
    fn tokens_are_remembered_until_exp_and_never_beyond_the_capacity() {
        let cache = VerifiedTokens::new(100);
        let (a, access_a) = token("a", 100);
        cache.insert(&a, &access_a, 0);
        let hit = cache.get(&a, 99).expect("a until its exp");
        assert_eq!(hit.token.expose_secret(), "a");
        assert_eq!(hit.client_id, "client");
        assert!(cache.get(&a, 100).is_none(), "expired");
        assert!(cache.get(&AccessTokenSecret::new("unknown"), 0).is_none());
        let (expired, access) = token("expired", 50);
        cache.insert(&expired, &access, 50);
        assert!(
            cache.get(&expired, 0).is_none(),
            "an expired token is not remembered"
        );
        for i in 0..1000 {
            let (t, access) = token(&format!("t{i}"), 1000);
            cache.insert(&t, &access, 0);
        }
        assert!(cache.len() <= 110, "bounded: {}", cache.len());
        let (long, access) = token("long-lived", 1_000_000);
        cache.insert(&long, &access, 0);
        assert!(cache.get(&long, MAX_VERIFIED_TOKEN_AGE - 1).is_some());
        assert!(
            cache.get(&long, MAX_VERIFIED_TOKEN_AGE).is_none(),
            "checked again after the maximum age, whatever its exp"
        );
    }

    #[test]
    fn a_zero_capacity_remembers_nothing() {
        let cache = VerifiedTokens::new(0);
        let (a, access) = token("a", 100);
        cache.insert(&a, &access, 0);
        assert!(cache.get(&a, 0).is_none());
    }
}
