//! [`PrivateKeyJwtVerifier`]: `private_key_jwt` client authentication (RFC 7523 §2.2 and §3,
//! OIDC Core §9).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mcp_auth_core::{ClientAssertionError, ClientAssertionVerifier, VerifiedClientAssertion};
use mcp_auth_fetch::VettedFetcher;
use mcp_auth_types::{Assertion, OAuthClientInformationFull};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::error::{Failure, JwtConfigError, KeySetLimit, Rejection};
use crate::id_jag::{DEFAULT_LEEWAY, ID_JAG_TYP};
#[cfg(doc)]
use crate::jwks::HttpJwksFetcher;
use crate::jwks::{JwksFetcher, KeyCache, KeySet};
use crate::jws;
use crate::limits::{
    DEFAULT_MAX_ASSERTION_LIFETIME, MAX_ASSERTION_LEEWAY, MAX_ASSERTION_LIFETIME,
    MAX_CACHED_JWKS_URIS, MAX_CACHED_KEY_SETS, MAX_KEY_SET_BYTES, MAX_KEYS_PER_SET,
};
use crate::verify_pool::VerificationPool;

/// Verifies client assertions against the keys the client registered.
///
/// Rules, in order (each failure is `invalid_client` naming the rule); every claim is checked
/// before any key is looked at, so a forged assertion costs no signature verification:
/// 1. a compact JWS with an allowed `alg` (RS256, PS256, ES256, ES384, EdDSA) and no `crit`;
///    a `typ` of `oauth-id-jag+jwt` is refused, so an ID-JAG cannot double as a client
///    assertion;
/// 2. `iss` and `sub` both equal the client id (RFC 7523 §3 items 1 and 2);
/// 3. `aud` is one of the audiences the endpoint accepts — the issuer identifier or the token
///    endpoint URL — as a string or a one-element array;
/// 4. `exp` and `iat` present, `exp` not passed, `nbf` and `iat` not in the future (each with
///    the leeway), and `exp` − `iat` at most the maximum lifetime (default one hour);
/// 5. `jti` present, at most 256 characters (its replay is checked by the provider);
/// 6. the client's key set holds at most 10 keys in 16 KiB, each with its own `kid` when there
///    are several; the one key the header's `kid` names (or the only key) is selected, and
///    the signature verified with it — on the blocking pool, at most one verification per
///    core in the process (see [`crate::limits`]). Keys come from the client's registered
///    `jwks` (parsed once and cached by the SHA-256 of its bytes) or its `jwks_uri` (fetched
///    by the SSRF-hardened [`VettedFetcher`], cached like an identity provider's keys,
///    refetched on an unknown `kid` at most once a minute).
///
/// A `jwks_uri` is fetched by the authorization server: with dynamic registration or Client
/// ID Metadata Documents, any client can make it request an https URL of its choosing. The
/// default fetcher is therefore a [`VettedFetcher`]: the name is resolved first, every address
/// is checked against the RFC 6890 special-use ranges (loopback, private, link-local, …) and
/// the connection is pinned to a vetted address; https only, no redirects, timeouts, a 16 KiB
/// cap. A refused `jwks_uri` is `invalid_client` ("not usable"), never naming the address.
/// Give [`with_fetcher`](Self::with_fetcher) a `VettedFetcher` with an allow-list to reach
/// key hosts on a private network; an unvetted fetcher such as [`HttpJwksFetcher`] there
/// would let any client probe that network.
pub struct PrivateKeyJwtVerifier {
    fetcher: Arc<dyn JwksFetcher>,
    leeway: i64,
    max_lifetime: u64,
    uri_caches: Mutex<HashMap<String, Arc<KeyCache>>>,
    inline_sets: Mutex<HashMap<[u8; 32], Arc<KeySet>>>,
}

impl std::fmt::Debug for PrivateKeyJwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKeyJwtVerifier")
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

impl PrivateKeyJwtVerifier {
    /// A verifier fetching `jwks_uri` key sets with the default [`VettedFetcher`] (public
    /// addresses only, the platform's roots, bodies up to 16 KiB), a leeway of 60 seconds and
    /// a maximum assertion lifetime of one hour.
    pub fn new() -> Result<Self, JwtConfigError> {
        let fetcher = VettedFetcher::builder()
            .max_body_bytes(MAX_KEY_SET_BYTES)
            .build()
            .map_err(JwtConfigError::Fetcher)?;
        Ok(Self::with_fetcher(Arc::new(fetcher)))
    }

