//! [`MemoryStore`]: the reference storage backend, in process memory.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::error::StorageError;
use crate::limits::MEMORY_STORE_SWEEP_EVERY;
use crate::secrets::SecretHash;
use crate::storage::{
    AccessTokenRecord, AuthorizationRequestRecord, AuthorizationRequestStore, ClientRecord,
    ClientStore, CodeRecord, CodeStore, CodeTake, RefreshLookup, RefreshTokenRecord, ReplayStore,
    Rotation, SharedAccessTokenRecord, SigningKeyRecord, SigningKeyStore, TokenStore,
    UpstreamTokenRecord, UserRecord,
};

mod admin;
mod upstream_tokens;

/// Storage in process memory: the reference implementation of every storage contract.
///
/// One lock guards all state, which makes every operation trivially atomic and linearizable;
/// no lock is held across an `.await`. It is a read-write lock so that the lookups every
/// protected request makes (access tokens, clients) do not queue behind one another. Data is lost on restart and not shared between
/// processes — use it for tests, development and single-process deployments that accept
/// re-authentication after a restart.
///
/// # Memory
///
/// A grant holds one access token and one refresh token (about 2.3 KiB together, most of it
/// their claims and strings) and an index entry. Each refresh-token rotation leaves behind
/// only a marker of the rotated token (its hash, a shared reference to the grant id and its
/// expiry: about 100–200 bytes with the index and the map's free slots), kept until that token
/// would have expired, so that presenting it again is detected as reuse. Rotating or revoking
/// a grant touches that grant's own records only, and expired records are swept out as the
/// store grows (a sweep every time the inserts since the last one match the records then
/// kept, so sweeping costs O(1) per insert however large the store is), besides by the
/// `purge_expired_*` operations.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

/// A map keyed by what this server generated: SHA-256 hashes of its random credentials, and
/// its grant ids (the time, then 74 random bits). No caller can choose such keys, so the maps
/// that hold the store's bulk use foldhash (seeded per process) instead of SipHash, which was a
/// quarter of an issuance's time in this store. Maps keyed by what a caller names (client
/// ids, which metadata-document URLs are; assertion ids) keep the standard hasher.
type GeneratedKeyMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct State {
    clients: HashMap<String, ClientRecord>,
    requests: GeneratedKeyMap<[u8; 32], AuthorizationRequestRecord>,
    codes: GeneratedKeyMap<[u8; 32], CodeEntry>,
    /// Access tokens in the shared form the immediate lookup hands out.
    access: GeneratedKeyMap<[u8; 32], SharedAccessTokenRecord>,
    refresh: GeneratedKeyMap<[u8; 32], RefreshEntry>,
    /// Each grant's access and refresh tokens (rotated markers included), so that rotating or
    /// revoking a grant finds its records without a scan of every token.
    grants: GeneratedKeyMap<Arc<str>, GrantTokens>,
    revoked_grants: GeneratedKeyMap<String, i64>,
    assertion_ids: HashMap<(String, String), i64>,
    /// A handful at most: see [`SigningKeyStore`].
    signing_keys: BTreeMap<i64, SigningKeyRecord>,
    /// Sign-in users by name.
    users: BTreeMap<String, UserRecord>,
    /// Upstream tokens by grant id: at most one per grant, swept by expiry like the tokens.
    upstream_tokens: HashMap<String, UpstreamTokenRecord>,
    inserts_since_sweep: usize,
    /// Inserts after which the next opportunistic sweep runs: the records the last sweep kept,
    /// at least [`MEMORY_STORE_SWEEP_EVERY`].
    sweep_after: usize,
    last_seen_now: i64,
}

#[derive(Debug)]
enum CodeEntry {
    Live(CodeRecord),
    Redeemed { grant_id: String, expires_at: i64 },
}

/// A refresh token: live (boxed, so that the markers rotation leaves behind, which are most
/// entries of a long-running store, take a map slot of 32 bytes rather than a whole record's),
/// or rotated.
#[derive(Debug)]
enum RefreshEntry {
    Live(Box<RefreshTokenRecord>),
    /// Rotated (at `rotated_at`): presenting it again until `expires_at` is reuse.
    Rotated {
        grant_id: Arc<str>,
        expires_at: i64,
        rotated_at: i64,
    },
}

impl RefreshEntry {
    fn expires_at(&self) -> i64 {
        match self {
            Self::Live(record) => record.expires_at,
            Self::Rotated { expires_at, .. } => *expires_at,
        }
    }

    fn grant_id(&self) -> &str {
        match self {
            Self::Live(record) => &record.grant_id,
            Self::Rotated { grant_id, .. } => grant_id,
        }
    }
}

