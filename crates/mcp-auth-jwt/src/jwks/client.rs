//! Client key sets: the limits of [`crate::limits`] and the choice of one key by `kid`.
//!
//! A client chooses its keys, so its set is bounded before any key is parsed, and an
//! assertion names the key that signed it instead of making the server try each.

use jsonwebtoken::jwk::Jwk;
use serde::Deserialize as _;
use serde_json::Value;

use std::sync::Arc;

use super::{JwksFetcher, JwksSource, KeyCache, KeySet, PublicKey};
use crate::error::{JwtConfigError, KeyFetchError, KeySetLimit, Rejection};
use crate::limits::{MAX_KEY_SET_BYTES, MAX_KEYS_PER_SET};

impl KeySet {
    /// Parses a client's key set under the limits of [`crate::limits`]: at most
    /// [`MAX_KEYS_PER_SET`] entries, and with more than one, a distinct `kid` on each. The
    /// entries are counted before any key is parsed, so an oversized set costs nothing.
    /// (The byte size is checked by the callers, which hold the bytes.)
    pub(crate) fn parse_client(document: &Value) -> Result<Self, KeySetLimit> {
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(KeySetLimit::NotAKeySet)?;
        if entries.len() > MAX_KEYS_PER_SET {
            return Err(KeySetLimit::TooManyKeys);
        }
        if entries.len() > 1 {
            let mut kids: Vec<&str> = Vec::with_capacity(entries.len());
            for entry in entries {
                match entry.get("kid").and_then(Value::as_str) {
                    Some(kid) if !kid.is_empty() && !kids.contains(&kid) => kids.push(kid),
                    _ => return Err(KeySetLimit::KeyIdsRequired),
                }
            }
        }
        let keys = entries
            .iter()
            .filter_map(|key| Jwk::deserialize(key).ok())
            .filter_map(|jwk| PublicKey::from_jwk(&jwk))
            .collect();
        Ok(Self { keys })
    }

    /// A fetched client key set: the body size first, then [`parse_client`](Self::parse_client).
    pub(crate) fn parse_client_bytes(bytes: &[u8]) -> Result<Self, KeyFetchError> {
        if bytes.len() > MAX_KEY_SET_BYTES {
            return Err(KeyFetchError::KeySet(KeySetLimit::TooLarge));
        }
        let document: Value = serde_json::from_slice(bytes).map_err(KeyFetchError::Invalid)?;
        Self::parse_client(&document).map_err(KeyFetchError::KeySet)
    }

    /// The key of a client set that must verify an assertion whose header names `kid`: the
    /// key with that `kid`, or the set's only key. Never several candidates, so an assertion
    /// costs one signature verification at most, whatever the set holds.
    pub(crate) fn client_key(&self, kid: Option<&str>) -> Result<usize, Rejection> {
        match (kid, self.keys.as_slice()) {
            // RFC 7517 §4.5 leaves `kid` optional in a JWK: the only key, published without
            // one, may still be the signer of an assertion that names one.
            (_, [only]) if only.kid.is_none() || kid.is_none() => Ok(0),
            (Some(kid), keys) => keys
                .iter()
                .position(|key| key.kid.as_deref() == Some(kid))
                .ok_or(Rejection::UnknownKey),
            (None, []) => Err(Rejection::NoUsableKey),
            (None, _) => Err(Rejection::KeyIdRequired),
        }
    }

    /// The key at `index` (from [`client_key`](Self::client_key)).
    pub(crate) fn key(&self, index: usize) -> Option<&PublicKey> {
        self.keys.get(index)
    }
}

impl KeyCache {
    /// A cache over a client's `jwks_uri`: fetched sets must meet the key-set limits (a set
    /// that does not is the client's fault).
    pub(crate) fn for_client(
        uri: &str,
        fetcher: &Arc<dyn JwksFetcher>,
    ) -> Result<Self, JwtConfigError> {
        let mut cache = Self::new(uri, JwksSource::Url(uri.to_owned()), fetcher)?;
        cache.client = true;
        Ok(cache)
    }
}
