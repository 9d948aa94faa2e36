//! Verified access tokens, remembered by hash until they expire: a bounded map, so that a
//! client's second request costs a SHA-256 and a lookup instead of a signature check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use mcp_auth_types::{AccessToken, AccessTokenInfo, AccessTokenSecret};
use sha2::{Digest, Sha256};

/// What a verified token granted, by the SHA-256 of the token (the token itself is not kept:
/// a hit rebuilds the [`AccessToken`] around the token presented).
pub(super) struct VerifiedTokens {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    info: Arc<AccessTokenInfo>,
    expires_at: i64,
}

fn key(token: &AccessTokenSecret) -> [u8; 32] {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

impl VerifiedTokens {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // Every critical section leaves the map consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token's grant if it was verified and has not expired at `now`.
    pub(super) fn get(&self, token: &AccessTokenSecret, now: i64) -> Option<AccessToken> {
        if self.capacity == 0 {
            return None;
        }
        let key = key(token);
        let mut entries = self.entries();
        let entry = entries.get(&key)?;
        if entry.expires_at <= now {
            entries.remove(&key);
            return None;
        }
        Some(AccessToken::with_info(
            token.clone(),
            Arc::clone(&entry.info),
        ))
    }

    /// Remembers a verified token until its `exp`. When the map is full, expired entries are
    /// dropped first; if it is still full, the token is not remembered (its next request
    /// verifies the signature again) — the bound holds whatever the traffic.
    pub(super) fn insert(&self, token: &AccessTokenSecret, access: &AccessToken, now: i64) {
        let Some(expires_at) = access.expires_at else {
            return;
        };
        if self.capacity == 0 || expires_at <= now {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= self.capacity {
                return;
            }
        }
        entries.insert(
            key(token),
            Entry {
                info: Arc::clone(access.info()),
                expires_at,
            },
        );
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries().len()
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
        let cache = VerifiedTokens::new(2);
        let (a, access_a) = token("a", 100);
        let (b, access_b) = token("b", 200);
        let (c, access_c) = token("c", 300);
        cache.insert(&a, &access_a, 0);
        cache.insert(&b, &access_b, 0);
        cache.insert(&c, &access_c, 0);
        assert_eq!(cache.len(), 2, "full: c is not remembered");
        assert!(cache.get(&c, 0).is_none());
        let hit = cache.get(&a, 99).expect("a until its exp");
        assert_eq!(hit.token.expose_secret(), "a");
        assert_eq!(hit.client_id, "client");
        assert!(cache.get(&a, 100).is_none(), "expired");
        // An expired entry makes room.
        cache.insert(&c, &access_c, 150);
        assert!(cache.get(&c, 150).is_some());
        assert!(cache.get(&AccessTokenSecret::new("unknown"), 0).is_none());
    }

    #[test]
    fn a_zero_capacity_remembers_nothing() {
        let cache = VerifiedTokens::new(0);
        let (a, access) = token("a", 100);
        cache.insert(&a, &access, 0);
        assert!(cache.get(&a, 0).is_none());
    }
}