/// The hashes of one grant's tokens, in the order they were stored.
#[derive(Debug, Default)]
struct GrantTokens {
    access: Vec<[u8; 32]>,
    refresh: Vec<[u8; 32]>,
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
    /// revocation markers, assertion ids and upstream-token records. For metrics and tests: with purges running it
    /// follows the live traffic, not the time the process has been up.
    pub fn stored_records(&self) -> usize {
        self.read_state().records()
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
        if self.inserts_since_sweep >= self.sweep_after.max(MEMORY_STORE_SWEEP_EVERY) {
            self.inserts_since_sweep = 0;
            let now = self.last_seen_now;
            self.sweep(now);
            self.sweep_after = self.records();
        }
    }

    /// Records besides clients (what [`MemoryStore::stored_records`] counts).
    fn records(&self) -> usize {
        self.requests.len()
            + self.codes.len()
            + self.access.len()
            + self.refresh.len()
            + self.revoked_grants.len()
            + self.assertion_ids.len()
            + self.upstream_tokens.len()
    }

    fn see(&mut self, now: i64) {
        self.last_seen_now = self.last_seen_now.max(now);
    }

    fn sweep(&mut self, now: i64) -> u64 {
        self.sweep_requests(now)
            + self.sweep_codes(now)
            + self.sweep_tokens(now)
            + self.sweep_assertions(now)
            + self.sweep_upstream_tokens(now)
    }

    fn sweep_requests(&mut self, now: i64) -> u64 {
        let before = self.requests.len();
        self.requests.retain(|_, r| r.expires_at > now);
        compact(&mut self.requests);
        (before - self.requests.len()) as u64
    }

    fn sweep_codes(&mut self, now: i64) -> u64 {
        let before = self.codes.len();
        self.codes.retain(|_, entry| match entry {
            CodeEntry::Live(code) => code.expires_at > now,
            CodeEntry::Redeemed { expires_at, .. } => *expires_at > now,
        });
        compact(&mut self.codes);
        (before - self.codes.len()) as u64
    }

