//! JSON Web Key Sets (RFC 7517 §5): parsing, sources (inline, file, https URL) and a cache that
//! honours `Cache-Control: max-age` and refetches on an unknown `kid` at most once a minute.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use mcp_auth_fetch::{FetchError, VettedFetcher};
use serde_json::Value;

use crate::error::{JwtConfigError, KeyFetchError};
use crate::jws::SigningAlgorithm;

mod client;

/// The smallest interval between two fetches of one key set caused by unknown `kid`s, and the
/// shortest time a fetched set is kept, whatever its `max-age` says: a flood of assertions with
/// made-up key ids must not become a flood of requests to the identity provider.
pub const MIN_REFETCH_INTERVAL: i64 = 60;
/// How long a key set is kept when its response has no usable `max-age`.
pub const DEFAULT_MAX_AGE: i64 = 3600;
/// The longest a key set is kept, whatever its `max-age` says, so that revoked keys go.
pub const MAX_MAX_AGE: i64 = 24 * 3600;

/// A verification key from a JWKS, with what it may be used for.
pub(crate) struct PublicKey {
    kid: Option<String>,
    /// The JWK's own `alg`, when it names one.
    alg: Option<KeyAlgorithm>,
    kind: KeyKind,
    key: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl PublicKey {
    /// A verification key from a JWK, or `None` for keys that cannot verify an allowed
    /// signature: symmetric (`oct`) keys, encryption keys, unknown key types and curves.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|usage| *usage != PublicKeyUse::Signature)
        {
            return None;
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(params) => match params.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(params) => match params.curve {
                EllipticCurve::Ed25519 => KeyKind::Ed25519,
                _ => return None,
            },
            // Never a symmetric key: see `SigningAlgorithm`.
            _ => return None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self {
            kid: jwk.common.key_id.clone(),
            alg: jwk.common.key_algorithm,
            kind,
            key,
        })
    }

    /// Whether the key can verify `alg`: right key type and curve, and the JWK's `alg` (if any)
    /// the same (RFC 7517 §4.4).
    pub(crate) fn usable_with(&self, alg: SigningAlgorithm) -> bool {
        let kind_fits = match alg {
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => self.kind == KeyKind::Rsa,
            SigningAlgorithm::ES256 => self.kind == KeyKind::P256,
            SigningAlgorithm::ES384 => self.kind == KeyKind::P384,
            SigningAlgorithm::EdDSA => self.kind == KeyKind::Ed25519,
        };
        let alg_fits = self.alg.is_none_or(|own| {
            matches!(
                (own, alg),
                (KeyAlgorithm::RS256, SigningAlgorithm::RS256)
                    | (KeyAlgorithm::PS256, SigningAlgorithm::PS256)
                    | (KeyAlgorithm::ES256, SigningAlgorithm::ES256)
                    | (KeyAlgorithm::ES384, SigningAlgorithm::ES384)
                    | (KeyAlgorithm::EdDSA, SigningAlgorithm::EdDSA)
            )
        });
        kind_fits && alg_fits
    }

    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// The usable verification keys of a JWKS.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<PublicKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.kid, k.kind)))
            .finish()
    }
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot verify an allowed signature are skipped, so a
    /// set that also holds encryption or symmetric keys still works; a document that is not a
    /// JWKS at all is an error.
    pub(crate) fn parse(document: &Value) -> Result<Self, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<Value>,
        }
        let document: Document = serde_json::from_value(document.clone())?;
        let keys = document
            .keys
            .iter()
            .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
            .filter_map(|jwk| PublicKey::from_jwk(&jwk))
            .collect();
        Ok(Self { keys })
    }

    pub(crate) fn parse_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        Self::parse(&serde_json::from_slice(bytes)?)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.iter()
    }

    pub(crate) fn with_kid<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a PublicKey> {
        self.keys
            .iter()
            .filter(move |key| key.kid.as_deref() == Some(kid))
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.with_kid(kid).next().is_some()
    }
}

/// Where an issuer's (or a client's) keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksSource {
    /// A JWKS document given by value.
    Inline(Value),
    /// A JWKS file, read when the validator is built and again (at most once a minute) when an
    /// assertion names an unknown `kid`.
    File(PathBuf),
    /// An https URL, fetched on first use and cached honouring `Cache-Control: max-age`.
    Url(String),
}

impl JwksSource {
    /// Reads a command-line or configuration value: an `https://` URL, or else a file path.
    pub fn from_spec(spec: &str) -> Self {
        if spec
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        {
            Self::Url(spec.to_owned())
        } else if spec.contains("://") {
            // An `http://` or other URL is kept as a URL so that building refuses it, rather
            // than being read as a file that does not exist.
            Self::Url(spec.to_owned())
        } else {
            Self::File(PathBuf::from(spec))
        }
    }
}

