//! Clients, pending authorization requests, codes and assertion ids.

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::limits::MAX_REPLAY_WINDOW;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::storage::{
    AuthorizationRequestRecord, AuthorizationRequestStore, ClientRecord, ClientStore, CodeRecord,
    CodeStore, CodeTake, ReplayStore,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::corrupt;
use crate::keys::Index;
use crate::store::{INSERT, RECORD_ASSERTION_ID, RedisStore, TAKE_CODE};

/// Serialises a record as stored.
pub(crate) fn encode<T: Serialize>(record: &T) -> Result<String, StorageError> {
    serde_json::to_string(record).map_err(StorageError::other)
}

/// Parses a stored record; corrupt JSON is a storage failure, never a panic.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    json: &str,
) -> Result<T, StorageError> {
    serde_json::from_str(json).map_err(|err| corrupt(what, err))
}

/// Serialises a client, dropping a raw secret that a caller left in `info` by mistake: only
/// its hash may be stored.
fn encode_client(client: &ClientRecord) -> Result<String, StorageError> {
    if client.info.client_secret.is_none() {
        return encode(client);
    }
    let mut client = client.clone();
    client.info.client_secret = None;
    encode(&client)
}

#[async_trait]
impl ClientStore for RedisStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        let stored: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.keys.client(&client.info.client_id))
                    .arg(encode_client(client)?)
                    .arg("NX"),
            )
            .await?;
        match stored {
            Some(_) => Ok(()),
            None => Err(StorageError::conflict(format!(
                "client {:?} already exists",
                client.info.client_id
            ))),
        }
    }

    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StorageError> {
        self.query::<()>(
            redis::cmd("SET")
                .arg(self.keys.client(&client.info.client_id))
                .arg(encode_client(client)?),
        )
        .await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StorageError> {
        let json: Option<String> = self
            .query(redis::cmd("GET").arg(self.keys.client(client_id)))
            .await?;
        json.map(|json| decode("client", &json)).transpose()
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        let deleted: u64 = self
            .query(redis::cmd("DEL").arg(self.keys.client(client_id)))
            .await?;
        Ok(deleted > 0)
    }
}

/// A request read back, if still live at `now`. Redis expires keys by its own clock; the
/// caller's `now` decides what counts as expired.
fn live_request(
    json: Option<String>,
    now: i64,
) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
    let Some(json) = json else { return Ok(None) };
    let record: AuthorizationRequestRecord = decode("authorization request", &json)?;
    Ok((record.expires_at > now).then_some(record))
}

#[async_trait]
impl AuthorizationRequestStore for RedisStore {
    async fn insert_authorization_request(
        &self,
        request: &AuthorizationRequestRecord,
    ) -> Result<(), StorageError> {
        self.invoke::<()>(
            INSERT
                .key(self.keys.request(&request.request_hash))
                .key(self.keys.index(Index::Requests))
                .arg(request.expires_at)
                .arg("string")
                .arg(encode(request)?),
        )
        .await
    }

    async fn get_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        let json = self
            .query(redis::cmd("GET").arg(self.keys.request(request_hash)))
            .await?;
        live_request(json, now)
    }

    async fn take_authorization_request(
        &self,
        request_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<AuthorizationRequestRecord>, StorageError> {
        // GETDEL is atomic: of concurrent callers, one gets the value and the rest nil.
        let json = self
            .query(redis::cmd("GETDEL").arg(self.keys.request(request_hash)))
            .await?;
        live_request(json, now)
    }

    async fn purge_expired_authorization_requests(&self, now: i64) -> Result<u64, StorageError> {
        self.purge(Index::Requests, now).await
    }
}

#[async_trait]
impl CodeStore for RedisStore {
    async fn insert_code(&self, code: &CodeRecord) -> Result<(), StorageError> {
        self.invoke::<()>(
            INSERT
                .key(self.keys.code(&code.code_hash))
                .key(self.keys.index(Index::Codes))
                .arg(code.expires_at)
                .arg("hash")
                .arg("record")
                .arg(encode(code)?)
                .arg("redeemed")
                .arg("0")
                .arg("expires_at")
                .arg(code.expires_at),
        )
        .await
    }

    async fn get_code(
        &self,
        code_hash: &SecretHash,
        now: i64,
    ) -> Result<Option<CodeRecord>, StorageError> {
        let (json, redeemed): (Option<String>, Option<String>) = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.keys.code(code_hash))
                    .arg("record")
                    .arg("redeemed"),
            )
            .await?;
        let Some(json) = json else { return Ok(None) };
        if redeemed.as_deref() == Some("1") {
            return Ok(None);
        }
        let record: CodeRecord = decode("code", &json)?;
        Ok((record.expires_at > now).then_some(record))
    }

    async fn take_code(&self, code_hash: &SecretHash, now: i64) -> Result<CodeTake, StorageError> {
        let (state, json): (i64, String) = self
            .invoke(TAKE_CODE.key(self.keys.code(code_hash)).arg(now))
            .await?;
        Ok(match state {
            0 => CodeTake::Missing,
            1 => CodeTake::Taken(decode("code", &json)?),
            2 => CodeTake::AlreadyRedeemed {
                grant_id: decode::<CodeRecord>("code", &json)?.grant_id,
            },
            other => return Err(corrupt("take_code reply", other)),
        })
    }

    async fn purge_expired_codes(&self, now: i64) -> Result<u64, StorageError> {
        self.purge(Index::Codes, now).await
    }
}

/// When a replay entry expires (`EXAT`): never at or before `now`, since a key set to expire
/// at once would let an immediate replay through; never beyond [`MAX_REPLAY_WINDOW`], the
/// longest any assertion the provider accepts needs remembering, so that a caller's mistake
/// cannot pin keys for years (or overflow Redis' expiry).
fn replay_expiry(expires_at: i64, now: i64) -> i64 {
    expires_at.clamp(now.saturating_add(1), now.saturating_add(MAX_REPLAY_WINDOW))
}

#[async_trait]
impl ReplayStore for RedisStore {
    async fn record_assertion_id(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StorageError> {
        let first: i64 = self
            .invoke(
                RECORD_ASSERTION_ID
                    .key(self.keys.assertion(issuer, jti))
                    .key(self.keys.index(Index::Assertions))
                    .arg(replay_expiry(expires_at, now)),
            )
            .await?;
        Ok(first == 1)
    }

    async fn purge_expired_assertion_ids(&self, now: i64) -> Result<u64, StorageError> {
        self.purge(Index::Assertions, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_expiries_are_clamped_between_now_and_the_replay_window() {
        const NOW: i64 = 1_900_000_000;
        let cases = [
            (NOW + 60, NOW + 60),
            (NOW + 1, NOW + 1),
            (NOW, NOW + 1),
            (NOW - 3600, NOW + 1),
            (i64::MIN, NOW + 1),
            (NOW + MAX_REPLAY_WINDOW, NOW + MAX_REPLAY_WINDOW),
            (NOW + MAX_REPLAY_WINDOW + 1, NOW + MAX_REPLAY_WINDOW),
            (32_503_680_000, NOW + MAX_REPLAY_WINDOW),
            (i64::MAX, NOW + MAX_REPLAY_WINDOW),
        ];
        for (expires_at, stored) in cases {
            assert_eq!(replay_expiry(expires_at, NOW), stored, "{expires_at}");
        }
    }
}
