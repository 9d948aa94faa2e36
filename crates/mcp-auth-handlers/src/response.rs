//! Building responses: JSON bodies, OAuth error bodies with the status each code maps to, and
//! the generic answers for internal failures.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PRAGMA};
use http::{Response, StatusCode};
use mcp_auth_core::ErrorChain;
use mcp_auth_core::{ProviderError, ProviderErrorKind};
use mcp_auth_types::{
    AuthorizeErrorCode, BearerErrorCode, ErrorBody, IntrospectionErrorCode, RegistrationErrorCode,
    RevocationErrorCode, ServerErrorCode, TokenErrorCode,
};
use serde::Serialize;

/// The HTTP status an error code is answered with. Chosen here, in the handlers, not in the
/// wire types.
pub trait Status {
    /// The status code.
    fn status(self) -> StatusCode;

    /// The wire form of the code (its `as_str`), for the error counter's label.
    fn wire(self) -> &'static str;
}

impl Status for TokenErrorCode {
    fn wire(self) -> &'static str {
        self.as_str()
    }

    /// RFC 6749 §5.2: 400, except `invalid_client`, which is 401 (the RFC says the server "MAY"
    /// use 401 and MUST when the client tried the Authorization header; we always do, so
    /// clients see one behaviour).
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl Status for RevocationErrorCode {
    fn wire(self) -> &'static str {
        self.as_str()
    }

    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl Status for IntrospectionErrorCode {
    fn wire(self) -> &'static str {
        self.as_str()
    }

    /// RFC 7662 §2.3 (through RFC 6749 §5.2): 401 for `invalid_client`, 400 otherwise.
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
        }
    }
}

impl Status for RegistrationErrorCode {
    fn wire(self) -> &'static str {
        self.as_str()
    }

    /// RFC 7591 §3.2.2: 400 for every registration error.
    fn status(self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl Status for AuthorizeErrorCode {
    fn wire(self) -> &'static str {
        self.as_str()
    }

    /// Only used when the error cannot be redirected (unknown client, bad redirect URI).
    fn status(self) -> StatusCode {
        match self {
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl Status for BearerErrorCode {
    fn wire(self) -> &'static str {
        self.as_str()
    }

    /// RFC 6750 §3.1.
    fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
        }
    }
}