/// A fetched JWKS document and how long it may be cached.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchedJwks {
    /// The response body.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, in seconds, when the response had one.
    pub max_age: Option<u64>,
}

impl FetchedJwks {
    /// A document with its cache lifetime.
    pub fn new(body: Vec<u8>, max_age: Option<u64>) -> Self {
        Self { body, max_age }
    }
}

/// Fetches JWKS documents from URLs. Two are provided: [`VettedFetcher`] for URLs a client
/// chose (its `jwks_uri`), and [`HttpJwksFetcher`] for URLs the operator configured (trusted
/// identity providers); tests substitute their own to count fetches.
#[async_trait]
pub trait JwksFetcher: Send + Sync + 'static {
    /// Fetches the document at `url`.
    async fn fetch(&self, url: &str) -> Result<FetchedJwks, KeyFetchError>;
}

/// Fetches JWKS documents over https with reqwest (rustls): a total timeout, a cap on the body
/// size, no redirects (a redirect to another host would let whoever controls it choose the
/// keys), and https only.
///
/// **For operator-configured URLs only** (a trusted identity provider's JWKS, as given to
/// [`IdJagValidatorBuilder::trusted_issuer`](crate::IdJagValidatorBuilder::trusted_issuer)):
/// the addresses a URL resolves to are *not* vetted, so an identity provider on the
/// deployment's own network (loopback, RFC 1918, a private CA) keeps working. The operator is
/// trusted to name it; a client is not. A URL a client chooses (its `jwks_uri`) must be fetched
/// with [`VettedFetcher`], which refuses special-use addresses and pins the connection to the
/// vetted one: [`PrivateKeyJwtVerifier::new`](crate::PrivateKeyJwtVerifier::new) does.
#[derive(Debug, Clone)]
pub struct HttpJwksFetcher {
    client: reqwest::Client,
    max_body_bytes: usize,
}

/// Builder for [`HttpJwksFetcher`].
#[derive(Debug)]
#[must_use]
pub struct HttpJwksFetcherBuilder {
    timeout: Duration,
    max_body_bytes: usize,
    root_certificates: Vec<reqwest::Certificate>,
}

impl HttpJwksFetcher {
    /// Default total timeout of a fetch.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default cap on a JWKS body: 256 KiB, far more than any real key set.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

    /// A fetcher with the default timeout and size cap, trusting the platform's roots.
    pub fn new() -> Result<Self, JwtConfigError> {
        Self::builder().build()
    }

    /// Starts configuring a fetcher.
    pub fn builder() -> HttpJwksFetcherBuilder {
        HttpJwksFetcherBuilder {
            timeout: Self::DEFAULT_TIMEOUT,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            root_certificates: Vec::new(),
        }
    }
}

impl HttpJwksFetcherBuilder {
    /// Total time allowed for one fetch, connection included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest accepted body, in bytes.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Trusts the PEM certificates in `pem` as roots, besides the platform's (for an identity
    /// provider behind a private CA, or a test server with a self-signed certificate).
    pub fn root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, JwtConfigError> {
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(JwtConfigError::Http)?;
        self.root_certificates.extend(certificates);
        Ok(self)
    }

