//! [`IntrospectionTokenVerifier`]: the verifier, its builder and the endpoint's discovery.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcp_auth_core::{Clock, ProviderError, SystemClock, TokenVerifier};
use mcp_auth_types::{
    AccessToken, AccessTokenSecret, authorization_server_metadata_urls, is_resource_indicator,
    issuer_metadata_member, resource_url_from_server_url, validate_issuer_url,
};

use crate::answer::{Answer, Rules};
use crate::cache::Answers;
use crate::client::{Http, IntrospectionError, is_acceptable_endpoint};
use crate::limits::{
    DEFAULT_ACTIVE_TTL, DISCOVERY_RETRY_INTERVAL, MAX_ACTIVE_TTL, MAX_CACHED_ANSWERS,
    MAX_TOKEN_BYTES,
};

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionConfigError {
    /// A setting is invalid.
    #[error("invalid {setting}: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the introspection HTTP client")]
    Http(#[source] reqwest::Error),
}

fn invalid(setting: &'static str, reason: &'static str) -> IntrospectionConfigError {
    IntrospectionConfigError::Invalid { setting, reason }
}

/// Verifies tokens by asking the authorization server (RFC 7662); see the crate docs.
pub struct IntrospectionTokenVerifier {
    issuer: String,
    endpoint: Endpoint,
    /// `Basic …` with our client id and secret; never printed.
    authorization: String,
    rules: Rules,
    answers: Answers,
    http: Http,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IntrospectionTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionTokenVerifier")
            .field("issuer", &self.issuer)
            .field("resource", &self.rules.resource)
            .field("authorization", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Builder for [`IntrospectionTokenVerifier`].
#[must_use]
pub struct IntrospectionTokenVerifierBuilder {
    issuer: String,
    resource: String,
    client_id: String,
    client_secret: String,
    endpoint: Option<String>,
    require_audience: bool,
    active_ttl: u64,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IntrospectionTokenVerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionTokenVerifierBuilder")
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl IntrospectionTokenVerifier {
    /// Starts building a verifier asking `issuer` about tokens for `resource`, as the
    /// confidential client `client_id` with `client_secret` (`client_secret_basic`).
    pub fn builder(
        issuer: impl Into<String>,
        resource: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> IntrospectionTokenVerifierBuilder {
        IntrospectionTokenVerifierBuilder {
            issuer: issuer.into(),
            resource: resource.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoint: None,
            require_audience: true,
            active_ttl: DEFAULT_ACTIVE_TTL,
            capacity: MAX_CACHED_ANSWERS,
            clock: Arc::new(SystemClock),
        }
    }
}

impl IntrospectionTokenVerifierBuilder {
    /// The introspection endpoint, instead of discovering it from the issuer's metadata.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Whether an active answer without `aud` is refused (default `true`). Turn it off only
    /// for an authorization server that omits `aud` and issues tokens for this resource
    /// alone.
    pub fn require_audience(mut self, require: bool) -> Self {
        self.require_audience = require;
        self
    }

    /// How long an active answer is trusted, in seconds (default 60, at most 300; 0 asks
    /// every time): the longest a revocation can go unnoticed here.
    pub fn active_ttl(mut self, seconds: u64) -> Self {
        self.active_ttl = seconds;
        self
    }

    /// How many answers are remembered at most (default [`MAX_CACHED_ANSWERS`]).
    pub fn cache_capacity(mut self, answers: usize) -> Self {
        self.capacity = answers;
        self
    }

    /// The clock (tests use a manual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration; nothing is fetched until the first token.
    pub fn build(self) -> Result<IntrospectionTokenVerifier, IntrospectionConfigError> {
        let issuer = validate_issuer_url(&self.issuer)
            .map_err(|_| invalid("issuer", "not a valid issuer identifier (RFC 8414 §2)"))?
            .as_str()
            .to_owned();
        if !is_resource_indicator(&self.resource) {
            return Err(invalid(
                "resource",
                "not an absolute http(s) URL without a fragment",
            ));
        }
        if self.client_id.is_empty() || self.client_secret.is_empty() {
            return Err(invalid("client", "a client id and a secret are required"));
        }
        if self.active_ttl > MAX_ACTIVE_TTL {
            return Err(invalid("active_ttl", "at most 300 seconds"));
        }
        if let Some(endpoint) = &self.endpoint
            && !is_acceptable_endpoint(endpoint)
        {
            return Err(invalid(
                "endpoint",
                "must be https, or http to a loopback address",
            ));
        }
        // RFC 6749 §2.3.1: the id and the secret are form-encoded before Basic encoding.
        let encode =
            |value: &str| form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
        let credentials = format!(
            "{}:{}",
            encode(&self.client_id),
            encode(&self.client_secret)
        );
        Ok(IntrospectionTokenVerifier {
            endpoint: match self.endpoint {
                Some(url) => Endpoint::Given(url),
                None => Endpoint::Discovered(
                    Mutex::new(Discovery::default()),
                    tokio::sync::Mutex::new(()),
                ),
            },
            authorization: format!("Basic {}", STANDARD.encode(credentials)),
            rules: Rules {
                resource: resource_url_from_server_url(&self.resource),
                issuer: Some(issuer.clone()),
                require_audience: self.require_audience,
            },
            answers: Answers::new(self.capacity, i64::try_from(self.active_ttl).unwrap_or(300)),
            http: Http::new().map_err(IntrospectionConfigError::Http)?,
            clock: self.clock,
            issuer,
        })
    }
}

/// The introspection endpoint: given, or discovered once from the issuer's metadata.
enum Endpoint {
    Given(String),
    Discovered(Mutex<Discovery>, tokio::sync::Mutex<()>),
}

#[derive(Default)]
struct Discovery {
    endpoint: Option<String>,
    last_failure: Option<i64>,
}

impl IntrospectionTokenVerifier {
    async fn endpoint(&self, now: i64) -> Result<String, IntrospectionError> {
        let (state, discovering) = match &self.endpoint {
            Endpoint::Given(url) => return Ok(url.clone()),
            Endpoint::Discovered(state, discovering) => (state, discovering),
        };
        let ready = |state: &Mutex<Discovery>| -> Result<Option<String>, IntrospectionError> {
            let state = state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(endpoint) = &state.endpoint {
                return Ok(Some(endpoint.clone()));
            }
            match state.last_failure {
                Some(failed) if now < failed.saturating_add(DISCOVERY_RETRY_INTERVAL) => {
                    Err(IntrospectionError::RecentFailure)
                }
                _ => Ok(None),
            }
        };
        if let Some(endpoint) = ready(state)? {
            return Ok(endpoint);
        }
        let _discovering = discovering.lock().await;
        if let Some(endpoint) = ready(state)? {
            return Ok(endpoint);
        }
        let discovered = self.discover().await;
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        match discovered {
            Ok(endpoint) => {
                state.endpoint = Some(endpoint.clone());
                Ok(endpoint)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, error = %mcp_auth_core::ErrorChain(&error), "introspection endpoint discovery failed");
                state.last_failure = Some(now);
                Err(error)
            }
        }
    }

    /// RFC 8414 metadata, then OpenID discovery: the first document whose `issuer` is ours
    /// exactly names the endpoint.
    async fn discover(&self) -> Result<String, IntrospectionError> {
        let issuer = validate_issuer_url(&self.issuer)
            .map_err(|_| IntrospectionError::Invalid("the issuer is not a valid issuer URL"))?;
        let mut last = IntrospectionError::Invalid("no metadata document was found");
        for url in authorization_server_metadata_urls(&issuer) {
            let endpoint = match self.http.get_json(&url).await.and_then(|document| {
                issuer_metadata_member(&document, &self.issuer, "introspection_endpoint")
                    .map_err(|error| IntrospectionError::Invalid(error.reason()))
            }) {
                Ok(endpoint) => endpoint,
                Err(error) => {
                    last = error;
                    continue;
                }
            };
            return if is_acceptable_endpoint(&endpoint) {
                Ok(endpoint)
            } else {
                Err(IntrospectionError::Invalid(
                    "the introspection endpoint is neither https nor loopback http",
                ))
            };
        }
        Err(last)
    }
}

#[async_trait]
impl TokenVerifier for IntrospectionTokenVerifier {
    async fn verify_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        let now = self.clock.now();
        if token.expose_secret().len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        if let Some(known) = self.answers.get(token, now) {
            return Ok(known);
        }
        let endpoint = self.endpoint(now).await?;
        let body = self
            .http
            .introspect(&endpoint, &self.authorization, token.expose_secret())
            .await
            .inspect_err(|error| {
                tracing::warn!(issuer = %self.issuer, error = %mcp_auth_core::ErrorChain(error), "introspection failed");
            })?;
        match self
            .rules
            .read(&body)
            .map_err(IntrospectionError::Invalid)?
        {
            Answer::Active(info) => {
                let access = AccessToken::with_info(token.clone(), Arc::new(info));
                if access.expires_at.is_some_and(|exp| exp <= now) {
                    self.answers.inactive(token, now);
                    return Ok(None);
                }
                self.answers.active(token, &access, now);
                Ok(Some(access))
            }
            Answer::Refused(why) => {
                tracing::debug!(issuer = %self.issuer, why, "introspected token refused");
                self.answers.inactive(token, now);
                Ok(None)
            }
        }
    }

    fn verify_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<AccessToken>, ProviderError>> {
        self.answers.get(token, self.clock.now()).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_oversized_token_is_refused_without_a_request() {
        // Nothing listens on port 9: a request would be an error, not `None`.
        let verifier = IntrospectionTokenVerifier::builder(
            "https://as.example",
            "https://mcp.example/mcp",
            "rs",
            "s",
        )
        .endpoint("http://127.0.0.1:9/introspect")
        .build()
        .unwrap();
        let huge = AccessTokenSecret::new("x".repeat(MAX_TOKEN_BYTES + 1));
        assert!(verifier.verify_token(&huge).await.unwrap().is_none());
        let small = AccessTokenSecret::new("x".repeat(16));
        assert!(
            verifier.verify_token(&small).await.is_err(),
            "asked, and unavailable"
        );
    }

    #[test]
    fn configuration_is_checked_and_the_secret_never_printed() {
        let base = || {
            IntrospectionTokenVerifier::builder(
                "https://as.example",
                "https://mcp.example/mcp",
                "rs",
                "s3cret",
            )
        };
        assert!(base().build().is_ok());
        for builder in [
            IntrospectionTokenVerifier::builder(
                "http://as.example",
                "https://mcp.example/mcp",
                "rs",
                "s",
            ),
            IntrospectionTokenVerifier::builder("https://as.example", "mcp", "rs", "s"),
            IntrospectionTokenVerifier::builder(
                "https://as.example",
                "https://mcp.example/mcp",
                "rs",
                "",
            ),
            base().active_ttl(301),
            base().endpoint("http://as.example/introspect"),
        ] {
            assert!(builder.build().is_err());
        }
        let verifier = base().build().unwrap();
        for printed in [format!("{verifier:?}"), format!("{:?}", base())] {
            assert!(!printed.contains("s3cret"), "{printed}");
            assert!(!printed.contains("czNjcmV0"), "{printed}");
        }
        // RFC 6749 §2.3.1: form-encoded before Basic.
        let odd = IntrospectionTokenVerifier::builder(
            "https://as.example",
            "https://mcp.example/mcp",
            "a:b",
            "p w",
        )
        .build()
        .unwrap();
        assert_eq!(
            odd.authorization,
            format!("Basic {}", STANDARD.encode("a%3Ab:p+w"))
        );
    }
}
