//! The HTTP side: discovery GETs and the token POST, each bounded in time, size and
//! concurrency, never following a redirect.

use tokio::sync::Semaphore;

use crate::OidcError;
use crate::limits::{MAX_CONCURRENT_REQUESTS, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT, SLOT_WAIT};

/// A provider's answer: its status and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

pub(crate) struct Http {
    client: reqwest::Client,
    slots: Semaphore,
}

impl Http {
    pub(crate) fn new(root_certificates_pem: &[u8]) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            // A redirect would send the code and our credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true);
        if !root_certificates_pem.is_empty() {
            let roots = reqwest::Certificate::from_pem_bundle(root_certificates_pem)
                .map_err(|err| format!("root certificates: {err}"))?;
            builder = builder.tls_certs_merge(roots);
        }
        Ok(Self {
            client: builder.build().map_err(|err| err.to_string())?,
            slots: Semaphore::new(MAX_CONCURRENT_REQUESTS),
        })
    }

    pub(crate) async fn get(&self, url: &str) -> Result<Answer, OidcError> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        self.send(request, "oidc_discovery").await
    }

    /// POSTs the form `body` with `authorization` (when the client authenticates with HTTP
    /// Basic) and returns the answer whatever its status: a 400 carries the OAuth error.
    pub(crate) async fn post_form(
        &self,
        url: &str,
        authorization: Option<&str>,
        body: String,
    ) -> Result<Answer, OidcError> {
        let mut request = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some(authorization) = authorization {
            // Marked sensitive, so that no layer that prints headers shows our credentials.
            let mut value = reqwest::header::HeaderValue::from_str(authorization)
                .map_err(|_| OidcError::Invalid("the client credentials are not a header"))?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        self.send(request, "oidc_token").await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        fetcher: &'static str,
    ) -> Result<Answer, OidcError> {
        let result = self.send_uncounted(request).await;
        let outcome = match &result {
            Ok(answer) if answer.status == 200 => "ok",
            Ok(_) => "status",
            Err(OidcError::Unavailable(_)) => "transport",
            Err(_) => "invalid",
        };
        metrics::counter!(
            "mcp_auth_outbound_fetches_total",
            "fetcher" => fetcher,
            "outcome" => outcome,
        )
        .increment(1);
        result
    }

    async fn send_uncounted(&self, request: reqwest::RequestBuilder) -> Result<Answer, OidcError> {
        let _slot = tokio::time::timeout(SLOT_WAIT, self.slots.acquire())
            .await
            .map_err(|_| OidcError::Unavailable("too many requests to the provider".into()))?
            .map_err(|_| OidcError::Unavailable("too many requests to the provider".into()))?;
        let mut response = request
            .send()
            .await
            .map_err(|err| OidcError::Unavailable(transport(&err)))?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
        {
            return Err(OidcError::Invalid("the provider's answer is too large"));
        }
        // The length header may be absent or lie: count while reading.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| OidcError::Unavailable(transport(&err)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(OidcError::Invalid("the provider's answer is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, body })
    }
}

/// What went wrong on the wire, without the URL (which may carry a code).
fn transport(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("the identity provider could not be reached: {kind}")
}
