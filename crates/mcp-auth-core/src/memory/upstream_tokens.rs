//! [`UpstreamTokenStore`] for [`MemoryStore`]: one record per grant in a map, swept by expiry
//! like every other record (so it counts towards the opportunistic sweep's bound).

use async_trait::async_trait;

use super::{MemoryStore, State, compact};
use crate::error::StorageError;
use crate::storage::{UpstreamTokenRecord, UpstreamTokenStore};

impl State {
    pub(super) fn sweep_upstream_tokens(&mut self, now: i64) -> u64 {
        let before = self.upstream_tokens.len();
        self.upstream_tokens
            .retain(|_, record| record.expires_at > now);
        compact(&mut self.upstream_tokens);
        (before - self.upstream_tokens.len()) as u64
    }
}

#[async_trait]
impl UpstreamTokenStore for MemoryStore {
    async fn put_upstream_tokens(&self, record: &UpstreamTokenRecord) -> Result<(), StorageError> {
        let mut state = self.state();
        let replaced = state
            .upstream_tokens
            .insert(record.grant_id.clone(), record.clone());
        // Only a new record grows the store; a replacement keeps its size.
        if replaced.is_none() {
            state.note_insert();
        }
        Ok(())
    }

    async fn get_upstream_tokens(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Option<UpstreamTokenRecord>, StorageError> {
        let mut state = self.state();
        state.see(now);
        Ok(state
            .upstream_tokens
            .get(grant_id)
            .filter(|record| record.expires_at > now)
            .cloned())
    }

    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StorageError> {
        self.state().upstream_tokens.remove(grant_id);
        Ok(())
    }

    async fn purge_expired_upstream_tokens(&self, now: i64) -> Result<u64, StorageError> {
        Ok(self.state().sweep_upstream_tokens(now))
    }
}
