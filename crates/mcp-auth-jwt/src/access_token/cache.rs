//! Verified access tokens, remembered until they expire, in a bounded cache (quick_cache, the
//! workspace's cache: CLOCK-Pro eviction), so that a client's second request costs a SHA-256
//! of the token's signature, a lookup and a comparison instead of a signature check.
//!
//! **Keyed by the signature's hash, confirmed by the signed part.** A JWS compact token is
//! `header.payload.signature`. Its credential is the whole: the header and payload are claims
//! anyone holding the token can read (and the remembered [`AccessTokenInfo`] restates most of
//! them), and they prove nothing without a signature that the issuer's key verifies. So an
//! entry is found by the SHA-256 of the signature and holds the signed part, `header.payload`,
//! which a hit must equal byte for byte: a hit is exactly a token verified before, as with a
//! hash of the whole token, but a ~450-byte ES256 token costs a hash of its 86-byte
//! signature, two SHA-256 blocks instead of eight (hashing the whole token had been the
//! largest cost of a cached JWT's trip through the bearer layer). The signature itself is
//! never kept, so no entry is a credential.

use std::sync::Arc;

use mcp_auth_types::{AccessToken, AccessTokenInfo, AccessTokenSecret};
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::limits::{MAX_ACCESS_TOKEN_BYTES, MAX_VERIFIED_TOKEN_AGE};

/// What a verified token granted, by the SHA-256 of its signature (see the module's
/// documentation: the token itself is not kept, and a hit rebuilds the [`AccessToken`] around
/// the token presented).
pub(super) struct VerifiedTokens {
    entries: Option<Cache<[u8; 32], Entry>>,
}

#[derive(Clone)]
struct Entry {
    /// `header.payload`: claims, not a credential without the signature. Shared, because the
    /// cache hands out a clone of the entry on every hit.
    signed: Arc<str>,
    info: Arc<AccessTokenInfo>,
    expires_at: i64,
}

/// The token's key (the SHA-256 of its signature) and its signed part, or `None` for what
/// cannot be a verified token: no `.`, an empty signature, or longer than
/// [`MAX_ACCESS_TOKEN_BYTES`] (which the verifier refuses unread).
fn split(token: &AccessTokenSecret) -> Option<([u8; 32], &str)> {
    let token = token.expose_secret();
    if token.len() > MAX_ACCESS_TOKEN_BYTES {
        return None;
    }
    let (signed, signature) = token.rsplit_once('.')?;
    if signature.is_empty() {
        return None;
    }
    Some((Sha256::digest(signature.as_bytes()).into(), signed))
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
        let (key, signed) = split(token)?;
        let entry = entries.get(&key)?;
        // Not a secret comparison: both sides are the signed part, claims rather than a
        // credential, and the lookup that led here already needed the signature.
        if *entry.signed != *signed {
            return None;
        }
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
        let Some((key, signed)) = split(token) else {
            return;
        };
        if expires_at <= now {
            return;
        }
        entries.insert(
            key,
            Entry {
                signed: Arc::from(signed),
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

    /// A token shaped like a JWS, `name` its signature.
    fn token(name: &str, expires_at: i64) -> (AccessTokenSecret, AccessToken) {
        let secret = AccessTokenSecret::new(format!("header.payload.{name}"));
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
        assert_eq!(hit.token.expose_secret(), "header.payload.a");
        assert_eq!(hit.client_id, "client");
        assert!(cache.get(&a, 100).is_none(), "expired");
        assert!(
            cache
                .get(&AccessTokenSecret::new("header.payload.unknown"), 0)
                .is_none()
        );
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
    fn a_hit_is_exactly_the_token_verified_before() {
        let cache = VerifiedTokens::new(100);
        let (a, access) = token("sig", 100);
        cache.insert(&a, &access, 0);
        // The same signature under another header or payload (a forgery that a key lookup by
        // the signature alone would let through) is a miss, and does not evict the original.
        for other in [
            "header.payload2.sig",
            "header2.payload.sig",
            "header.payload.sig.sig",
            "payload.sig",
            ".sig",
            "sig",
            "header.payload.si",
            "header.payload.sig2",
        ] {
            assert!(
                cache.get(&AccessTokenSecret::new(other), 1).is_none(),
                "{other}"
            );
        }
        assert!(cache.get(&a, 1).is_some());
    }

    #[test]
    fn what_cannot_be_a_jws_is_never_remembered() {
        let cache = VerifiedTokens::new(100);
        for shape in [
            "opaque",
            "header.payload.",
            &"a.b.c".repeat(MAX_ACCESS_TOKEN_BYTES),
        ] {
            let raw = AccessTokenSecret::new(shape);
            let mut access = AccessToken::new(raw.clone(), "client", vec![]);
            access.expires_at = Some(100);
            cache.insert(&raw, &access, 0);
            assert!(cache.get(&raw, 1).is_none());
        }
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_zero_capacity_remembers_nothing() {
        let cache = VerifiedTokens::new(0);
        let (a, access) = token("a", 100);
        cache.insert(&a, &access, 0);
        assert!(cache.get(&a, 0).is_none());
    }
}
