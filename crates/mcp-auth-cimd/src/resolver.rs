//! [`CimdResolver`]: the [`ClientMetadataResolver`] of `mcp-auth-core`, with a trust policy and a
//! cache in front of the fetcher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mcp_auth_core::{ClientMetadataError, ClientMetadataResolver, Clock, SystemClock};
use mcp_auth_types::OAuthClientInformationFull;

use mcp_auth_fetch::{
    FetchConfigError, IpRangeError, NameResolver, VettedFetcher, VettedFetcherBuilder,
};

use crate::client_id::parse_client_id_url;
use crate::document::validate_document;

/// A configuration the builder refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CimdConfigError {
    /// An allow-listed address range does not parse.
    #[error(transparent)]
    AddressRange(#[from] IpRangeError),
    /// A root certificate does not parse, or the HTTP client cannot be built.
    #[error("the https client cannot be built")]
    Http(#[source] reqwest::Error),
    /// Another refusal of the fetcher's configuration.
    #[error(transparent)]
    Fetcher(FetchConfigError),
    /// The cache bounds are inverted (`min > max`) or the default lies outside them.
    #[error("cache lifetimes must satisfy min <= default <= max")]
    CacheBounds,
}

impl From<FetchConfigError> for CimdConfigError {
    fn from(error: FetchConfigError) -> Self {
        match error {
            FetchConfigError::AddressRange(error) => Self::AddressRange(error),
            FetchConfigError::Http(error) => Self::Http(error),
            // `FetchConfigError` may grow variants; they pass through unchanged.
            other => Self::Fetcher(other),
        }
    }
}

/// Which client_id hosts are trusted: a deny list that always wins, and an optional allow list
/// (when set, only its hosts are fetched). Entries are exact host names, or `*.example.com` for
/// any subdomain of `example.com` (not `example.com` itself). Compared ASCII case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    allow: Option<Vec<String>>,
    deny: Vec<String>,
}

impl TrustPolicy {
    /// Only these hosts (patterns) are fetched.
    pub fn allow_hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, hosts: I) -> Self {
        self.allow = Some(hosts.into_iter().map(Into::into).collect());
        self
    }

    /// These hosts (patterns) are never fetched.
    pub fn deny_hosts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, hosts: I) -> Self {
        self.deny = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Whether a client_id on `host` may be fetched.
    pub fn permits(&self, host: &str) -> bool {
        let matches = |pattern: &String| host_matches(pattern, host);
        if self.deny.iter().any(matches) {
            return false;
        }
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.iter().any(matches))
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        None => host == pattern,
    }
}

/// Builder for [`CimdResolver`].
#[must_use]
pub struct CimdResolverBuilder {
    fetcher: VettedFetcherBuilder,
    trust: TrustPolicy,
    clock: Arc<dyn Clock>,
    private_key_jwt: bool,
    cache_min: u64,
    cache_default: u64,
    cache_max: u64,
    cache_entries: usize,
}

impl std::fmt::Debug for CimdResolverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdResolverBuilder")
            .field("fetcher", &self.fetcher)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl CimdResolverBuilder {
    /// Connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.fetcher = self.fetcher.connect_timeout(timeout);
        self
    }

    /// Timeout between reads of the response (default 5 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.fetcher = self.fetcher.read_timeout(timeout);
        self
    }

    /// Timeout of the whole fetch (default 10 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.fetcher = self.fetcher.total_timeout(timeout);
        self
    }

    /// Largest document accepted, in bytes (default 5 KB, enforced while streaming).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.fetcher = self.fetcher.max_body_bytes(bytes);
        self
    }

    /// Trusts the PEM certificates in `pem` as roots, besides the platform's (a private CA, or a
    /// test host's self-signed certificate).
    pub fn root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, CimdConfigError> {
        self.fetcher = self.fetcher.root_certificates_pem(pem)?;
        Ok(self)
    }

    /// Admits a special-use address range (`127.0.0.1/32`, `10.0.0.0/8`, `fd00::/8`) that the
    /// fetcher otherwise refuses. For tests and private deployments only: every range allowed
    /// here is reachable by any URL a client chooses.
    pub fn allow_address_range(mut self, range: &str) -> Result<Self, CimdConfigError> {
        self.fetcher = self.fetcher.allow_address_range(range)?;
        Ok(self)
    }

    /// The name resolver (default: the system's). Every address it returns is vetted.
    pub fn name_resolver(mut self, resolver: Arc<dyn NameResolver>) -> Self {
        self.fetcher = self.fetcher.name_resolver(resolver);
        self
    }

    /// The trust policy for client_id hosts (default: every host).
    pub fn trust_policy(mut self, policy: TrustPolicy) -> Self {
        self.trust = policy;
        self
    }

    /// The time source of the cache.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Accept documents that authenticate with `private_key_jwt` (`jwks` or `jwks_uri`
    /// required). Enable it only when the provider verifies client assertions.
    pub fn private_key_jwt(mut self, supported: bool) -> Self {
        self.private_key_jwt = supported;
        self
    }

    /// Cache lifetimes in seconds: `Cache-Control: max-age` is clamped to `min..=max`; a
    /// response without one is kept `default`. Defaults 60, 300 and 86 400.
    pub fn cache_lifetimes(mut self, min: u64, default: u64, max: u64) -> Self {
        self.cache_min = min;
        self.cache_default = default;
        self.cache_max = max;
        self
    }

    /// Most documents cached at once (default 10 000); beyond it expired entries, then
    /// arbitrary ones, are evicted.
    pub fn cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries;
        self
    }

    /// Validates the configuration and builds the resolver.
    pub fn build(self) -> Result<CimdResolver, CimdConfigError> {
        if !(self.cache_min <= self.cache_default && self.cache_default <= self.cache_max) {
            return Err(CimdConfigError::CacheBounds);
        }
        let fetcher = self.fetcher.build()?;
        Ok(CimdResolver {
            fetcher,
            trust: self.trust,
            clock: self.clock,
            private_key_jwt: self.private_key_jwt,
            lifetimes: (self.cache_min, self.cache_default, self.cache_max),
            cache_entries: self.cache_entries,
            cache: Mutex::new(HashMap::new()),
        })
    }
}

