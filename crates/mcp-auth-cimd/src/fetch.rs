//! The hardened https fetcher: vetted addresses only, pinned for the connection; no redirects;
//! timeouts; a streamed body cap; JSON only; 200 only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use url::{Host, Url};

use crate::address::{AddressPolicy, IpRange};

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

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
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
    #[error("the metadata host answered {0}, not 200")]
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

/// A fetched document body and the lifetime the host asked for.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) max_age: Option<u64>,
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

/// The fetcher's settings; see [`CimdResolverBuilder`](crate::CimdResolverBuilder).
pub(crate) struct FetcherConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) total_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) root_certificates: Vec<reqwest::Certificate>,
    pub(crate) allowed: Vec<IpRange>,
    pub(crate) names: Arc<dyn NameResolver>,
}

pub(crate) struct Fetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    max_body_bytes: usize,
}

impl Fetcher {
    pub(crate) fn new(config: FetcherConfig) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(AddressPolicy {
            allowed: config.allowed,
        });
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.total_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            // A proxy would connect on our behalf to an address we never vetted.
            .no_proxy()
            .tls_certs_merge(config.root_certificates)
            .dns_resolver(Arc::new(VettingResolver {
                names: config.names,
                policy: Arc::clone(&policy),
            }))
            .build()?;
        Ok(Self {
            client,
            policy,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Fetches `url` (already checked by `parse_client_id_url`).
    pub(crate) async fn fetch(&self, url: &Url) -> Result<Fetched, FetchError> {
        // reqwest resolves names through `VettingResolver`, but connects to an IP literal
        // directly: vet it here.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(addr) = literal.filter(|addr| !self.policy.permits(*addr)) {
            return Err(FetchError::AddressRefused {
                host: url.host_str().unwrap_or_default().to_owned(),
                addr,
            });
        }
        let mut response = self
            .client
            .get(url.clone())
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
/// as 0 (so the cache's minimum applies).
fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            age = value.trim_matches('"').parse().ok();
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
        ] {
            assert_eq!(max_age(value), age, "{value}");
        }
    }
}
