//! [`AdminStore`] for [`MemoryStore`]: users in a map, listings by walking the grant index.

use async_trait::async_trait;

use super::{CodeEntry, MemoryStore, RefreshEntry};
use crate::error::StorageError;
use crate::storage::{AdminStore, ClientRecord, GrantRecord, UserRecord};

#[async_trait]
impl AdminStore for MemoryStore {
    async fn insert_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        let mut state = self.state();
        if state.users.contains_key(&user.name) {
            return Ok(false);
        }
        state.users.insert(user.name.clone(), user.clone());
        Ok(true)
    }

    async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let mut state = self.state();
        Ok(match state.users.get_mut(name) {
            Some(user) => {
                password_hash.clone_into(&mut user.password_hash);
                true
            }
            None => false,
        })
    }

    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        Ok(self.state().users.get(name).cloned())
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StorageError> {
        Ok(self.state().users.values().cloned().collect())
    }

    async fn delete_user(&self, name: &str) -> Result<bool, StorageError> {
        Ok(self.state().users.remove(name).is_some())
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StorageError> {
        let state = self.state();
        let mut clients: Vec<ClientRecord> = state.clients.values().cloned().collect();
        clients.sort_by(|a, b| a.info.client_id.cmp(&b.info.client_id));
        Ok(clients)
    }

    async fn list_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<GrantRecord>, StorageError> {
        let state = self.state();
        let mut grants = Vec::new();
        for (grant_id, tokens) in &state.grants {
            if state.grant_revoked(grant_id) {
                continue;
            }
            let mut found: Option<GrantRecord> = None;
            let mut consider = |record: GrantRecord| match &mut found {
                Some(best) if best.expires_at >= record.expires_at => {}
                best => *best = Some(record),
            };
            for hash in &tokens.refresh {
                if let Some(RefreshEntry::Live(record)) = state.refresh.get(hash)
                    && record.expires_at > now
                {
                    consider(GrantRecord {
                        grant_id: grant_id.to_string(),
                        client_id: record.client_id.clone(),
                        subject: record.subject.clone(),
                        scopes: record.scopes.clone(),
                        resource: record.resource.clone(),
                        expires_at: record.expires_at,
                    });
                }
            }
            for hash in &tokens.access {
                if let Some(record) = state.access.get(hash)
                    && record.expires_at() > now
                {
                    let info = record.info();
                    consider(GrantRecord {
                        grant_id: grant_id.to_string(),
                        client_id: info.client_id.clone(),
                        subject: info.subject.clone(),
                        scopes: info.scopes.clone(),
                        resource: info.resource.clone(),
                        expires_at: record.expires_at(),
                    });
                }
            }
            if let Some(grant) = found.filter(|grant| {
                subject.is_none_or(|subject| grant.subject.as_deref() == Some(subject))
                    && client_id.is_none_or(|client_id| grant.client_id == client_id)
            }) {
                grants.push(grant);
            }
        }
        // A grant whose code is not yet redeemed has no tokens yet: it is live all the same.
        for entry in state.codes.values() {
            let CodeEntry::Live(code) = entry else {
                continue;
            };
            if code.expires_at <= now
                || state.grant_revoked(&code.grant_id)
                || grants.iter().any(|grant| grant.grant_id == code.grant_id)
                || subject.is_some_and(|subject| code.subject.as_deref() != Some(subject))
                || client_id.is_some_and(|client_id| code.client_id != client_id)
            {
                continue;
            }
            grants.push(GrantRecord::new(
                code.grant_id.clone(),
                code.client_id.clone(),
                code.subject.clone(),
                code.scopes.clone(),
                code.resource.clone(),
                code.expires_at,
            ));
        }
        grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        Ok(grants)
    }
}
