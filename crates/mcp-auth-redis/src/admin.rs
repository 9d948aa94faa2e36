//! [`AdminStore`] for [`RedisStore`]: users in one hash, and the listings an administrator
//! asks for, read from the key space (clients by `SCAN`, live grants from the grants index).
//!
//! The listings make a few round trips per client or grant: they serve a command line, never a
//! request, and Redis stays responsive (no `KEYS`, `SCAN` in bounded batches).

use async_trait::async_trait;
use mcp_auth_core::StorageError;
use mcp_auth_core::storage::{
    AccessTokenRecord, AdminStore, ClientRecord, CodeRecord, GrantRecord, RefreshTokenRecord,
    UserRecord,
};

use crate::keys::Index;
use crate::records::{decode, encode};
use crate::store::{RedisStore, SET_USER_PASSWORD};

/// Keys a `SCAN` step asks for.
const SCAN_BATCH: usize = 500;

#[async_trait]
impl AdminStore for RedisStore {
    async fn insert_user(&self, user: &UserRecord) -> Result<bool, StorageError> {
        let inserted: i64 = self
            .query(
                redis::cmd("HSETNX")
                    .arg(self.keys.users())
                    .arg(&user.name)
                    .arg(encode(user)?),
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        // Read, change and write in one script, so a concurrent removal is not undone.
        let changed: i64 = self
            .invoke(
                SET_USER_PASSWORD
                    .key(self.keys.users())
                    .arg(name)
                    .arg(password_hash),
            )
            .await?;
        Ok(changed == 1)
    }

    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StorageError> {
        let json: Option<String> = self
            .query(redis::cmd("HGET").arg(self.keys.users()).arg(name))
            .await?;
        json.map(|json| decode("user", &json)).transpose()
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StorageError> {
        let stored: Vec<String> = self
            .query(redis::cmd("HVALS").arg(self.keys.users()))
            .await?;
        let mut users = stored
            .iter()
            .map(|json| decode::<UserRecord>("user", json))
            .collect::<Result<Vec<_>, _>>()?;
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    async fn delete_user(&self, name: &str) -> Result<bool, StorageError> {
        let deleted: i64 = self
            .query(redis::cmd("HDEL").arg(self.keys.users()).arg(name))
            .await?;
        Ok(deleted == 1)
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StorageError> {
        let pattern = format!("{}*", glob_escape(&self.keys.client("")));
        let mut cursor = 0u64;
        let mut clients = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_BATCH),
                )
                .await?;
            if !keys.is_empty() {
                let values: Vec<Option<String>> = self.query(redis::cmd("MGET").arg(&keys)).await?;
                for json in values.into_iter().flatten() {
                    clients.push(decode::<ClientRecord>("client", &json)?);
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        clients.sort_by(|a, b| a.info.client_id.cmp(&b.info.client_id));
        // SCAN may return a key more than once.
        clients.dedup_by(|a, b| a.info.client_id == b.info.client_id);
        Ok(clients)
    }

    async fn list_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Vec<GrantRecord>, StorageError> {
        // The grants index holds each grant's token sets, scored by their latest expiry.
        let sets: Vec<String> = self
            .query(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.keys.index(Index::Grants))
                    .arg(format!("({now}"))
                    .arg("+inf"),
            )
            .await?;
        let access_prefix = self.keys.grant_access("");
        let refresh_prefix = self.keys.grant_refresh("");
        let mut grant_ids: Vec<&str> = sets
            .iter()
            .filter_map(|set| {
                set.strip_prefix(&access_prefix)
                    .or_else(|| set.strip_prefix(&refresh_prefix))
            })
            .collect();
        grant_ids.sort_unstable();
        grant_ids.dedup();
        let mut grants = Vec::new();
        for grant_id in &grant_ids {
            if let Some(grant) = self.live_grant(grant_id, now).await?
                && subject.is_none_or(|subject| grant.subject.as_deref() == Some(subject))
                && client_id.is_none_or(|client_id| grant.client_id == client_id)
            {
                grants.push(grant);
            }
        }
        // A grant whose code is not yet redeemed has no tokens yet: it is live all the same.
        let codes: Vec<String> = self
            .query(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.keys.index(Index::Codes))
                    .arg(format!("({now}"))
                    .arg("+inf"),
            )
            .await?;
        for key in codes {
            let (json, redeemed): (Option<String>, Option<String>) = self
                .query(redis::cmd("HMGET").arg(&key).arg("record").arg("redeemed"))
                .await?;
            let Some(json) = json else { continue };
            let code: CodeRecord = decode("code", &json)?;
            if redeemed.as_deref() == Some("1")
                || code.expires_at <= now
                || grant_ids.contains(&code.grant_id.as_str())
                || subject.is_some_and(|subject| code.subject.as_deref() != Some(subject))
                || client_id.is_some_and(|client_id| code.client_id != client_id)
            {
                continue;
            }
            let revoked: bool = self
                .query(redis::cmd("EXISTS").arg(self.keys.revoked(&code.grant_id)))
                .await?;
            if !revoked {
                grants.push(GrantRecord::new(
                    code.grant_id,
                    code.client_id,
                    code.subject,
                    code.scopes,
                    code.resource,
                    code.expires_at,
                ));
            }
        }
        grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        Ok(grants)
    }
}

impl RedisStore {
    /// `grant_id` described by its longest-lived live token, unless it is revoked or has none.
    async fn live_grant(
        &self,
        grant_id: &str,
        now: i64,
    ) -> Result<Option<GrantRecord>, StorageError> {
        let revoked: bool = self
            .query(redis::cmd("EXISTS").arg(self.keys.revoked(grant_id)))
            .await?;
        if revoked {
            return Ok(None);
        }
        let mut best: Option<GrantRecord> = None;
        let mut consider = |candidate: GrantRecord| {
            if best
                .as_ref()
                .is_none_or(|best| candidate.expires_at > best.expires_at)
            {
                best = Some(candidate);
            }
        };
        let refresh_keys: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.keys.grant_refresh(grant_id)))
            .await?;
        for key in refresh_keys {
            let (json, rotated): (Option<String>, Option<String>) = self
                .query(redis::cmd("HMGET").arg(&key).arg("record").arg("rotated"))
                .await?;
            let Some(json) = json else { continue };
            let record: RefreshTokenRecord = decode("refresh token", &json)?;
            if rotated.as_deref() != Some("1") && record.expires_at > now {
                consider(GrantRecord::new(
                    grant_id,
                    record.client_id,
                    record.subject,
                    record.scopes,
                    record.resource,
                    record.expires_at,
                ));
            }
        }
        let access_keys: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.keys.grant_access(grant_id)))
            .await?;
        if !access_keys.is_empty() {
            let values: Vec<Option<String>> =
                self.query(redis::cmd("MGET").arg(&access_keys)).await?;
            for json in values.into_iter().flatten() {
                let record: AccessTokenRecord = decode("access token", &json)?;
                if record.expires_at > now {
                    consider(GrantRecord::new(
                        grant_id,
                        record.client_id,
                        record.subject,
                        record.scopes,
                        record.resource,
                        record.expires_at,
                    ));
                }
            }
        }
        Ok(best)
    }
}

/// `text` with Redis glob characters escaped, so that a prefix of ours matches literally.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_characters_of_a_prefix_match_literally() {
        assert_eq!(
            super::glob_escape("app*[1]?:client:"),
            r"app\*\[1\]\?:client:"
        );
        assert_eq!(super::glob_escape(r"a\b"), r"a\\b");
    }
}
