//! [`CimdResolver`]: the [`ClientMetadataResolver`] of `mcp-auth-core`, with a trust policy and a
//! cache in front of the fetcher.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_auth_core::{ClientMetadataError, ClientMetadataResolver, Clock, SystemClock};
use mcp_auth_types::OAuthClientInformationFull;

use mcp_auth_fetch::{
    FetchClock, FetchConfigError, IpRangeError, NameResolver, VettedFetcher, VettedFetcherBuilder,
};

use crate::cache::{DocumentCache, Outcome};
use crate::client_id::parse_client_id_url;
use crate::document::validate_document;
use crate::limits;

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
    /// Set by [`CimdResolverBuilder::clock`]: then it also drives the fetcher's negative cache.
    clock: Option<Arc<dyn Clock>>,
    private_key_jwt: bool,
    cache_min: u64,
    cache_default: u64,
    cache_max: u64,
    cache_entries: usize,
    cache_bytes: usize,
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

    /// Largest document accepted, in bytes (default 5 KiB, enforced while streaming).
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

    /// Most fetches in flight at once (default 16); see `mcp_auth_fetch::limits`.
    pub fn max_concurrent_fetches(mut self, fetches: usize) -> Self {
        self.fetcher = self.fetcher.max_concurrent_fetches(fetches);
        self
    }

    /// Longest wait for a fetch permit before failing busy (default 1 s).
    pub fn permit_wait(mut self, wait: Duration) -> Self {
        self.fetcher = self.fetcher.permit_wait(wait);
        self
    }

    /// How long a failed fetch, or an invalid document, is remembered before its client id is
    /// fetched again (default 30 s; zero: not remembered). Also the window in which a host's
    /// transport failures are counted.
    pub fn failure_ttl(mut self, ttl: Duration) -> Self {
        self.fetcher = self.fetcher.failure_ttl(ttl);
        self
    }

    /// Transport failures of one host within the failure TTL after which it is not contacted
    /// for the TTL (default 5; zero: never).
    pub fn host_failure_threshold(mut self, failures: u32) -> Self {
        self.fetcher = self.fetcher.host_failure_threshold(failures);
        self
    }

    /// Most failed URLs the fetcher remembers (default 4096).
    pub fn max_failed_urls(mut self, urls: usize) -> Self {
        self.fetcher = self.fetcher.max_failed_urls(urls);
        self
    }

    /// Most hosts whose failures the fetcher counts at once (default 1024).
    pub fn max_failing_hosts(mut self, hosts: usize) -> Self {
        self.fetcher = self.fetcher.max_failing_hosts(hosts);
        self
    }

    /// The trust policy for client_id hosts (default: every host).
    pub fn trust_policy(mut self, policy: TrustPolicy) -> Self {
        self.trust = policy;
        self
    }

    /// The time source of the document cache and of the fetcher's negative cache (default: the
    /// system clock for the first, a monotonic clock for the second).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
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

    /// Most outcomes cached at once, valid documents and refusals of invalid ones (default
    /// 10 000); past it, entries are evicted. Zero caches nothing.
    pub fn cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries;
        self
    }

    /// Memory budget of the cache in bytes (default 16 MiB); each entry is charged its
    /// estimated size and at least `cache_bytes / cache_entries`. Zero caches nothing.
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Validates the configuration and builds the resolver.
    pub fn build(self) -> Result<CimdResolver, CimdConfigError> {
        if !(self.cache_min <= self.cache_default && self.cache_default <= self.cache_max) {
            return Err(CimdConfigError::CacheBounds);
        }
        let mut fetcher = self.fetcher;
        if let Some(clock) = &self.clock {
            fetcher = fetcher.clock(Arc::new(SecondsClock(Arc::clone(clock))));
        }
        Ok(CimdResolver {
            fetcher: fetcher.build()?,
            trust: self.trust,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            private_key_jwt: self.private_key_jwt,
            lifetimes: (self.cache_min, self.cache_default, self.cache_max),
            cache: DocumentCache::new(self.cache_entries, self.cache_bytes),
        })
    }
}

/// The resolver's clock as the fetcher's, so that one clock moves both caches (tests move it
/// instead of sleeping).
struct SecondsClock(Arc<dyn Clock>);

