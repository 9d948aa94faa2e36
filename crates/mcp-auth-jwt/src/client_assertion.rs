//! [`PrivateKeyJwtVerifier`]: `private_key_jwt` client authentication (RFC 7523 §2.2 and §3,
//! OIDC Core §9).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mcp_auth_core::{ClientAssertionError, ClientAssertionVerifier, VerifiedClientAssertion};
use mcp_auth_fetch::VettedFetcher;
use mcp_auth_types::{Assertion, OAuthClientInformationFull};

use crate::error::{Failure, JwtConfigError, Rejection};
use crate::id_jag::{DEFAULT_LEEWAY, ID_JAG_TYP};
#[cfg(doc)]
use crate::jwks::HttpJwksFetcher;
use crate::jwks::{JwksFetcher, JwksSource, KeyCache, KeySet};
use crate::jws;

/// How many clients' `jwks_uri` key sets are cached at most; past that the cache starts over.
const MAX_CACHED_URIS: usize = 1024;

/// Verifies client assertions against the keys the client registered.
///
/// Rules, in order (each failure is `invalid_client` naming the rule):
/// 1. a compact JWS with an allowed `alg` (RS256, PS256, ES256, ES384, EdDSA) and no `crit`;
///    a `typ` of `oauth-id-jag+jwt` is refused, so an ID-JAG cannot double as a client
///    assertion;
/// 2. `iss` and `sub` both equal the client id (RFC 7523 §3 items 1 and 2);
/// 3. the signature verifies with a key of the client's registered `jwks`, or of its
///    `jwks_uri` (fetched by the SSRF-hardened [`VettedFetcher`], cached like an identity
///    provider's keys, refetched on an unknown `kid` at most once a minute);
/// 4. `aud` is one of the audiences the endpoint accepts — the issuer identifier or the token
///    endpoint URL — as a string or a one-element array;
/// 5. `exp` present and not passed; `nbf` and `iat` (if present) not in the future; each with
///    the leeway;
/// 6. `jti` present (its replay is checked by the provider).
///
/// A `jwks_uri` is fetched by the authorization server: with dynamic registration or Client
/// ID Metadata Documents, any client can make it request an https URL of its choosing. The
/// default fetcher is therefore a [`VettedFetcher`]: the name is resolved first, every address
/// is checked against the RFC 6890 special-use ranges (loopback, private, link-local, …) and
/// the connection is pinned to a vetted address; https only, no redirects, timeouts, a 64 KiB
/// cap. A refused `jwks_uri` is `invalid_client` ("not usable"), never naming the address.
/// Give [`with_fetcher`](Self::with_fetcher) a `VettedFetcher` with an allow-list to reach
/// key hosts on a private network; an unvetted fetcher such as [`HttpJwksFetcher`] there
/// would let any client probe that network.
pub struct PrivateKeyJwtVerifier {
    fetcher: Arc<dyn JwksFetcher>,
    leeway: i64,
    uri_caches: Mutex<HashMap<String, Arc<KeyCache>>>,
}

impl std::fmt::Debug for PrivateKeyJwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKeyJwtVerifier")
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl PrivateKeyJwtVerifier {
    /// A verifier fetching `jwks_uri` key sets with the default [`VettedFetcher`] (public
    /// addresses only, the platform's roots) and a leeway of 60 seconds.
    pub fn new() -> Result<Self, JwtConfigError> {
        let fetcher = VettedFetcher::builder()
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
            uri_caches: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the clock leeway in seconds (at most 300).
    #[must_use]
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = i64::try_from(seconds.min(300)).unwrap_or(300);
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
        let cache = KeyCache::new(uri, JwksSource::Url(uri.to_owned()), &self.fetcher)
            .map_err(|_| Rejection::UnusableClientKeys)?;
        if caches.len() >= MAX_CACHED_URIS {
            caches.clear();
        }
        let cache = Arc::new(cache);
        caches.insert(uri.to_owned(), Arc::clone(&cache));
        Ok(cache)
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
        let keys = match (&client.metadata.jwks, &client.metadata.jwks_uri) {
            (Some(jwks), _) => Arc::new(
                KeySet::parse(jwks)
                    .ok()
                    .filter(|keys| !keys.is_empty())
                    .ok_or(Rejection::UnusableClientKeys)?,
            ),
            (None, Some(uri)) => self.uri_cache(uri)?.keys(jws.kid.as_deref(), now).await?,
            (None, None) => return Err(Rejection::NoClientKeys.into()),
        };
        jws.verify(&keys)?;
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
        let expires_at = jws.check_times(now, self.leeway, false)?;
        let jti = jws.string("jti")?;
        let mut verified = VerifiedClientAssertion::new(jti, expires_at);
        verified.replay_until = expires_at.saturating_add(self.leeway);
        Ok(verified)
    }
}

#[async_trait]
impl ClientAssertionVerifier for PrivateKeyJwtVerifier {
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
