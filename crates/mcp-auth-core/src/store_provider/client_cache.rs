//! A small in-process cache of client records, bounded in entries and in bytes.
//!
//! A token request reads its client twice (lookup, then secret check); the cache makes that one
//! storage round trip. Only hits are cached, so a newly registered client is visible at once on
//! every instance; a changed or deleted client may be served for `ttl` seconds.
//!
//! Records differ in size by three orders of magnitude (a registration may carry many redirect
//! URIs, contacts and an inline key set), so a count alone does not bound memory: 60 large
//! registrations once grew a server by 600 MiB. Each entry therefore weighs its record's
//! serialised size, at least [`MIN_CLIENT_CACHE_ENTRY_WEIGHT`] bytes, and the cache keeps at
//! most [`MAX_CLIENT_CACHE_BYTES`] of weight, evicting the least useful entries (quick_cache's
//! CLOCK-Pro) as new ones arrive. The floor on the weight also bounds the number of entries to
//! [`MAX_CLIENT_CACHE_ENTRIES`].

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::limits::{
    MAX_CLIENT_CACHE_BYTES, MAX_CLIENT_CACHE_ENTRIES, MIN_CLIENT_CACHE_ENTRY_WEIGHT,
};
use crate::storage::ClientRecord;

/// A cached record, its weight computed once when it is cached.
struct Entry {
    record: ClientRecord,
    fetched_at: i64,
    weight: u64,
}

/// Weighs an entry by the weight it was given when cached (a weight must never change).
#[derive(Debug, Clone, Copy)]
struct ByWeight;

impl Weighter<String, Arc<Entry>> for ByWeight {
    fn weight(&self, _client_id: &String, entry: &Arc<Entry>) -> u64 {
        entry.weight
    }
}

/// Counts the bytes written to it: the size of a serialisation without building it.
struct ByteCount(u64);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An entry's weight: its key and its record as stored (JSON), at least the floor. A record
/// that cannot be serialised weighs the whole budget, so it is never cached.
fn weight_of(record: &ClientRecord) -> u64 {
    let mut count = ByteCount(record.info.client_id.len() as u64);
    match serde_json::to_writer(&mut count, record) {
        Ok(()) => count.0.max(MIN_CLIENT_CACHE_ENTRY_WEIGHT),
        Err(_) => MAX_CLIENT_CACHE_BYTES,
    }
}

pub(super) struct ClientCache {
    ttl: i64,
    entries: Cache<String, Arc<Entry>, ByWeight>,
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCache")
            .field("ttl", &self.ttl)
            .field("entries", &self.entries.len())
            .field("weight", &self.entries.weight())
            .finish()
    }
}

impl ClientCache {
    pub(super) fn new(ttl: u64) -> Self {
        Self {
            ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
            entries: Cache::with_weighter(
                MAX_CLIENT_CACHE_ENTRIES,
                MAX_CLIENT_CACHE_BYTES,
                ByWeight,
            ),
        }
    }

    pub(super) fn get(&self, client_id: &str, now: i64) -> Option<ClientRecord> {
        if self.ttl == 0 {
            return None;
        }
        self.entries
            .get(client_id)
            .filter(|entry| now - entry.fetched_at < self.ttl)
            .map(|entry| entry.record.clone())
    }

    /// Forgets `client_id` (it was just deleted).
    pub(super) fn remove(&self, client_id: &str) {
        self.entries.remove(client_id);
    }

    pub(super) fn put(&self, record: ClientRecord, now: i64) {
        if self.ttl == 0 {
            return;
        }
        let weight = weight_of(&record);
        let client_id = record.info.client_id.clone();
        self.entries.insert(
            client_id,
            Arc::new(Entry {
                record,
                fetched_at: now,
                weight,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use mcp_auth_types::{OAuthClientInformationFull, OAuthClientMetadata};

    use super::*;

    /// A client whose registration carries `padding` bytes of contacts.
    fn client(id: &str, padding: usize) -> ClientRecord {
        let mut metadata = OAuthClientMetadata::new(vec!["http://127.0.0.1/cb".to_owned()]);
        if padding > 0 {
            metadata.contacts = Some(vec!["x".repeat(padding)]);
        }
        ClientRecord::new(OAuthClientInformationFull::new(id, metadata))
    }

    #[test]
    fn cached_clients_are_served_until_their_ttl() {
        let cache = ClientCache::new(60);
        cache.put(client("a", 0), 100);
        assert!(cache.get("a", 159).is_some());
        assert!(cache.get("a", 160).is_none());
        assert!(cache.get("b", 100).is_none());
        let off = ClientCache::new(0);
        off.put(client("a", 0), 100);
        assert!(off.get("a", 100).is_none());
    }

    /// Large registrations past the byte budget evict earlier entries: the cache never holds
    /// more than its budget, however many are put.
    #[test]
    fn clients_past_the_byte_budget_are_evicted() {
        let cache = ClientCache::new(60);
        let large = 256 * 1024;
        let count = 60;
        for i in 0..count {
            cache.put(client(&format!("client-{i}"), large), 100);
            assert!(cache.entries.weight() <= MAX_CLIENT_CACHE_BYTES);
        }
        let resident = (0..count)
            .filter(|i| cache.get(&format!("client-{i}"), 100).is_some())
            .count();
        assert!(resident > 0, "some clients stay cached");
        let budget = usize::try_from(MAX_CLIENT_CACHE_BYTES).unwrap_or(usize::MAX);
        assert!(
            resident <= budget / large,
            "{resident} large clients cached"
        );
    }

    /// Small records weigh the floor, which bounds how many entries the cache keeps.
    #[test]
    fn small_clients_are_bounded_in_number() {
        let cache = ClientCache::new(60);
        for i in 0..(2 * MAX_CLIENT_CACHE_ENTRIES) {
            cache.put(client(&format!("c{i}"), 0), 100);
        }
        assert!(cache.entries.len() <= MAX_CLIENT_CACHE_ENTRIES);
        assert!(weight_of(&client("c", 0)) == MIN_CLIENT_CACHE_ENTRY_WEIGHT);
    }
}
