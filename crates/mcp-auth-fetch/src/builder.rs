//! [`VettedFetcherBuilder`]: every setting of the fetcher, each defaulting to its constant in
//! [`crate::limits`].

use std::sync::Arc;
use std::time::Duration;

use crate::address::{AddressPolicy, IpRange};
use crate::failures::{FailureMemory, FailureSettings, FetchClock, MonotonicClock};
use crate::fetch::{
    FetchConfigError, Guard, NameResolver, SystemResolver, VettedFetcher, VettingResolver,
};
use crate::limits;
use crate::single_flight::SingleFlight;

/// Builder for [`VettedFetcher`].
#[must_use]
pub struct VettedFetcherBuilder {
    connect_timeout: Duration,
    read_timeout: Duration,
    total_timeout: Duration,
    max_body_bytes: usize,
    root_certificates: Vec<reqwest::Certificate>,
    allowed: Vec<IpRange>,
    names: Arc<dyn NameResolver>,
    max_concurrent_fetches: usize,
    permit_wait: Duration,
    failure_ttl: Duration,
    host_failure_threshold: u32,
    max_failed_urls: usize,
    max_failing_hosts: usize,
    clock: Arc<dyn FetchClock>,
}

impl std::fmt::Debug for VettedFetcherBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VettedFetcherBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("allowed", &self.allowed)
            .field("max_concurrent_fetches", &self.max_concurrent_fetches)
            .field("permit_wait", &self.permit_wait)
            .field("failure_ttl", &self.failure_ttl)
            .field("host_failure_threshold", &self.host_failure_threshold)
            .field("max_failed_urls", &self.max_failed_urls)
            .field("max_failing_hosts", &self.max_failing_hosts)
            .finish_non_exhaustive()
    }
}

impl VettedFetcherBuilder {
    pub(crate) fn new() -> Self {
        Self {
            connect_timeout: limits::DEFAULT_CONNECT_TIMEOUT,
            read_timeout: limits::DEFAULT_READ_TIMEOUT,
            total_timeout: limits::DEFAULT_TOTAL_TIMEOUT,
            max_body_bytes: limits::DEFAULT_MAX_BODY_BYTES,
            root_certificates: Vec::new(),
            allowed: Vec::new(),
            names: Arc::new(SystemResolver),
            max_concurrent_fetches: limits::DEFAULT_MAX_CONCURRENT_FETCHES,
            permit_wait: limits::DEFAULT_PERMIT_WAIT,
            failure_ttl: limits::DEFAULT_FAILURE_TTL,
            host_failure_threshold: limits::DEFAULT_HOST_FAILURE_THRESHOLD,
            max_failed_urls: limits::DEFAULT_MAX_FAILED_URLS,
            max_failing_hosts: limits::DEFAULT_MAX_FAILING_HOSTS,
            clock: Arc::new(MonotonicClock::new()),
        }
    }

    /// Connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Timeout between reads of the response (default 5 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Timeout of the whole fetch (default 10 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// Largest body accepted, in bytes (default 64 KiB), enforced while streaming.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Trusts the PEM certificates in `pem` as roots, besides the platform's (a private CA, or a
    /// test host's self-signed certificate).
    pub fn root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, FetchConfigError> {
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(FetchConfigError::Http)?;
        self.root_certificates.extend(certificates);
        Ok(self)
    }

    /// Admits a special-use address range (`127.0.0.1/32`, `10.0.0.0/8`, `fd00::/8`) that the
    /// fetcher otherwise refuses. For tests and private deployments only: every range allowed
    /// here is reachable by any URL a client chooses.
    pub fn allow_address_range(mut self, range: &str) -> Result<Self, FetchConfigError> {
        self.allowed.push(range.parse()?);
        Ok(self)
    }

    /// [`allow_address_range`](Self::allow_address_range) for an already parsed range.
    pub fn allow_addresses(mut self, range: IpRange) -> Self {
        self.allowed.push(range);
        self
    }

    /// The name resolver (default: the system's). Every address it returns is vetted.
    pub fn name_resolver(mut self, resolver: Arc<dyn NameResolver>) -> Self {
        self.names = resolver;
        self
    }

    /// Most fetches in flight at once (default 16, at least 1), shared by the fetcher's clones.
    pub fn max_concurrent_fetches(mut self, fetches: usize) -> Self {
        self.max_concurrent_fetches = fetches;
        self
    }

    /// Longest wait for a concurrency permit before failing with
    /// [`FetchError::Busy`](crate::FetchError::Busy) (default 1 s; zero: fail at once).
    pub fn permit_wait(mut self, wait: Duration) -> Self {
        self.permit_wait = wait;
        self
    }

    /// How long a failed URL is remembered, and the window in which a host's failures are
    /// counted (default 30 s). Zero turns the negative cache off.
    pub fn failure_ttl(mut self, ttl: Duration) -> Self {
        self.failure_ttl = ttl;
        self
    }

    /// Transport failures of one host (name and port) within the failure TTL after which it is
    /// not contacted for the TTL (default 5; zero: hosts are never refused as a whole).
    pub fn host_failure_threshold(mut self, failures: u32) -> Self {
        self.host_failure_threshold = failures;
        self
    }

    /// Most failed URLs remembered (default 4096), each charged at least
    /// [`FAILED_URL_BYTES`](crate::limits::FAILED_URL_BYTES) against a budget of that many
    /// times this; past it, entries are evicted.
    pub fn max_failed_urls(mut self, urls: usize) -> Self {
        self.max_failed_urls = urls;
        self
    }

    /// Most hosts whose failures are counted at once (default 1024), charged as for
    /// [`max_failed_urls`](Self::max_failed_urls) with
    /// [`FAILING_HOST_BYTES`](crate::limits::FAILING_HOST_BYTES).
    pub fn max_failing_hosts(mut self, hosts: usize) -> Self {
        self.max_failing_hosts = hosts;
        self
    }

    /// The time source of the negative cache (default: [`MonotonicClock`]).
    pub fn clock(mut self, clock: Arc<dyn FetchClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the fetcher.
    pub fn build(self) -> Result<VettedFetcher, FetchConfigError> {
        if self.max_concurrent_fetches == 0 {
            return Err(FetchConfigError::NoConcurrency);
        }
        let policy = Arc::new(AddressPolicy {
            allowed: self.allowed,
        });
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .timeout(self.total_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            // A proxy would connect on our behalf to an address we never vetted.
            .no_proxy()
            .tls_certs_merge(self.root_certificates)
            .dns_resolver(Arc::new(VettingResolver {
                names: self.names,
                policy: Arc::clone(&policy),
            }))
            .build()
            .map_err(FetchConfigError::Http)?;
        let guard = Guard {
            permits: tokio::sync::Semaphore::new(
                self.max_concurrent_fetches
                    .min(tokio::sync::Semaphore::MAX_PERMITS),
            ),
            permit_wait: self.permit_wait,
            failures: FailureMemory::new(FailureSettings {
                ttl: self.failure_ttl,
                host_threshold: self.host_failure_threshold,
                max_urls: self.max_failed_urls,
                max_hosts: self.max_failing_hosts,
                clock: self.clock,
            }),
            flights: SingleFlight::new(limits::MAX_PENDING_URLS),
        };
        Ok(VettedFetcher::from_parts(
            client,
            policy,
            self.max_body_bytes,
            guard,
        ))
    }
}
