//! The hardened https fetcher: vetted addresses only, pinned for the connection; no redirects;
//! timeouts; a streamed body cap; JSON only; 200 only. In front of the fetch itself: a negative
//! cache per URL and per host, single-flight per URL and a concurrency limit.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use url::{Host, Url};

use crate::address::{AddressPolicy, IpRangeError};
use crate::builder::VettedFetcherBuilder;
use crate::failures::FailureMemory;
use crate::single_flight::SingleFlight;

/// Turns a host name into addresses. The default is the system resolver; tests plug in a map
/// to check that names resolving to special-use addresses are refused.
#[async_trait]
pub trait NameResolver: Send + Sync {
    /// Every address `host` resolves to.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl NameResolver for SystemResolver {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|addr| addr.ip())
            .collect())
    }
}

/// Names resolved from a fixed table, and no others (`NotFound`): for tests, which need names
/// that resolve to chosen (special-use) addresses, and for deployments that pin a host.
/// Addresses found here are vetted like any other.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    names: std::collections::HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// A resolver answering each name of `table` with its addresses.
    pub fn new<N: Into<String>>(table: impl IntoIterator<Item = (N, Vec<IpAddr>)>) -> Self {
        Self {
            names: table
                .into_iter()
                .map(|(name, addrs)| (name.into(), addrs))
                .collect(),
        }
    }
}

#[async_trait]
impl NameResolver for StaticResolver {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.names
            .get(host)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, host.to_owned()))
    }
}

/// Why a URL could not be fetched.
///
/// Cloneable (causes are shared) because one failure answers every caller of a single-flight
/// fetch, and is returned again, as it was, while the negative cache remembers it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not an absolute `https` URL with a host.
    #[error("not an https URL with a host")]
    InvalidUrl,
    /// The host is, or resolves to, an address the fetcher must not reach (RFC 6890
    /// special-use, not allow-listed). One refused address refuses the whole name.
    #[error("{host} resolves to the refused special-use address {addr}")]
    AddressRefused {
        /// The host of the URL.
        host: String,
        /// The refused address.
        addr: IpAddr,
    },
    /// The name did not resolve.
    #[error("{host} did not resolve")]
    Resolve {
        /// The host of the URL.
        host: String,
        /// The resolver's error, if any.
        #[source]
        source: Option<Arc<std::io::Error>>,
    },
    /// Only 200 is accepted; redirects are never followed.
    #[error("the host answered {0}, not 200")]
    Status(u16),
    /// The response is not `application/json` (or a `+json` type).
    #[error("the content type {0:?} is not JSON")]
    ContentType(String),
    /// The body exceeds the cap.
    #[error("the document exceeds {0} bytes")]
    TooLarge(usize),
    /// Connection, TLS, timeout or protocol failure.
    #[error("the fetch failed")]
    Http(#[source] Arc<reqwest::Error>),
    /// Too many fetches are in flight: no permit came free within the permit wait, or too many
    /// distinct URLs are pending. Nothing was sent; the condition is the server's, not the
    /// URL's, so it is never remembered. Callers answer `temporarily_unavailable`.
    #[error("too many outbound fetches are in flight")]
    Busy,
    /// The host (name and port) failed repeatedly within the failure TTL and is not contacted
    /// until the TTL has passed. Nothing was sent. Callers answer as for a failing host
    /// (`temporarily_unavailable` for a key set).
    #[error("{host} failed repeatedly and is not contacted for now")]
    HostUnavailable {
        /// The host and port of the URL.
        host: String,
    },
}

impl FetchError {
    /// The outcome label of this failure in `mcp_auth_outbound_fetches_total`: one word per
    /// variant, never the host or address.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid_url",
            Self::AddressRefused { .. } => "address_refused",
            Self::Resolve { .. } => "resolve_failed",
            Self::Status(_) => "status",
            Self::ContentType(_) => "content_type",
            Self::TooLarge(_) => "too_large",
            Self::Http(_) => "transport",
            Self::Busy => "busy",
            Self::HostUnavailable { .. } => "host_unavailable",
        }
    }

    /// Whether the URL itself is refused (not https, or a special-use address), as opposed to a
    /// failure of the host or the network: the fault of whoever chose the URL.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::InvalidUrl | Self::AddressRefused { .. })
    }

    /// Whether the fetch was not attempted because the fetcher is saturated
    /// ([`FetchError::Busy`]): `temporarily_unavailable`, never the client's fault.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Busy)
    }

    /// Whether the negative cache remembers this failure for its URL: every failure of the
    /// fetch itself, but not a URL refused before any I/O, a saturated fetcher, or an answer
    /// that came from the negative cache already.
    pub(crate) fn is_remembered(&self) -> bool {
        !matches!(
            self,
            Self::InvalidUrl | Self::Busy | Self::HostUnavailable { .. }
        )
    }

    /// Whether the failure says something about the host rather than one path on it: counted
    /// towards refusing the host.
    pub(crate) fn is_host_failure(&self) -> bool {
        matches!(
            self,
            Self::AddressRefused { .. } | Self::Resolve { .. } | Self::Http(_)
        )
    }
}