impl Status for ServerErrorCode {
    fn wire(self) -> &'static str {
        self.as_str()
    }

    fn status(self) -> StatusCode {
        match self {
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// How a response may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// `Cache-Control: no-store` (authorization, registration and error responses).
    NoStore,
    /// `Cache-Control: no-store` and `Pragma: no-cache` (token responses, RFC 6749 §5.1).
    NoStorePragma,
    /// `Cache-Control: public, max-age=3600` (metadata documents).
    PublicHour,
    /// `Cache-Control: public, max-age=300` (the key set, which rotates).
    PublicFiveMinutes,
}

/// A JSON response.
pub fn json<T: Serialize + ?Sized>(
    status: StatusCode,
    body: &T,
    caching: Caching,
) -> Response<Bytes> {
    match serde_json::to_vec(body) {
        Ok(bytes) => raw_json(status, Bytes::from(bytes), caching),
        Err(error) => {
            tracing::error!(%error, "failed to serialise a response body");
            raw_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(br#"{"error":"server_error"}"#),
                Caching::NoStore,
            )
        }
    }
}

/// A response with an already serialised JSON body.
pub fn raw_json(status: StatusCode, body: Bytes, caching: Caching) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    match caching {
        Caching::NoStore => {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Caching::NoStorePragma => {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        }
        Caching::PublicHour => {
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
        }
        Caching::PublicFiveMinutes => {
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
        }
    }
    response
}

/// An OAuth error response with the code's status, `no-store` and `Pragma: no-cache`. Counted
/// in `mcp_auth_oauth_errors_total{error}` (the codes are this crate's enums, so the label is
/// bounded).
pub fn oauth_error<C: Serialize + Status + Copy>(
    code: C,
    description: Option<String>,
) -> Response<Bytes> {
    metrics::counter!("mcp_auth_oauth_errors_total", "error" => code.wire()).increment(1);
    json(
        code.status(),
        &ErrorBody::new(code, description),
        Caching::NoStorePragma,
    )
}

/// The generic answer to an internal failure: `503 temporarily_unavailable` when a dependency
/// is down, `500 server_error` otherwise. The cause is logged, never sent.
pub fn provider_failure(error: &ProviderError) -> Response<Bytes> {
    let code = server_error_code(error);
    tracing::error!(error = %ErrorChain(error), "provider failure");
    let mut response = oauth_error(code, None);
    if code == ServerErrorCode::TemporarilyUnavailable {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// The code an internal failure is reported with.
pub fn server_error_code(error: &ProviderError) -> ServerErrorCode {
    match error.kind() {
        ProviderErrorKind::Unavailable => ServerErrorCode::TemporarilyUnavailable,
        _ => ServerErrorCode::ServerError,
    }
}

/// `413 Payload Too Large` with an OAuth `invalid_request` body.
pub fn payload_too_large(limit: usize) -> Response<Bytes> {
    json(
        StatusCode::PAYLOAD_TOO_LARGE,
        &ErrorBody::new(
            "invalid_request",
            Some(format!("request body exceeds {limit} bytes")),
        ),
        Caching::NoStore,
    )
}

/// `405 Method Not Allowed` with the `Allow` header (RFC 9110 §15.5.6).
pub fn method_not_allowed(allow: &'static str) -> Response<Bytes> {
    let mut response = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &ErrorBody::new("invalid_request", Some("method not allowed".to_owned())),
        Caching::NoStore,
    );
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `429 Too Many Requests` for a spent rate-limit budget: `Retry-After` in whole seconds
/// (rounded up, at least 1) and an OAuth body with `temporarily_unavailable`, the one code every
/// endpoint may answer with for a transient refusal.
///
/// Never a 401: MCP clients answer a 401 by starting a new authorization, which would turn a
/// throttled client into a flood of sign-ins.
pub fn too_many_requests(retry_after: std::time::Duration) -> Response<Bytes> {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = json(
        StatusCode::TOO_MANY_REQUESTS,
        &ErrorBody::new(
            ServerErrorCode::TemporarilyUnavailable,
            Some(format!("too many requests; retry after {seconds} s")),
        ),
        Caching::NoStorePragma,
    );
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_answers_429_with_whole_seconds_to_wait() {
        for (wait, header) in [(0, "1"), (1, "1"), (1500, "2"), (60_000, "60")] {
            let response = too_many_requests(std::time::Duration::from_millis(wait));
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[http::header::RETRY_AFTER], header);
            assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
        }
    }

    #[test]
    fn token_errors_carry_no_store_and_pragma() {
        let response = oauth_error(TokenErrorCode::InvalidGrant, Some("expired".into()));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[PRAGMA], "no-cache");
        assert_eq!(
            response.body().as_ref(),
            br#"{"error":"invalid_grant","error_description":"expired"}"#
        );
    }

    #[test]
    fn statuses_per_code() {
        assert_eq!(
            TokenErrorCode::InvalidClient.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            TokenErrorCode::InvalidTarget.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            BearerErrorCode::InsufficientScope.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            BearerErrorCode::InvalidToken.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            RegistrationErrorCode::InvalidRedirectUri.status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn provider_failures_hide_their_cause() {
        let response = provider_failure(&ProviderError::unavailable("db password is hunter2"));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.body().as_ref(),
            br#"{"error":"temporarily_unavailable"}"#
        );
        let response = provider_failure(&ProviderError::internal("boom"));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.body().as_ref(), br#"{"error":"server_error"}"#);
    }

    #[test]
    fn oversize_and_wrong_method() {
        let response = payload_too_large(10);
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let response = method_not_allowed("GET, POST");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[http::header::ALLOW], "GET, POST");
    }
}
