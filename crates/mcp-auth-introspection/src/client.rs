//! The HTTP side: the introspection POST and the metadata GET, each bounded in time, size and
//! concurrency.

use std::net::IpAddr;

use tokio::sync::Semaphore;

use crate::limits::{MAX_CONCURRENT_REQUESTS, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT, SLOT_WAIT};

/// Why the authorization server could not answer. Every one is "temporarily unavailable" to
/// the resource's caller (503), never a verdict on the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// The request failed or timed out.
    #[error("the introspection request failed")]
    Http(#[source] reqwest::Error),
    /// The endpoint answered with another status than 200 (401: our credentials are wrong).
    #[error("the endpoint answered with status {0}")]
    Status(u16),
    /// The answer exceeds [`MAX_RESPONSE_BYTES`].
    #[error("the answer exceeds {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// No request slot became free within [`SLOT_WAIT`].
    #[error("too many introspection requests are in flight")]
    Busy,
    /// The answer or the metadata is not what RFC 7662 / RFC 8414 describe.
    #[error("{0}")]
    Invalid(&'static str),
    /// Discovery failed less than a minute ago.
    #[error("discovering the introspection endpoint failed less than a minute ago")]
    RecentFailure,
}

impl From<IntrospectionError> for mcp_auth_core::ProviderError {
    fn from(error: IntrospectionError) -> Self {
        mcp_auth_core::ProviderError::unavailable(error)
    }
}

/// Whether `url` may carry our client secret: https, or http to a loopback address.
pub(crate) fn is_acceptable_endpoint(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    if parsed.fragment().is_some() || !parsed.username().is_empty() {
        return false;
    }
    match parsed.scheme() {
        "https" => parsed.has_host(),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

/// A reqwest client with the bounds of [`crate::limits`].
pub(crate) struct Http {
    client: reqwest::Client,
    slots: Semaphore,
}

impl Http {
    pub(crate) fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            // A redirect would send the token (and our credentials) elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            slots: Semaphore::new(MAX_CONCURRENT_REQUESTS),
        })
    }

    /// POSTs `token` to `endpoint` with `authorization` and returns the 200 body.
    pub(crate) async fn introspect(
        &self,
        endpoint: &str,
        authorization: &str,
        token: &str,
    ) -> Result<Vec<u8>, IntrospectionError> {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        // Marked sensitive, so that no layer that prints headers shows our credentials.
        let mut authorization = reqwest::header::HeaderValue::from_str(authorization)
            .map_err(|_| IntrospectionError::Invalid("the client credentials are not a header"))?;
        authorization.set_sensitive(true);
        let request = self
            .client
            .post(endpoint)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        self.send(request).await
    }

    /// GETs a JSON document (metadata) and returns the 200 body.
    pub(crate) async fn get_json(&self, url: &str) -> Result<Vec<u8>, IntrospectionError> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, IntrospectionError> {
        let result = self.send_uncounted(request).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(IntrospectionError::Http(_)) => "transport",
            Err(IntrospectionError::Status(_)) => "status",
            Err(IntrospectionError::TooLarge) => "too_large",
            Err(IntrospectionError::Busy) => "busy",
            Err(_) => "invalid",
        };
        metrics::counter!(
            "mcp_auth_outbound_fetches_total",
            "fetcher" => "introspection",
            "outcome" => outcome,
        )
        .increment(1);
        result
    }

    async fn send_uncounted(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, IntrospectionError> {
        let _slot = tokio::time::timeout(SLOT_WAIT, self.slots.acquire())
            .await
            .map_err(|_| IntrospectionError::Busy)?
            .map_err(|_| IntrospectionError::Busy)?;
        let mut response = request.send().await.map_err(IntrospectionError::Http)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(IntrospectionError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
        {
            return Err(IntrospectionError::TooLarge);
        }
        // The length header may be absent or lie: count while reading.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(IntrospectionError::Http)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(IntrospectionError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_over_https_or_to_loopback_only() {
        for url in [
            "https://as.example/introspect",
            "http://127.0.0.1:8080/introspect",
            "http://[::1]/introspect",
            "http://localhost:9000/introspect",
        ] {
            assert!(is_acceptable_endpoint(url), "{url}");
        }
        for url in [
            "http://as.example/introspect",
            "http://10.0.0.1/introspect",
            "https://user:pw@as.example/introspect",
            "https://as.example/introspect#f",
            "ftp://as.example/x",
            "not a url",
        ] {
            assert!(!is_acceptable_endpoint(url), "{url}");
        }
    }
}