/// A configuration [`VettedFetcherBuilder::build`] refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchConfigError {
    /// An allow-listed address range does not parse.
    #[error(transparent)]
    AddressRange(#[from] IpRangeError),
    /// A root certificate does not parse, or the HTTP client cannot be built.
    #[error("the https client cannot be built")]
    Http(#[source] reqwest::Error),
    /// `max_concurrent_fetches` is 0, which would refuse every fetch.
    #[error("max_concurrent_fetches must be at least 1")]
    NoConcurrency,
}

/// A fetched JSON body and the lifetime the host asked for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Fetched {
    /// The response body (at most the size cap).
    pub body: Vec<u8>,
    /// `Cache-Control: max-age` in seconds (RFC 9111 §5.2.2.1); `no-store` and `no-cache` read
    /// as 0.
    pub max_age: Option<u64>,
}

/// The reqwest resolver that asks the [`NameResolver`] and hands reqwest only vetted addresses.
/// reqwest connects to exactly what this returns, so the address checked is the address used:
/// a DNS answer that changes between check and connect (rebinding) cannot slip through.
pub(crate) struct VettingResolver {
    pub(crate) names: Arc<dyn NameResolver>,
    pub(crate) policy: Arc<AddressPolicy>,
}

/// Carried through reqwest's error chain to recover the typed refusal.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to refused address {addr}")]
struct Refused {
    host: String,
    addr: IpAddr,
}

impl reqwest::dns::Resolve for VettingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let names = Arc::clone(&self.names);
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = vet(&*names, &policy, &host)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

async fn vet(
    names: &dyn NameResolver,
    policy: &AddressPolicy,
    host: &str,
) -> Result<Vec<IpAddr>, ResolveFailure> {
    let addrs = names
        .lookup(host)
        .await
        .map_err(|e| ResolveFailure::Lookup(host.to_owned(), Some(e)))?;
    if addrs.is_empty() {
        return Err(ResolveFailure::Lookup(host.to_owned(), None));
    }
    if let Some(addr) = addrs.iter().find(|addr| !policy.permits(**addr)) {
        return Err(ResolveFailure::Refused(Refused {
            host: host.to_owned(),
            addr: *addr,
        }));
    }
    Ok(addrs)
}

#[derive(Debug, thiserror::Error)]
enum ResolveFailure {
    #[error("{0} did not resolve")]
    Lookup(String, #[source] Option<std::io::Error>),
    #[error(transparent)]
    Refused(Refused),
}

/// Fetches JSON documents from URLs a client chose, refusing every address an attacker could
/// use to reach the deployment's own network (see the crate documentation).
///
/// Clones share everything: the connection pool, the concurrency permits, the flights under way
/// and the negative cache.
#[derive(Clone)]
pub struct VettedFetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    max_body_bytes: usize,
    guard: Arc<Guard>,
}

/// What bounds the fetches a caller can cause (see [`crate::limits`]).
pub(crate) struct Guard {
    pub(crate) permits: tokio::sync::Semaphore,
    pub(crate) permit_wait: Duration,
    pub(crate) failures: FailureMemory,
    pub(crate) flights: SingleFlight<Result<Fetched, FetchError>>,
}

impl std::fmt::Debug for VettedFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VettedFetcher")
            .field("allowed", &self.policy.allowed)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("permit_wait", &self.guard.permit_wait)
            .field("failure_ttl", &self.guard.failures.ttl())
            .finish_non_exhaustive()
    }
}

impl VettedFetcher {
    /// Default cap on a body: 64 KiB ([`limits::DEFAULT_MAX_BODY_BYTES`](crate::limits)).
    pub const DEFAULT_MAX_BODY_BYTES: usize = crate::limits::DEFAULT_MAX_BODY_BYTES;

    /// Starts a builder with the strict defaults: public addresses only, the system resolver,
    /// platform roots, 64 KiB, 5 s connect and read timeouts, 10 s in all, 16 fetches at once,
    /// failures remembered for 30 s (see [`crate::limits`]).
    pub fn builder() -> VettedFetcherBuilder {
        VettedFetcherBuilder::new()
    }

    pub(crate) fn from_parts(
        client: reqwest::Client,
        policy: Arc<AddressPolicy>,
        max_body_bytes: usize,
        guard: Guard,
    ) -> Self {
        Self {
            client,
            policy,
            max_body_bytes,
            guard: Arc::new(guard),
        }
    }

    /// The largest body this fetcher accepts.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// How long a failure is remembered (zero: not at all). Callers that reject a fetched
    /// document themselves (an invalid metadata document) use it to remember that rejection
    /// for as long.
    pub fn failure_ttl(&self) -> Duration {
        self.guard.failures.ttl()
    }

