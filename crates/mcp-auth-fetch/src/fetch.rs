//! The hardened https fetcher: vetted addresses only, pinned for the connection; no redirects;
//! timeouts; a streamed body cap; JSON only; 200 only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use url::{Host, Url};

use crate::address::{AddressPolicy, IpRange, IpRangeError};

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

/// Why a URL could not be fetched.
#[derive(Debug, thiserror::Error)]
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
        source: Option<std::io::Error>,
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
    Http(#[source] reqwest::Error),
}

impl FetchError {
    /// Whether the URL itself is refused (not https, or a special-use address), as opposed to a
    /// failure of the host or the network: the fault of whoever chose the URL.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::InvalidUrl | Self::AddressRefused { .. })
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
struct VettingResolver {
    names: Arc<dyn NameResolver>,
    policy: Arc<AddressPolicy>,
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
}

impl std::fmt::Debug for VettedFetcherBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VettedFetcherBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl VettedFetcherBuilder {
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

    /// Builds the fetcher.
    pub fn build(self) -> Result<VettedFetcher, FetchConfigError> {
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
        Ok(VettedFetcher {
            client,
            policy,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// Fetches JSON documents from URLs a client chose, refusing every address an attacker could
/// use to reach the deployment's own network (see the crate documentation).
#[derive(Clone)]
pub struct VettedFetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    max_body_bytes: usize,
}

impl std::fmt::Debug for VettedFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VettedFetcher")
            .field("allowed", &self.policy.allowed)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl VettedFetcher {
    /// Default cap on a body: 64 KiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

    /// Starts a builder with the strict defaults: public addresses only, the system resolver,
    /// platform roots, 64 KiB, 5 s connect and read timeouts, 10 s in all.
    pub fn builder() -> VettedFetcherBuilder {
        VettedFetcherBuilder {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            root_certificates: Vec::new(),
            allowed: Vec::new(),
            names: Arc::new(SystemResolver),
        }
    }

    /// The largest body this fetcher accepts.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Fetches the JSON document at `url`: https, vetted addresses, no redirect, status 200, a
    /// JSON content type (`application/json` or `application/*+json`), at most the size cap.
    pub async fn fetch_json(&self, url: &str) -> Result<Fetched, FetchError> {
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
    FetchError::Http(error)
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