    /// Builds the fetcher.
    pub fn build(self) -> Result<HttpJwksFetcher, JwtConfigError> {
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .tls_certs_merge(self.root_certificates)
            .build()
            .map_err(JwtConfigError::Http)?;
        Ok(HttpJwksFetcher {
            client,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// `max-age` from a `Cache-Control` value (RFC 9111 §5.2.2.1); `no-store` and `no-cache` read
/// as 0 (kept for the minimum interval only).
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

#[async_trait]
impl JwksFetcher for HttpJwksFetcher {
    async fn fetch(&self, url: &str) -> Result<FetchedJwks, KeyFetchError> {
        let result = self.fetch_uncounted(url).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(KeyFetchError::Status(_)) => "status",
            Err(KeyFetchError::TooLarge(_)) => "too_large",
            Err(_) => "transport",
        };
        metrics::counter!(
            "mcp_auth_outbound_fetches_total",
            "fetcher" => "jwks",
            "outcome" => outcome,
        )
        .increment(1);
        result
    }
}

impl HttpJwksFetcher {
    async fn fetch_uncounted(&self, url: &str) -> Result<FetchedJwks, KeyFetchError> {
        let mut response = self
            .client
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(KeyFetchError::Http)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(KeyFetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > self.max_body_bytes as u64)
        {
            return Err(KeyFetchError::TooLarge(self.max_body_bytes));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age);
        // The length header may be absent or lie: count while reading.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(KeyFetchError::Http)? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(KeyFetchError::TooLarge(self.max_body_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedJwks { body, max_age })
    }
}

/// The SSRF-hardened fetcher of `mcp-auth-fetch`, for client `jwks_uri`s: the name is resolved
/// first, every address is vetted against the RFC 6890 special-use ranges (unless allow-listed)
/// and the connection pinned to it; https only, no redirects, timeouts, a body cap, and a JSON
/// content type (`application/json` or `application/jwk-set+json`). A refused URL is a
/// [`KeyFetchError::is_refusal`] failure: `invalid_client` for the client that chose it.
#[async_trait]
impl JwksFetcher for VettedFetcher {
    async fn fetch(&self, url: &str) -> Result<FetchedJwks, KeyFetchError> {
        let fetched = self.fetch_json(url).await.map_err(KeyFetchError::Fetch)?;
        Ok(FetchedJwks::new(fetched.body, fetched.max_age))
    }
}

/// A cached key set and when it was obtained.
#[derive(Clone)]
struct Cached {
    keys: Arc<KeySet>,
    expires_at: i64,
}

#[derive(Default)]
struct CacheState {
    cached: Option<Cached>,
    /// When the last fetch was started, successful or not.
    last_attempt: Option<i64>,
    /// The refused address, when the last fetch was refused by the vetting fetcher: repeated
    /// (without fetching) until the next attempt, so the client keeps getting the same answer.
    last_refusal: Option<(String, IpAddr)>,
}

/// The keys of one source, cached.
///
/// - A fresh set is served from memory.
/// - An expired (or never fetched) set is fetched again; if that fails, a stale set is still
///   served (an identity provider's outage should not log everyone out), and without any set
///   the failure is returned. Failed fetches are retried at most once a minute.
/// - An unknown `kid` in a fresh set triggers a refetch only if the last fetch is at least
///   [`MIN_REFETCH_INTERVAL`] old: key rotation is picked up within a minute, and made-up
///   `kid`s cannot make the server hammer the identity provider.
pub(crate) struct KeyCache {
    source: Source,
    /// Whether the set is a client's, fetched under the limits of [`crate::limits`].
    client: bool,
    state: Mutex<CacheState>,
    /// Held while fetching, so concurrent misses cause one fetch.
    fetching: tokio::sync::Mutex<()>,
}

enum Source {
    Static,
    File(PathBuf),
    Url(String, Arc<dyn JwksFetcher>),
}

impl KeyCache {
    /// A cache over `source`. Inline and file sets are read now, so that configuration errors
    /// surface at start-up.
    pub(crate) fn new(
        label: &str,
        source: JwksSource,
        fetcher: &Arc<dyn JwksFetcher>,
    ) -> Result<Self, JwtConfigError> {
        let invalid = |reason: String| JwtConfigError::Jwks {
            issuer: label.to_owned(),
            reason,
        };
        let (source, initial) = match source {
            JwksSource::Inline(document) => {
                let keys = KeySet::parse(&document).map_err(|e| invalid(e.to_string()))?;
                (Source::Static, Some(keys))
            }
            JwksSource::File(path) => {
                let bytes = std::fs::read(&path).map_err(|source| JwtConfigError::File {
                    path: path.display().to_string(),
                    source,
                })?;
                let keys = KeySet::parse_bytes(&bytes).map_err(|e| invalid(e.to_string()))?;
                (Source::File(path), Some(keys))
            }
            JwksSource::Url(url) => {
                if !url
                    .get(..8)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
                {
                    return Err(JwtConfigError::NotHttps(url));
                }
                (Source::Url(url, Arc::clone(fetcher)), None)
            }
        };
        if initial.as_ref().is_some_and(KeySet::is_empty) {
            return Err(invalid(
                "no key usable for RS256, PS256, ES256, ES384 or EdDSA".to_owned(),
            ));
        }
        let cached = initial.map(|keys| Cached {
            keys: Arc::new(keys),
            // Inline keys never expire; file keys are re-read only on an unknown `kid`.
            expires_at: i64::MAX,
        });
        Ok(Self {
            source,
            client: false,
            state: Mutex::new(CacheState {
                cached,
                last_attempt: None,
                last_refusal: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // A panic while holding the lock cannot leave the state inconsistent (each update is
        // one assignment), so a poisoned lock is simply taken over.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What to do with the current state for an assertion naming `kid` at `now`.
    fn decide(&self, kid: Option<&str>, now: i64) -> Decision {
        let state = self.state();
        let may_fetch = !matches!(self.source, Source::Static)
            && state
                .last_attempt
                .is_none_or(|last| now >= last.saturating_add(MIN_REFETCH_INTERVAL));
        match &state.cached {
            Some(cached) if now < cached.expires_at => {
                let known = kid.is_none_or(|kid| cached.keys.has_kid(kid));
                if known || !may_fetch {
                    Decision::Use(Arc::clone(&cached.keys))
                } else {
                    Decision::Fetch(Some(Arc::clone(&cached.keys)))
                }
            }
            Some(stale) if !may_fetch => Decision::Use(Arc::clone(&stale.keys)),
            stale if may_fetch => Decision::Fetch(stale.as_ref().map(|c| Arc::clone(&c.keys))),
            _ => Decision::Unavailable,
        }
    }

    /// The keys to verify an assertion naming `kid` with, at `now`.
    pub(crate) async fn keys(
        &self,
        kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<KeySet>, KeyFetchError> {
        let stale = match self.decide(kid, now) {
            Decision::Use(keys) => return Ok(keys),
            Decision::Unavailable => return Err(self.recent_failure()),
            Decision::Fetch(stale) => stale,
        };
        let _fetching = self.fetching.lock().await;
        // Another task may have fetched while this one waited.
        // Stale keys stand in for a failed fetch only if they hold the key the assertion
        // names: otherwise "unknown key" would be a verdict (401) on what is really the key
        // host's outage (503), and a rotation during an outage would log everyone out.
        let usable = |keys: &Arc<KeySet>| kid.is_none_or(|kid| keys.has_kid(kid));
        let stale = match self.decide(kid, now) {
            Decision::Use(keys) => return Ok(keys),
            Decision::Unavailable => {
                return stale.filter(usable).ok_or_else(|| self.recent_failure());
            }
            Decision::Fetch(current) => current.or(stale),
        };
        let previous_attempt = self.state().last_attempt.replace(now);
        let result = self.fetch().await;
        if matches!(&result, Err(KeyFetchError::Fetch(error)) if error.is_busy()) {
            // The fetcher's own saturation says nothing about the key host, and nothing was
            // sent: the next request may try again at once rather than a minute later.
            self.state().last_attempt = previous_attempt;
        }
        self.state().last_refusal = match &result {
            Err(KeyFetchError::Fetch(FetchError::AddressRefused { host, addr })) => {
                Some((host.clone(), *addr))
            }
            _ => None,
        };
        match result {
            Ok((keys, max_age)) => {
                let keys = Arc::new(keys);
                let lifetime = max_age.clamp(MIN_REFETCH_INTERVAL, MAX_MAX_AGE);
                self.state().cached = Some(Cached {
                    keys: Arc::clone(&keys),
                    expires_at: now.saturating_add(lifetime),
                });
                Ok(keys)
            }
            Err(error) => match stale.filter(usable) {
                Some(keys) => {
                    tracing::warn!(%error, "refreshing a JWKS failed; using the cached keys");
                    Ok(keys)
                }
                None => Err(error),
            },
        }
    }

    /// The error for a fetch not attempted because the last one, less than a minute ago,
    /// failed: that refusal again, or [`KeyFetchError::RecentFailure`].
    fn recent_failure(&self) -> KeyFetchError {
        match self.state().last_refusal.clone() {
            Some((host, addr)) => KeyFetchError::Fetch(FetchError::AddressRefused { host, addr }),
            None => KeyFetchError::RecentFailure,
        }
    }

    async fn fetch(&self) -> Result<(KeySet, i64), KeyFetchError> {
        match &self.source {
            Source::Static => Err(KeyFetchError::RecentFailure),
            Source::File(path) => {
                let bytes = tokio::fs::read(path).await.map_err(KeyFetchError::Io)?;
                let keys = KeySet::parse_bytes(&bytes).map_err(KeyFetchError::Invalid)?;
                Ok((keys, i64::MAX))
            }
            Source::Url(url, fetcher) => {
                let fetched = fetcher.fetch(url).await?;
                let keys = if self.client {
                    KeySet::parse_client_bytes(&fetched.body)?
                } else {
                    KeySet::parse_bytes(&fetched.body).map_err(KeyFetchError::Invalid)?
                };
                let max_age = fetched.max_age.map_or(DEFAULT_MAX_AGE, |age| {
                    i64::try_from(age).unwrap_or(i64::MAX)
                });
                Ok((keys, max_age))
            }
        }
    }
}

enum Decision {
    Use(Arc<KeySet>),
    Fetch(Option<Arc<KeySet>>),
    Unavailable,
}

#[cfg(test)]
mod tests;