/// Resolves https URL client ids by fetching their Client ID Metadata Documents
/// (draft-ietf-oauth-client-id-metadata-document), for
/// `StoreProvider::builder(..).client_metadata_resolver(..)`.
///
/// Order of checks: the client_id URL rules, the trust policy, the cache, then the fetch
/// (vetted addresses, https, no redirects, timeouts, size cap, JSON, 200) and the document
/// rules. Only a valid document is cached; a failure is never cached, so the next request
/// fetches again.
#[doc(alias = "CIMD")]
pub struct CimdResolver {
    fetcher: VettedFetcher,
    trust: TrustPolicy,
    clock: Arc<dyn Clock>,
    private_key_jwt: bool,
    lifetimes: (u64, u64, u64),
    cache_entries: usize,
    cache: Mutex<HashMap<String, (OAuthClientInformationFull, i64)>>,
}

impl std::fmt::Debug for CimdResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CimdResolver")
            .field("trust", &self.trust)
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

impl CimdResolver {
    /// Starts a builder with the strict defaults: public addresses only, platform roots, 5 KB,
    /// 5 s connect and read timeouts, every host trusted, `private_key_jwt` refused.
    pub fn builder() -> CimdResolverBuilder {
        CimdResolverBuilder {
            fetcher: VettedFetcher::builder().max_body_bytes(5 * 1024),
            trust: TrustPolicy::default(),
            clock: Arc::new(SystemClock),
            private_key_jwt: false,
            cache_min: 60,
            cache_default: 300,
            cache_max: 24 * 3600,
            cache_entries: 10_000,
        }
    }

    fn cached(&self, client_id: &str, now: i64) -> Option<OAuthClientInformationFull> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(client_id)
            .filter(|(_, expires)| now < *expires)
            .map(|(client, _)| client.clone())
    }

    fn store(&self, client: &OAuthClientInformationFull, max_age: Option<u64>, now: i64) {
        let (min, default, max) = self.lifetimes;
        let lifetime = max_age.unwrap_or(default).clamp(min, max);
        if lifetime == 0 || self.cache_entries == 0 {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.cache_entries {
            cache.retain(|_, (_, expires)| now < *expires);
            if cache.len() >= self.cache_entries
                && let Some(key) = cache.keys().next().cloned()
            {
                cache.remove(&key);
            }
        }
        let expires = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
        cache.insert(client.client_id.clone(), (client.clone(), expires));
    }
}

#[async_trait]
impl ClientMetadataResolver for CimdResolver {
    async fn resolve(
        &self,
        client_id: &str,
    ) -> Result<OAuthClientInformationFull, ClientMetadataError> {
        let url = parse_client_id_url(client_id).map_err(ClientMetadataError::InvalidClientId)?;
        let host = url.host_str().unwrap_or_default();
        if !self.trust.permits(host) {
            return Err(ClientMetadataError::Untrusted(host.to_owned()));
        }
        let now = self.clock.now();
        if let Some(client) = self.cached(client_id, now) {
            return Ok(client);
        }
        let fetched = self
            .fetcher
            .fetch_json(url.as_str())
            .await
            .map_err(|e| ClientMetadataError::Fetch(Box::new(e)))?;
        let client = validate_document(client_id, &fetched.body, self.private_key_jwt)
            .map_err(|e| ClientMetadataError::InvalidDocument(e.to_string()))?;
        self.store(&client, fetched.max_age, now);
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_policy_hosts() {
        let policy = TrustPolicy::default()
            .allow_hosts(["app.example", "*.apps.example"])
            .deny_hosts(["bad.apps.example"]);
        for (host, trusted) in [
            ("app.example", true),
            ("APP.example", true),
            ("x.apps.example", true),
            ("a.b.apps.example", true),
            ("apps.example", false),
            ("evilapps.example", false),
            ("bad.apps.example", false),
            ("other.example", false),
        ] {
            assert_eq!(policy.permits(host), trusted, "{host}");
        }
        let open = TrustPolicy::default().deny_hosts(["*.evil.example"]);
        assert!(open.permits("anything.example"));
        assert!(!open.permits("x.evil.example"));
    }

    #[test]
    fn cache_bounds_are_validated() {
        assert!(matches!(
            CimdResolver::builder().cache_lifetimes(10, 5, 20).build(),
            Err(CimdConfigError::CacheBounds)
        ));
        assert!(matches!(
            CimdResolver::builder().cache_lifetimes(10, 30, 20).build(),
            Err(CimdConfigError::CacheBounds)
        ));
        assert!(CimdResolver::builder().allow_address_range("nope").is_err());
        assert!(CimdResolver::builder().build().is_ok());
    }
}
