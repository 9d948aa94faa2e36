//! [`MemoryStore`]: the reference storage backend, in process memory.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::error::StorageError;
use crate::secrets::SecretHash;
use crate::storage::{
    AccessTokenRecord, AuthorizationRequestRecord, AuthorizationRequestStore, ClientRecord,
    ClientStore, CodeRecord, CodeStore, CodeTake, RefreshLookup, RefreshTokenRecord, ReplayStore,
    Rotation, SharedAccessTokenRecord, TokenStore,
};

/// How many inserts pass between opportunistic sweeps of expired records, so that a store that
/// is never purged explicitly still stays bounded by its live records.
const SWEEP_EVERY: u32 = 1024;

/// Storage in process memory: the reference implementation of every storage contract.
///
/// One lock guards all state, which makes every operation trivially atomic and linearizable;
/// no lock is held across an `.await`. It is a read-write lock so that the lookups every
/// protected request makes (access tokens, clients) do not queue behind one another. Data is lost on restart and not shared between
/// processes — use it for tests, development and single-process deployments that accept
/// re-authentication after a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<String, ClientRecord>,
    requests: HashMap<[u8; 32], AuthorizationRequestRecord>,
    codes: HashMap<[u8; 32], CodeEntry>,
    /// Access tokens in the shared form the immediate lookup hands out.
    access: HashMap<[u8; 32], SharedAccessTokenRecord>,
    refresh: HashMap<[u8; 32], RefreshEntry>,
    revoked_grants: HashMap<String, i64>,
    assertion_ids: HashMap<(String, String), i64>,
    inserts_since_sweep: u32,
    last_seen_now: i64,
}

#[derive(Debug)]
enum CodeEntry {
    Live(CodeRecord),
    Redeemed { grant_id: String, expires_at: i64 },
}

#[derive(Debug)]
struct RefreshEntry {
    record: RefreshTokenRecord,
    rotated: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> RwLockWriteGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied operation behind (every
        // operation mutates only after its checks), so a poisoned lock is safe to reuse.
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shared access for operations that only read.
    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many records the store holds besides clients: pending authorization requests,
    /// codes and redemption markers, access and refresh tokens (rotated ones included),
    /// revocation markers and assertion ids. For metrics and tests: with purges running it
    /// follows the live traffic, not the time the process has been up.
    pub fn stored_records(&self) -> usize {
        let state = self.read_state();
        state.requests.len()
            + state.codes.len()
            + state.access.len()
            + state.refresh.len()
            + state.revoked_grants.len()
            + state.assertion_ids.len()
    }

    /// The live access token with this hash at `now`: the one read both token lookups share.
    fn access_token_at(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Option<SharedAccessTokenRecord> {
        self.read_state()
            .access
            .get(token_hash.as_bytes())
            .filter(|t| t.expires_at() > now)
            .cloned()
    }
}

impl State {
    fn note_insert(&mut self) {
        self.inserts_since_sweep += 1;
        if self.inserts_since_sweep >= SWEEP_EVERY {
            self.inserts_since_sweep = 0;
            let now = self.last_seen_now;
            self.sweep(now);
        }
    }

    fn see(&mut self, now: i64) {
        self.last_seen_now = self.last_seen_now.max(now);
    }

    fn sweep(&mut self, now: i64) -> u64 {
        self.sweep_requests(now)
            + self.sweep_codes(now)
            + self.sweep_tokens(now)
            + self.sweep_assertions(now)
    }

    fn sweep_requests(&mut self, now: i64) -> u64 {
        let before = self.requests.len();
        self.requests.retain(|_, r| r.expires_at > now);
        (before - self.requests.len()) as u64
    }

    fn sweep_codes(&mut self, now: i64) -> u64 {
        let before = self.codes.len();
        self.codes.retain(|_, entry| match entry {
            CodeEntry::Live(code) => code.expires_at > now,
            CodeEntry::Redeemed { expires_at, .. } => *expires_at > now,
        });
        (before - self.codes.len()) as u64
    }

    fn sweep_tokens(&mut self, now: i64) -> u64 {
        let before = self.access.len() + self.refresh.len() + self.revoked_grants.len();
        self.access.retain(|_, t| t.expires_at() > now);
        self.refresh.retain(|_, t| t.record.expires_at > now);
        self.revoked_grants
            .retain(|_, keep_until| *keep_until > now);
        (before - self.access.len() - self.refresh.len() - self.revoked_grants.len()) as u64
    }

    fn sweep_assertions(&mut self, now: i64) -> u64 {
        let before = self.assertion_ids.len();
        self.assertion_ids.retain(|_, expires_at| *expires_at > now);
        (before - self.assertion_ids.len()) as u64
    }

    fn grant_revoked(&self, grant_id: &str) -> bool {
        self.revoked_grants.contains_key(grant_id)
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        let mut state = self.state();
        if state.clients.contains_key(&client.info.client_id) {
            return Err(StorageError::conflict(format!(
                "client {:?} already exists",
                client.info.client_id
            )));
        }
        state
            .clients
            .insert(client.info.client_id.clone(), client.clone());
        Ok(())
    }

    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        self.state()
            .clients
            .insert(client.info.client_id.clone(), client.clone());
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        Ok(self.read_state().clients.get(client_id).cloned())
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        Ok(self.state().clients.remove(client_id).is_some())
    }
}

#[async_trait]
impl AuthorizationRequestStore for MemoryStore {
    async fn insert_authorization_request(
        &self,
        request: &AuthorizationRequestRecord,
    ) -> Result<(), StorageError> {
        let mut state = self.state();
        state
            .requests
            .insert(*request.request_hash.as_bytes(), request.clone());
        state.note_insert();
        Ok(())
    }

