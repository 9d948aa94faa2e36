//! The resolver's cache of outcomes: a valid document's client for its lifetime, the refusal of
//! an invalid document for the fetcher's failure TTL. Bounded in entries and bytes with real
//! eviction (quick_cache).
//!
//! Fetch failures are not kept here: the fetcher remembers them itself (per URL and per host),
//! so a failing client id costs no request until they expire. An invalid document was fetched
//! successfully, so only this cache can stop a loop of requests naming it from refetching it.

use std::sync::Arc;

use mcp_auth_types::OAuthClientInformationFull;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// What resolving a client id came to.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// A valid document, as a client.
    Valid(Arc<OAuthClientInformationFull>),
    /// An invalid document: why it was refused.
    Invalid(Arc<str>),
}

#[derive(Clone)]
struct Entry {
    outcome: Outcome,
    /// Resolver clock, seconds.
    expires: i64,
    /// Precomputed, as quick_cache asks of a weighter.
    weight: u64,
}

#[derive(Clone, Copy)]
struct EntryWeight;

impl Weighter<String, Entry> for EntryWeight {
    fn weight(&self, _client_id: &String, entry: &Entry) -> u64 {
        entry.weight
    }
}

/// See the module documentation.
pub(crate) struct DocumentCache {
    /// `None` when either bound is zero: nothing is cached.
    entries: Option<Cache<String, Entry, EntryWeight>>,
    /// The least any entry is charged, so that `max_bytes / floor` ≤ `max_entries`.
    floor: u64,
}

impl DocumentCache {
    /// A cache of at most `max_entries` outcomes and about `max_bytes` of memory.
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        if max_entries == 0 || max_bytes == 0 {
            return Self {
                entries: None,
                floor: 1,
            };
        }
        let floor = (max_bytes / max_entries).max(1) as u64;
        Self {
            entries: Some(Cache::with_weighter(
                max_entries,
                max_bytes as u64,
                EntryWeight,
            )),
            floor,
        }
    }

    /// The live outcome cached for `client_id` at `now`, if any.
    pub(crate) fn get(&self, client_id: &str, now: i64) -> Option<Outcome> {
        let entries = self.entries.as_ref()?;
        let entry = entries.get(client_id)?;
        if now < entry.expires {
            return Some(entry.outcome);
        }
        entries.remove(client_id);
        None
    }

    /// Caches `outcome` for `client_id` for `lifetime` seconds from `now`; `document_bytes` is
    /// the size of the fetched document, from which the entry's memory is estimated (decoded
    /// strings and structure, about twice the JSON, plus the record and the key).
    pub(crate) fn insert(
        &self,
        client_id: &str,
        outcome: Outcome,
        document_bytes: usize,
        now: i64,
        lifetime: u64,
    ) {
        let Some(entries) = &self.entries else {
            return;
        };
        if lifetime == 0 {
            return;
        }
        let estimate = match &outcome {
            Outcome::Valid(_) => document_bytes.saturating_mul(2),
            Outcome::Invalid(reason) => reason.len(),
        }
        .saturating_add(client_id.len())
        .saturating_add(size_of::<Entry>() + size_of::<OAuthClientInformationFull>());
        let entry = Entry {
            outcome,
            expires: now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX)),
            weight: (estimate as u64).max(self.floor),
        };
        entries.insert(client_id.to_owned(), entry);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
    }

    #[cfg(test)]
    pub(crate) fn weight(&self) -> u64 {
        self.entries.as_ref().map_or(0, Cache::weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(reason: &str) -> Outcome {
        Outcome::Invalid(Arc::from(reason))
    }

    #[test]
    fn entries_live_for_their_lifetime_only() {
        let cache = DocumentCache::new(16, 1 << 20);
        cache.insert("https://a.test/c", invalid("no"), 10, 100, 30);
        assert!(cache.get("https://a.test/c", 129).is_some());
        assert!(cache.get("https://a.test/c", 130).is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped when found");
        cache.insert("https://a.test/d", invalid("no"), 10, 100, 0);
        assert!(cache.get("https://a.test/d", 100).is_none(), "lifetime 0");
    }

    #[test]
    fn the_cache_stays_within_its_entries_and_bytes() {
        // 64 entries, 64 KiB: the floor is 1 KiB an entry.
        let cache = DocumentCache::new(64, 64 * 1024);
        for i in 0..1000 {
            cache.insert(&format!("https://a.test/{i}"), invalid("x"), 10, 0, 60);
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        assert!(cache.weight() <= 64 * 1024, "{}", cache.weight());
        // 5 KiB documents are charged their size: fewer entries, the same memory.
        let cache = DocumentCache::new(64, 64 * 1024);
        for i in 0..1000 {
            cache.insert(&format!("https://a.test/{i}"), invalid("x"), 0, 0, 60);
            cache.insert(
                &format!("https://b.test/{i}"),
                invalid(&"r".repeat(5 * 1024)),
                0,
                0,
                60,
            );
        }
        assert!(cache.weight() <= 64 * 1024, "{}", cache.weight());
        assert!(cache.len() < 64, "{}", cache.len());
    }

    #[test]
    fn zero_bounds_cache_nothing() {
        for (entries, bytes) in [(0, 1 << 20), (16, 0)] {
            let cache = DocumentCache::new(entries, bytes);
            cache.insert("https://a.test/c", invalid("no"), 10, 0, 60);
            assert!(cache.get("https://a.test/c", 1).is_none());
        }
    }
}