    fn sweep_tokens(&mut self, now: i64) -> u64 {
        let before = self.access.len() + self.refresh.len() + self.revoked_grants.len();
        self.access.retain(|_, t| t.expires_at() > now);
        self.refresh.retain(|_, t| t.expires_at() > now);
        self.revoked_grants
            .retain(|_, keep_until| *keep_until > now);
        let (access, refresh) = (&self.access, &self.refresh);
        self.grants.retain(|_, grant| {
            grant.access.retain(|hash| access.contains_key(hash));
            grant.refresh.retain(|hash| refresh.contains_key(hash));
            for list in [&mut grant.access, &mut grant.refresh] {
                if list.capacity() > 2 * list.len() + 4 {
                    list.shrink_to_fit();
                }
            }
            !(grant.access.is_empty() && grant.refresh.is_empty())
        });
        compact(&mut self.access);
        compact(&mut self.refresh);
        compact(&mut self.grants);
        compact(&mut self.revoked_grants);
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

    /// The index entry of `grant_id`, created if need be, and its shared id.
    ///
    /// One lookup: an issuance usually starts a grant, and the map is as large as the live
    /// grants. For a grant already indexed, the entry's key is the map's own, so every holder
    /// shares one id.
    fn grant(&mut self, grant_id: &str) -> (Arc<str>, &mut GrantTokens) {
        let entry = self.grants.entry(Arc::from(grant_id));
        let key = Arc::clone(entry.key());
        (key, entry.or_default())
    }

    fn insert_access(&mut self, access: &AccessTokenRecord) {
        let hash = *access.token_hash.as_bytes();
        let (grant_id, tokens) = self.grant(&access.grant_id);
        push(&mut tokens.access, hash);
        self.access.insert(
            hash,
            SharedAccessTokenRecord::sharing_grant_id(grant_id, access),
        );
    }

    fn insert_refresh(&mut self, refresh: &RefreshTokenRecord) {
        let hash = *refresh.token_hash.as_bytes();
        push(&mut self.grant(&refresh.grant_id).1.refresh, hash);
        self.refresh
            .insert(hash, RefreshEntry::Live(Box::new(refresh.clone())));
    }

    /// Removes the grant's access tokens (only those still recorded under it).
    fn remove_grant_access(&mut self, grant_id: &str) {
        let Some(tokens) = self.grants.get_mut(grant_id) else {
            return;
        };
        for hash in tokens.access.drain(..) {
            if self
                .access
                .get(&hash)
                .is_some_and(|t| t.grant_id() == grant_id)
            {
                self.access.remove(&hash);
            }
        }
    }
}

/// Appends to a grant's list, allocating room for one hash at first: most grants only ever
/// hold one access and one refresh token, and `Vec` would otherwise reserve four of each.
fn push(list: &mut Vec<[u8; 32]>, hash: [u8; 32]) {
    if list.capacity() == 0 {
        list.reserve_exact(1);
    }
    list.push(hash);
}

/// Gives back the memory of a map that sweeping left mostly empty (a hash map keeps its
/// capacity when entries are removed), so that a burst of short-lived records does not keep
/// its peak footprint.
fn compact<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(map: &mut HashMap<K, V, S>) {
    if map.capacity() > 4 * map.len().max(64) {
        map.shrink_to(2 * map.len());
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        // One lookup: the map is as large as the registrations, so each probe may miss the
        // CPU's caches.
        match self.state().clients.entry(client.info.client_id.clone()) {
            Entry::Occupied(_) => Err(StorageError::conflict(format!(
                "client {:?} already exists",
                client.info.client_id
            ))),
            Entry::Vacant(vacant) => {
                vacant.insert(client.clone());
                Ok(())
            }
        }
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
        state.insert_access(access);
        if let Some(refresh) = refresh {
            state.insert_refresh(refresh);
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
            .filter(|entry| entry.expires_at() > now)
            .map(|entry| match entry {
                RefreshEntry::Live(record) => {
                    RefreshLookup::Active(RefreshTokenRecord::clone(record))
                }
                RefreshEntry::Rotated { grant_id, .. } => RefreshLookup::Rotated {
                    grant_id: grant_id.to_string(),
                },
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
        let key = *old_hash.as_bytes();
        let (grant_id, expires_at) = match state.refresh.get(&key) {
            Some(entry) if entry.expires_at() <= now => return Ok(Rotation::Missing),
            Some(RefreshEntry::Rotated { grant_id, .. }) => {
                return Ok(Rotation::Reused {
                    grant_id: grant_id.to_string(),
                });
            }
            Some(RefreshEntry::Live(record)) => (record.grant_id.clone(), record.expires_at),
            None => return Ok(Rotation::Missing),
        };
        if state.grant_revoked(&grant_id) {
            return Ok(Rotation::Missing);
        }
        // The rotated token shrinks to a marker; its record (strings, scopes, claims) is freed.
        let (shared_id, _) = state.grant(&grant_id);
        state.refresh.insert(
            key,
            RefreshEntry::Rotated {
                grant_id: shared_id,
                expires_at,
                rotated_at: now,
            },
        );
        state.remove_grant_access(&grant_id);
        state.insert_access(access);
        if let Some(refresh) = refresh {
            state.insert_refresh(refresh);
        }
        state.note_insert();
        Ok(Rotation::Rotated)
    }

    async fn revoke_grant(&self, grant_id: &str, keep_until: i64) -> Result<(), StorageError> {
        let mut state = self.state();
        state.remove_grant_access(grant_id);
        if let Some(tokens) = state.grants.remove(grant_id) {
            for hash in tokens.refresh {
                if state
                    .refresh
                    .get(&hash)
                    .is_some_and(|t| t.grant_id() == grant_id)
                {
                    state.refresh.remove(&hash);
                }
            }
        }
        let entry = state
            .revoked_grants
            .entry(grant_id.to_owned())
            .or_insert(keep_until);
        *entry = (*entry).max(keep_until);
        Ok(())
    }

    async fn refresh_token_rotation(
        &self,
        token_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<(i64, RefreshTokenRecord)>, StorageError> {
        let state = self.state();
        let Some(RefreshEntry::Rotated {
            grant_id,
            expires_at,
            rotated_at,
        }) = state.refresh.get(token_hash.as_bytes())
        else {
            return Ok(None);
        };
        if *expires_at <= now {
            return Ok(None);
        }
        // A marker keeps no record (that is what makes it small): the grant's live refresh
        // token, which replaced it, says the same of the grant.
        let live = state.grants.get(grant_id).and_then(|tokens| {
            tokens
                .refresh
                .iter()
                .find_map(|hash| match state.refresh.get(hash) {
                    Some(RefreshEntry::Live(record)) if record.expires_at > now => {
                        Some((**record).clone())
                    }
                    _ => None,
                })
        });
        Ok(live.map(|record| (*rotated_at, record)))
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

#[async_trait]
impl SigningKeyStore for MemoryStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StorageError> {
        Ok(self.state().signing_keys.values().cloned().collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StorageError> {
        let mut state = self.state();
        if state.signing_keys.contains_key(&key.generation) {
            return Ok(false);
        }
        if state
            .signing_keys
            .values()
            .any(|stored| stored.kid == key.kid)
        {
            return Err(StorageError::conflict(
                "a signing key with this kid is stored",
            ));
        }
        state.signing_keys.insert(key.generation, key.clone());
        Ok(true)
    }

    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StorageError> {
        let mut state = self.state();
        let kept = state.signing_keys.split_off(&generation);
        let deleted = std::mem::replace(&mut state.signing_keys, kept).len();
        Ok(deleted as u64)
    }
}

#[cfg(test)]
mod tests;