    async fn get_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        let mut state = self.state();
        state.see(now);
        Ok(state
            .requests
            .get(request_hash.as_bytes())
            .filter(|r| r.expires_at > now)
            .cloned())
    }

    async fn take_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        let mut state = self.state();
        state.see(now);
        Ok(state
            .requests
            .remove(request_hash.as_bytes())
            .filter(|r| r.expires_at > now))
    }

    async fn purge_expired_authorization_requests(&self, now: i64) -> Result<u64, StorageError> {
        Ok(self.state().sweep_requests(now))
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError> {
        let mut state = self.state();
        state
            .codes
            .insert(*code.code_hash.as_bytes(), CodeEntry::Live(code.clone()));
        state.note_insert();
        Ok(())
    }

    async fn get_code(
        &self,
        code_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<CodeRecord>, StorageError> {
        let mut state = self.state();
        state.see(now);
        Ok(match state.codes.get(code_hash.as_bytes()) {
            Some(CodeEntry::Live(code)) if code.expires_at > now => Some(code.clone()),
            _ => None,
        })
    }

    async fn take_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeTake, StorageError> {
        let mut state = self.state();
        state.see(now);
        let key = *code_hash.as_bytes();
        let outcome = match state.codes.get(&key) {
            None => return Ok(CodeTake::Missing),
            Some(CodeEntry::Live(code)) if code.expires_at > now => CodeTake::Taken(code.clone()),
            Some(CodeEntry::Live(_)) => return Ok(CodeTake::Missing),
            Some(CodeEntry::Redeemed {
                grant_id,
                expires_at,
            }) if *expires_at > now => {
                return Ok(CodeTake::AlreadyRedeemed {
                    grant_id: grant_id.clone(),
                });
            }
            Some(CodeEntry::Redeemed { .. }) => return Ok(CodeTake::Missing),
        };
        if let CodeTake::Taken(code) = &outcome {
            state.codes.insert(
                key,
                CodeEntry::Redeemed {
                    grant_id: code.grant_id.clone(),
                    expires_at: code.expires_at,
                },
            );
        }
        Ok(outcome)
    }

    async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError> {
        Ok(self.state().sweep_codes(now))
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn issue_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<bool, StorageError> {
        let mut state = self.state();
        if state.grant_revoked(&access.grant_id) {
            return Ok(false);
        }
        state.access.insert(
            *access.token_hash.as_bytes(),
            SharedAccessTokenRecord::from(access.clone()),
        );
        if let Some(refresh) = refresh {
            state.refresh.insert(
                *refresh.token_hash.as_bytes(),
                RefreshEntry {
                    record: refresh.clone(),
                    rotated: false,
                },
            );
        }
        state.note_insert();
        Ok(true)
    }

    async fn get_access_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AccessTokenRecord>, StorageError> {
        Ok(self
            .access_token_at(token_hash, now)
            .map(|shared| shared.to_record(*token_hash)))
    }

    fn get_access_token_now(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Option<Result<Option<SharedAccessTokenRecord>, StorageError>> {
        Some(Ok(self.access_token_at(token_hash, now)))
    }

    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RefreshLookup>, StorageError> {
        let mut state = self.state();
        state.see(now);
        Ok(state
            .refresh
            .get(token_hash.as_bytes())
            .filter(|entry| entry.record.expires_at > now)
            .map(|entry| {
                if entry.rotated {
                    RefreshLookup::Rotated {
                        grant_id: entry.record.grant_id.clone(),
                    }
                } else {
                    RefreshLookup::Active(entry.record.clone())
                }
            }))
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &SecretHash,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
        now: i64,
    ) -> Result<Rotation, StorageError> {
        let mut state = self.state();
        state.see(now);
        let grant_id = match state.refresh.get(old_hash.as_bytes()) {
            Some(entry) if entry.record.expires_at <= now => return Ok(Rotation::Missing),
            Some(entry) if entry.rotated => {
                return Ok(Rotation::Reused {
                    grant_id: entry.record.grant_id.clone(),
                });
            }
            Some(entry) => entry.record.grant_id.clone(),
            None => return Ok(Rotation::Missing),
        };
        if state.grant_revoked(&grant_id) {
            return Ok(Rotation::Missing);
        }
        if let Some(entry) = state.refresh.get_mut(old_hash.as_bytes()) {
            entry.rotated = true;
        }
        state.access.retain(|_, t| t.grant_id() != grant_id);
        state.access.insert(
            *access.token_hash.as_bytes(),
            SharedAccessTokenRecord::from(access.clone()),
        );
        if let Some(refresh) = refresh {
            state.refresh.insert(
                *refresh.token_hash.as_bytes(),
                RefreshEntry {
                    record: refresh.clone(),
                    rotated: false,
                },
            );
        }
        state.note_insert();
        Ok(Rotation::Rotated)
    }

    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        let mut state = self.state();
        state.access.retain(|_, t| t.grant_id() != grant_id);
        state.refresh.retain(|_, t| t.record.grant_id != grant_id);
        let entry = state
            .revoked_grants
            .entry(grant_id.to_owned())
            .or_insert(keep_until);
        *entry = (*entry).max(keep_until);
        Ok(())
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StorageError> {
        Ok(self.state().sweep_tokens(now))
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn record_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        let mut state = self.state();
        state.see(now);
        let key = (issuer.to_owned(), jti.to_owned());
        match state.assertion_ids.get(&key) {
            Some(existing) if *existing > now => Ok(false),
            _ => {
                state.assertion_ids.insert(key, expires_at);
                state.note_insert();
                Ok(true)
            }
        }
    }

    async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError> {
        Ok(self.state().sweep_assertions(now))
    }
}
