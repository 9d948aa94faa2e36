//! Introspection answers by token hash: active ones until the token's `exp` or the TTL,
//! inactive ones for a few seconds, in a bounded cache.

use std::sync::Arc;

use mcp_auth_types::{AccessToken, AccessTokenInfo, AccessTokenSecret};
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::limits::{INACTIVE_TTL, MAX_CACHED_INACTIVE_ANSWERS};

/// What was answered about a token, until when.
#[derive(Clone)]
struct Entry {
    /// `None`: inactive (or not for this resource).
    grant: Option<Arc<AccessTokenInfo>>,
    until: i64,
}

pub(crate) struct Answers {
    entries: Option<Cache<[u8; 32], Entry>>,
    /// Inactive answers, apart (see [`MAX_CACHED_INACTIVE_ANSWERS`]).
    inactive: Option<Cache<[u8; 32], Entry>>,
    active_ttl: i64,
}

fn key(token: &AccessTokenSecret) -> [u8; 32] {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

impl Answers {
    pub(crate) fn new(capacity: usize, active_ttl: i64) -> Self {
        let on = capacity > 0 && active_ttl > 0;
        Self {
            entries: on.then(|| Cache::new(capacity)),
            inactive: on.then(|| Cache::new(MAX_CACHED_INACTIVE_ANSWERS.min(capacity))),
            active_ttl,
        }
    }

    /// The remembered answer: `Some(Some(_))` active, `Some(None)` inactive, `None` unknown
    /// or expired.
    pub(crate) fn get(&self, token: &AccessTokenSecret, now: i64) -> Option<Option<AccessToken>> {
        let key = key(token);
        for cache in [&self.entries, &self.inactive].into_iter().flatten() {
            let Some(entry) = cache.get(&key) else {
                continue;
            };
            if entry.until <= now {
                cache.remove(&key);
                continue;
            }
            return Some(
                entry
                    .grant
                    .map(|info| AccessToken::with_info(token.clone(), info)),
            );
        }
        None
    }

    /// Remembers an active answer until the token's `exp` or the TTL, whichever is first.
    pub(crate) fn active(&self, token: &AccessTokenSecret, access: &AccessToken, now: i64) {
        let until = access
            .expires_at
            .map_or(now + self.active_ttl, |exp| exp.min(now + self.active_ttl));
        if let Some(inactive) = &self.inactive {
            inactive.remove(&key(token));
        }
        self.put(
            &self.entries,
            token,
            Some(Arc::clone(access.info())),
            until,
            now,
        );
    }

    /// Remembers an inactive answer for [`INACTIVE_TTL`] seconds.
    pub(crate) fn inactive(&self, token: &AccessTokenSecret, now: i64) {
        if let Some(entries) = &self.entries {
            entries.remove(&key(token));
        }
        self.put(&self.inactive, token, None, now + INACTIVE_TTL, now);
    }

    fn put(
        &self,
        cache: &Option<Cache<[u8; 32], Entry>>,
        token: &AccessTokenSecret,
        grant: Option<Arc<AccessTokenInfo>>,
        until: i64,
        now: i64,
    ) {
        if let Some(cache) = cache
            && until > now
        {
            cache.insert(key(token), Entry { grant, until });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_answers_last_until_exp_or_the_ttl_and_inactive_ones_a_few_seconds() {
        let answers = Answers::new(100, 60);
        let token = AccessTokenSecret::new("t");
        let mut access = AccessToken::new(token.clone(), "app", Vec::new());
        access.expires_at = Some(1030);
        answers.active(&token, &access, 1000);
        assert!(matches!(answers.get(&token, 1029), Some(Some(_))));
        assert!(
            answers.get(&token, 1030).is_none(),
            "the token's exp comes first"
        );
        access.expires_at = Some(5000);
        answers.active(&token, &access, 1000);
        assert!(answers.get(&token, 1059).is_some());
        assert!(answers.get(&token, 1060).is_none(), "the TTL comes first");
        answers.inactive(&token, 2000);
        assert!(matches!(
            answers.get(&token, 2000 + INACTIVE_TTL - 1),
            Some(None)
        ));
        assert!(answers.get(&token, 2000 + INACTIVE_TTL).is_none());
        // A flood of inactive answers does not evict an active one.
        access.expires_at = Some(9000);
        answers.active(&token, &access, 3000);
        for i in 0..5000 {
            answers.inactive(&AccessTokenSecret::new(format!("bogus-{i}")), 3000);
        }
        assert!(matches!(answers.get(&token, 3001), Some(Some(_))));
        let off = Answers::new(100, 0);
        off.inactive(&token, 0);
        assert!(off.get(&token, 0).is_none(), "a TTL of 0 caches nothing");
    }
}
