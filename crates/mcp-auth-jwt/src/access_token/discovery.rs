//! Where an issuer's keys come from: given, or found through its metadata (RFC 8414 §3, then
//! OpenID Connect Discovery 1.0 §4), fetched on the first token and kept.

use std::sync::{Arc, Mutex, PoisonError};

use mcp_auth_types::{
    authorization_server_metadata_urls, issuer_metadata_member, validate_issuer_url,
};

use crate::error::{JwtConfigError, KeyFetchError};
use crate::jwks::{JwksFetcher, JwksSource, KeyCache, KeySet};
use crate::limits::DISCOVERY_RETRY_INTERVAL;

/// An issuer's key set: a [`KeyCache`] over keys given when built, or over the `jwks_uri`
/// its metadata names, discovered once (single-flight, retried at most every
/// [`DISCOVERY_RETRY_INTERVAL`] seconds after a failure).
pub(crate) enum IssuerKeys {
    Given(KeyCache),
    Discovered(Discovered),
}

pub(crate) struct Discovered {
    issuer: String,
    fetcher: Arc<dyn JwksFetcher>,
    state: Mutex<DiscoveryState>,
    discovering: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct DiscoveryState {
    keys: Option<Arc<KeyCache>>,
    last_failure: Option<i64>,
}

impl IssuerKeys {
    pub(crate) fn given(
        issuer: &str,
        source: JwksSource,
        fetcher: &Arc<dyn JwksFetcher>,
    ) -> Result<Self, JwtConfigError> {
        Ok(Self::Given(KeyCache::new(issuer, source, fetcher)?))
    }

    /// The keys of `issuer`: `given`, else discovered through its metadata; fetched with
    /// `fetcher` (default: [`HttpJwksFetcher`](crate::HttpJwksFetcher)).
    pub(crate) fn configure(
        issuer: &str,
        given: Option<JwksSource>,
        fetcher: Option<Arc<dyn JwksFetcher>>,
    ) -> Result<Self, JwtConfigError> {
        let fetcher = match fetcher {
            Some(fetcher) => fetcher,
            None => Arc::new(crate::HttpJwksFetcher::new()?),
        };
        match given {
            Some(source) => Self::given(issuer, source, &fetcher),
            None => Ok(Self::discovered(issuer, fetcher)),
        }
    }

    /// Checks `jws`'s signature with the issuer's key its `kid` names (fetching or refetching
    /// the set as needed), on the bounded verification pool. A token without `kid` may not
    /// make the check try every key of a large set: every real issuer names the key, and one
    /// key is all a set without ids needs.
    pub(crate) async fn check_signature(
        &self,
        jws: &crate::jws::UnverifiedJws<'_>,
        now: i64,
    ) -> Result<(), crate::error::Failure> {
        let keys = self.keys(jws.kid.as_deref(), now).await?;
        let candidates = jws.issuer_candidates(&keys)?;
        if jws.kid.is_none() && candidates.len() > 1 {
            return Err(crate::error::Rejection::UnknownKey.into());
        }
        jws.verify(
            keys,
            candidates,
            crate::verify_pool::VerificationPool::global(),
        )
        .await
    }

    pub(crate) fn discovered(issuer: &str, fetcher: Arc<dyn JwksFetcher>) -> Self {
        Self::Discovered(Discovered {
            issuer: issuer.to_owned(),
            fetcher,
            state: Mutex::new(DiscoveryState::default()),
            discovering: tokio::sync::Mutex::new(()),
        })
    }

    /// The key set to check a signature with `kid` against at `now`.
    pub(crate) async fn keys(
        &self,
        kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<KeySet>, KeyFetchError> {
        match self {
            Self::Given(cache) => cache.keys(kid, now).await,
            Self::Discovered(discovered) => discovered.cache(now).await?.keys(kid, now).await,
        }
    }
}

impl Discovered {
    fn state(&self) -> std::sync::MutexGuard<'_, DiscoveryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key cache of the discovered `jwks_uri`, discovering it if nobody has yet.
    async fn cache(&self, now: i64) -> Result<Arc<KeyCache>, KeyFetchError> {
        if let Some(keys) = self.ready(now)? {
            return Ok(keys);
        }
        let _discovering = self.discovering.lock().await;
        // Another request may have finished discovering while this one waited.
        if let Some(keys) = self.ready(now)? {
            return Ok(keys);
        }
        match self.discover().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.state().keys = Some(Arc::clone(&keys));
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, error = %mcp_auth_core::ErrorChain(&error), "issuer discovery failed");
                self.state().last_failure = Some(now);
                Err(error)
            }
        }
    }

    /// The discovered keys, `None` when discovery should be tried now, or the refusal to
    /// retry within [`DISCOVERY_RETRY_INTERVAL`] of a failure.
    fn ready(&self, now: i64) -> Result<Option<Arc<KeyCache>>, KeyFetchError> {
        let state = self.state();
        if let Some(keys) = &state.keys {
            return Ok(Some(Arc::clone(keys)));
        }
        match state.last_failure {
            Some(failed) if now < failed.saturating_add(DISCOVERY_RETRY_INTERVAL) => {
                Err(KeyFetchError::RecentFailure)
            }
            _ => Ok(None),
        }
    }

    /// RFC 8414 metadata, then OpenID discovery; the first document whose `issuer` is this
    /// issuer, exactly (RFC 8414 §3.3: otherwise whoever serves it could name other keys),
    /// names the `jwks_uri`.
    async fn discover(&self) -> Result<KeyCache, KeyFetchError> {
        let issuer = validate_issuer_url(&self.issuer)
            .map_err(|_| KeyFetchError::Metadata("the issuer is not a valid issuer URL"))?;
        let mut last_error = KeyFetchError::Metadata("no metadata document was found");
        for url in authorization_server_metadata_urls(&issuer) {
            match self.jwks_uri(&url).await {
                Ok(jwks_uri) => {
                    return KeyCache::new(&self.issuer, JwksSource::Url(jwks_uri), &self.fetcher)
                        .map_err(|_| KeyFetchError::Metadata("jwks_uri is not an https URL"));
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    async fn jwks_uri(&self, url: &str) -> Result<String, KeyFetchError> {
        let document = self.fetcher.fetch(url).await?;
        issuer_metadata_member(&document.body, &self.issuer, "jwks_uri")
            .map_err(|error| KeyFetchError::Metadata(error.reason()))
    }
}
