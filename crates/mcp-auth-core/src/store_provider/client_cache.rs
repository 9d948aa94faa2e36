//! A small in-process cache of client records.
//!
//! A token request reads its client twice (lookup, then secret check); the cache makes that one
//! storage round trip. Only hits are cached, so a newly registered client is visible at once on
//! every instance; a changed or deleted client may be served for `ttl` seconds.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::storage::ClientRecord;

/// Entries kept at most; the cache is cleared when it fills, which is cheap and bounds memory
/// whatever the number of clients.
const CAPACITY: usize = 4096;

#[derive(Debug)]
pub(super) struct ClientCache {
    ttl: i64,
    entries: Mutex<HashMap<String, (ClientRecord, i64)>>,
}

impl ClientCache {
    pub(super) fn new(ttl: u64) -> Self {
        Self {
            ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn get(&self, client_id: &str, now: i64) -> Option<ClientRecord> {
        if self.ttl == 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(client_id)
            .filter(|(_, fetched_at)| now - fetched_at < self.ttl)
            .map(|(record, _)| record.clone())
    }

    pub(super) fn put(&self, record: ClientRecord, now: i64) {
        if self.ttl == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(record.info.client_id.clone(), (record, now));
    }
}