    /// A verifier fetching `jwks_uri` key sets with `fetcher`: a [`VettedFetcher`] (see the
    /// type's documentation for why), or a test double.
    pub fn with_fetcher(fetcher: Arc<dyn JwksFetcher>) -> Self {
        Self {
            fetcher,
            leeway: i64::try_from(DEFAULT_LEEWAY).unwrap_or(60),
            max_lifetime: DEFAULT_MAX_ASSERTION_LIFETIME,
            uri_caches: Mutex::new(HashMap::new()),
            inline_sets: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the clock leeway in seconds (at most [`MAX_ASSERTION_LEEWAY`]).
    #[must_use]
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = i64::try_from(seconds.min(MAX_ASSERTION_LEEWAY)).unwrap_or(300);
        self
    }

    /// Sets the longest accepted lifetime (`exp` − `iat`) in seconds, at least 1 and at most
    /// [`MAX_ASSERTION_LIFETIME`] (default
    /// [`DEFAULT_MAX_ASSERTION_LIFETIME`](crate::limits::DEFAULT_MAX_ASSERTION_LIFETIME)).
    #[must_use]
    pub fn max_lifetime(mut self, seconds: u64) -> Self {
        self.max_lifetime = seconds.clamp(1, MAX_ASSERTION_LIFETIME);
        self
    }

    fn uri_cache(&self, uri: &str) -> Result<Arc<KeyCache>, Rejection> {
        let mut caches = self
            .uri_caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cache) = caches.get(uri) {
            return Ok(Arc::clone(cache));
        }
        let cache =
            KeyCache::for_client(uri, &self.fetcher).map_err(|_| Rejection::UnusableClientKeys)?;
        if caches.len() >= MAX_CACHED_JWKS_URIS {
            caches.clear();
        }
        let cache = Arc::new(cache);
        caches.insert(uri.to_owned(), Arc::clone(&cache));
        Ok(cache)
    }

    /// The parsed keys of an inline `jwks`, from the cache when these exact bytes were parsed
    /// before. The limits are checked first: the entry count before serialising, the size
    /// before hashing or parsing.
    fn inline_keys(&self, jwks: &Value) -> Result<Arc<KeySet>, Rejection> {
        if jwks
            .get("keys")
            .and_then(Value::as_array)
            .is_some_and(|keys| keys.len() > MAX_KEYS_PER_SET)
        {
            return Err(Rejection::ClientKeySet(KeySetLimit::TooManyKeys));
        }
        let bytes = serde_json::to_vec(jwks).map_err(|_| Rejection::UnusableClientKeys)?;
        if bytes.len() > MAX_KEY_SET_BYTES {
            return Err(Rejection::ClientKeySet(KeySetLimit::TooLarge));
        }
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let cached = self
            .inline_sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .cloned();
        if let Some(keys) = cached {
            return Ok(keys);
        }
        let keys = KeySet::parse_client(jwks).map_err(Rejection::ClientKeySet)?;
        if keys.is_empty() {
            return Err(Rejection::UnusableClientKeys);
        }
        let keys = Arc::new(keys);
        let mut sets = self
            .inline_sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sets.len() >= MAX_CACHED_KEY_SETS
            && let Some(evicted) = sets.keys().next().copied()
        {
            sets.remove(&evicted);
        }
        sets.insert(digest, Arc::clone(&keys));
        Ok(keys)
    }

    async fn verify(
        &self,
        client: &OAuthClientInformationFull,
        token: &str,
        audiences: &[String],
        now: i64,
    ) -> Result<VerifiedClientAssertion, Failure> {
        let jws = jws::parse(token)?;
        if jws::typ_is(jws.typ.as_deref(), ID_JAG_TYP) {
            return Err(Rejection::ConfusedType.into());
        }
        for claim in ["iss", "sub"] {
            if jws.string(claim)? != client.client_id {
                return Err(Rejection::NotTheClient { claim }.into());
            }
        }
        let audience_ok = jws
            .single_audience()
            .is_some_and(|aud| audiences.iter().any(|accepted| accepted == aud));
        if !audience_ok {
            return Err(Rejection::Audience {
                detail: " (its issuer identifier or token endpoint URL), as a string or a \
                         one-element array",
            }
            .into());
        }
        let expires_at = jws.check_times(now, self.leeway, self.max_lifetime)?;
        let jti = jws.jti()?;
        // Only now, with every claim in order, are keys looked at (and perhaps fetched).
        let keys = match (&client.metadata.jwks, &client.metadata.jwks_uri) {
            (Some(jwks), _) => self.inline_keys(jwks)?,
            (None, Some(uri)) => self.uri_cache(uri)?.keys(jws.kid.as_deref(), now).await?,
            (None, None) => return Err(Rejection::NoClientKeys.into()),
        };
        let key = jws.client_candidate(&keys)?;
        jws.verify(keys, vec![key], VerificationPool::global())
            .await?;
        let mut verified = VerifiedClientAssertion::new(jti, expires_at);
        verified.replay_until = expires_at.saturating_add(self.leeway);
        Ok(verified)
    }
}

#[async_trait]
impl ClientAssertionVerifier for PrivateKeyJwtVerifier {
    fn signing_algorithms(&self) -> Vec<String> {
        crate::SUPPORTED_ALGORITHMS
            .iter()
            .map(|alg| alg.as_str().to_owned())
            .collect()
    }

    async fn verify_client_assertion(
        &self,
        client: &OAuthClientInformationFull,
        assertion: &Assertion,
        audiences: &[String],
        now: i64,
    ) -> Result<VerifiedClientAssertion, ClientAssertionError> {
        self.verify(client, assertion.expose_secret(), audiences, now)
            .await
            .map_err(Failure::into_client_assertion_error)
    }
}

#[cfg(test)]
mod tests;