impl FetchClock for SecondsClock {
    fn now(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.0.now()).unwrap_or(0))
    }
}

/// Resolves https URL client ids by fetching their Client ID Metadata Documents
/// (draft-ietf-oauth-client-id-metadata-document), for
/// `StoreProvider::builder(..).client_metadata_resolver(..)`.
///
/// Order of checks: the client_id URL rules, the trust policy, the cache, then the fetch
/// (vetted addresses, https, no redirects, timeouts, size cap, JSON, 200) and the document
/// rules.
///
/// A valid document is cached for its `max-age` within the configured bounds. A failure is
/// remembered for the failure TTL (30 s by default) so that a loop of requests naming a failing
/// client id costs one fetch per TTL: a failed fetch by the fetcher's negative cache (which
/// also refuses a host that keeps failing), an invalid document by this resolver's cache.
/// Concurrent resolutions of one client id share one fetch, and the fetcher bounds how many
/// run at once (a saturated fetcher fails with `FetchError::Busy`).
#[doc(alias = "CIMD")]
pub struct CimdResolver {
    fetcher: VettedFetcher,
    trust: TrustPolicy,
    clock: Arc<dyn Clock>,
    private_key_jwt: bool,
    lifetimes: (u64, u64, u64),
    cache: DocumentCache,
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
    /// Starts a builder with the strict defaults: public addresses only, platform roots, 5 KiB,
    /// 5 s connect and read timeouts, every host trusted, `private_key_jwt` refused (see
    /// [`crate::limits`] and `mcp_auth_fetch::limits`).
    pub fn builder() -> CimdResolverBuilder {
        CimdResolverBuilder {
            fetcher: VettedFetcher::builder().max_body_bytes(limits::DEFAULT_MAX_DOCUMENT_BYTES),
            trust: TrustPolicy::default(),
            clock: None,
            private_key_jwt: false,
            cache_min: limits::DEFAULT_CACHE_MIN_SECONDS,
            cache_default: limits::DEFAULT_CACHE_SECONDS,
            cache_max: limits::DEFAULT_CACHE_MAX_SECONDS,
            cache_entries: limits::DEFAULT_CACHE_ENTRIES,
            cache_bytes: limits::DEFAULT_CACHE_BYTES,
        }
    }

    /// Caches a valid document's client for its `max-age`, clamped to the configured bounds.
    fn store_valid(
        &self,
        client: &OAuthClientInformationFull,
        max_age: Option<u64>,
        bytes: usize,
        now: i64,
    ) {
        let (min, default, max) = self.lifetimes;
        let lifetime = max_age.unwrap_or(default).clamp(min, max);
        let outcome = Outcome::Valid(Arc::new(client.clone()));
        self.cache
            .insert(&client.client_id, outcome, bytes, now, lifetime);
    }

    /// Remembers an invalid document for as long as the fetcher remembers a failed fetch.
    fn store_invalid(&self, client_id: &str, reason: &str, bytes: usize, now: i64) {
        let ttl = self.fetcher.failure_ttl();
        let lifetime = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let outcome = Outcome::Invalid(Arc::from(reason));
        self.cache.insert(client_id, outcome, bytes, now, lifetime);
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
        match self.cache.get(client_id, now) {
            Some(Outcome::Valid(client)) => return Ok(OAuthClientInformationFull::clone(&client)),
            Some(Outcome::Invalid(reason)) => {
                return Err(ClientMetadataError::InvalidDocument(reason.to_string()));
            }
            None => {}
        }
        let fetched = self.fetcher.fetch_json(url.as_str()).await.map_err(|e| {
            if e.is_busy() {
                ClientMetadataError::Unavailable(Box::new(e))
            } else {
                ClientMetadataError::Fetch(Box::new(e))
            }
        })?;
        match validate_document(client_id, &fetched.body, self.private_key_jwt) {
            Ok(client) => {
                self.store_valid(&client, fetched.max_age, fetched.body.len(), now);
                Ok(client)
            }
            Err(error) => {
                let reason = error.to_string();
                self.store_invalid(client_id, &reason, fetched.body.len(), now);
                Err(ClientMetadataError::InvalidDocument(reason))
            }
        }
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