    /// Fetches the JSON document at `url`: https, vetted addresses, no redirect, status 200, a
    /// JSON content type (`application/json` or `application/*+json`), at most the size cap.
    ///
    /// Bounded in what callers can make it send:
    /// - a URL that failed within the failure TTL, or whose host failed repeatedly, fails again
    ///   at once without any I/O ([`FetchError::HostUnavailable`] for the host);
    /// - concurrent calls for one URL share one request and its result;
    /// - at most `max_concurrent_fetches` requests are in flight; a call that gets no permit
    ///   within the permit wait fails with [`FetchError::Busy`].
    pub async fn fetch_json(&self, url: &str) -> Result<Fetched, FetchError> {
        let (outcome, result) = self.fetch_counted(url).await;
        metrics::counter!(
            "mcp_auth_outbound_fetches_total",
            "fetcher" => "vetted",
            "outcome" => outcome,
        )
        .increment(1);
        result
    }

    /// [`fetch_json`](Self::fetch_json) and what happened, for the outcome counter: a failure
    /// answered from the negative cache is `remembered`, whatever it was.
    async fn fetch_counted(&self, url: &str) -> (&'static str, Result<Fetched, FetchError>) {
        let url = match self.vet_url(url) {
            Ok(url) => url,
            Err(error) => return (error.outcome(), Err(error)),
        };
        let host = host_key(&url);
        if let Some(error) = self.guard.failures.check(url.as_str(), &host) {
            return ("remembered", Err(error));
        }
        let result = self
            .guard
            .flights
            .run(url.as_str(), || self.fetch_guarded(&url, &host))
            .await
            .unwrap_or(Err(FetchError::Busy));
        let outcome = result.as_ref().map_or_else(FetchError::outcome, |_| "ok");
        (outcome, result)
    }

    /// The URL, if it is https with a host that is not a refused IP literal.
    fn vet_url(&self, url: &str) -> Result<Url, FetchError> {
        let url = Url::parse(url).map_err(|_| FetchError::InvalidUrl)?;
        if url.scheme() != "https" {
            return Err(FetchError::InvalidUrl);
        }
        // reqwest resolves names through `VettingResolver`, but connects to an IP literal
        // directly: vet it here.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => None,
            None => return Err(FetchError::InvalidUrl),
        };
        if let Some(addr) = literal.filter(|addr| !self.policy.permits(*addr)) {
            return Err(FetchError::AddressRefused {
                host: url.host_str().unwrap_or_default().to_owned(),
                addr,
            });
        }
        Ok(url)
    }

    /// One flight: a permit, the fetch, and its outcome remembered.
    async fn fetch_guarded(&self, url: &Url, host: &str) -> Result<Fetched, FetchError> {
        // A flight that ended between our check and our joining may have just remembered a
        // failure: look again rather than send a second request.
        if let Some(error) = self.guard.failures.check(url.as_str(), host) {
            return Err(error);
        }
        let permit =
            tokio::time::timeout(self.guard.permit_wait, self.guard.permits.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            return Err(FetchError::Busy);
        };
        let result = self.fetch_unguarded(url.clone()).await;
        match &result {
            Ok(_) => self.guard.failures.succeeded(host),
            Err(error) => self.guard.failures.failed(url.as_str(), host, error),
        }
        result
    }

    async fn fetch_unguarded(&self, url: Url) -> Result<Fetched, FetchError> {
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !is_json(&content_type) {
            return Err(FetchError::ContentType(content_type));
        }
        if response
            .content_length()
            .is_some_and(|length| length > self.max_body_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_body_bytes));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        // The cap holds while streaming: a lying or absent Content-Length cannot make us buffer
        // more than `max_body_bytes`.
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(FetchError::TooLarge(self.max_body_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }

    #[cfg(test)]
    pub(crate) fn guard(&self) -> &Guard {
        &self.guard
    }
}

/// The key of a host in the negative cache: name (or literal) and port, since a closed or
/// tarpitting port says nothing about the others.
fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(443)
    )
}

/// Recovers a refusal of the vetting resolver from reqwest's error chain.
fn classify(error: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(failure) = current.downcast_ref::<ResolveFailure>() {
            return match failure {
                ResolveFailure::Refused(refused) => FetchError::AddressRefused {
                    host: refused.host.clone(),
                    addr: refused.addr,
                },
                ResolveFailure::Lookup(host, _) => FetchError::Resolve {
                    host: host.clone(),
                    source: None,
                },
            };
        }
        source = current.source();
    }
    FetchError::Http(Arc::new(error))
}

fn is_json(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// `max-age` from a `Cache-Control` value (RFC 9111 §5.2.2.1); `no-store` and `no-cache` read
/// as 0 (so the caller's minimum applies).
fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            age = value.trim().trim_matches('"').parse().ok();
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for (value, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/jrd+json", true),
            ("text/json", false),
            ("text/html", false),
            ("", false),
            ("application/jsonp", false),
        ] {
            assert_eq!(is_json(value), json, "{value}");
        }
    }

    #[test]
    fn cache_control_max_age() {
        for (value, age) in [
            ("max-age=60", Some(60)),
            ("public, max-age=3600", Some(3600)),
            ("no-store", Some(0)),
            ("max-age=60, no-cache", Some(0)),
            ("private", None),
            ("max-age=x", None),
            ("Max-Age = 30", Some(30)),
        ] {
            assert_eq!(max_age(value), age, "{value}");
        }
    }
}
