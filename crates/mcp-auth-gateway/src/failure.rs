//! The gateway's own answers when a request cannot be forwarded: a status and a JSON body
//! naming the failure, never the upstream's address, headers or body.

use axum::body::Body;
use http::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};

/// Why the gateway answered instead of the upstream. Also the `outcome` label of the
/// `mcp_auth_gateway_upstream_requests_total` metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Connection refused, or not opened in time.
    Unreachable,
    /// The connection broke before the response's headers.
    ConnectionLost,
    /// No response headers within the header timeout.
    Timeout,
    /// The upstream answered 401 or 403 to a request this server had authenticated.
    RejectedGateway,
    /// The request body is over the limit.
    TooLarge,
    /// The verified identity cannot be written as a header.
    IdentityNotForwardable,
    /// The upstream answered with a redirect.
    Redirected,
    /// Too many requests are forwarded already.
    Busy,
    /// The principal's upstream credential exists but cannot be had now.
    CredentialUnavailable,
}

impl Failure {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Unreachable => "upstream_unreachable",
            Self::ConnectionLost => "upstream_connection_lost",
            Self::Timeout => "upstream_timeout",
            Self::RejectedGateway => "upstream_rejected_gateway",
            Self::TooLarge => "request_too_large",
            Self::IdentityNotForwardable => "identity_not_forwardable",
            Self::Redirected => "upstream_redirected",
            Self::Busy => "gateway_busy",
            Self::CredentialUnavailable => "upstream_credential_unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::Unreachable => "the upstream MCP server could not be reached",
            Self::ConnectionLost => {
                "the connection to the upstream MCP server broke before it answered"
            }
            Self::Timeout => "the upstream MCP server did not answer in time",
            Self::RejectedGateway => {
                "the upstream MCP server refused the gateway's request; your token is valid"
            }
            Self::TooLarge => "the request body is larger than the gateway accepts",
            Self::IdentityNotForwardable => {
                "the token's subject or client id cannot be forwarded in a header"
            }
            Self::Redirected => "the upstream MCP server answered with a redirect",
            Self::Busy => "the gateway is forwarding as many requests as it may; retry shortly",
            Self::CredentialUnavailable => {
                "your credential for the upstream service cannot be had right now"
            }
        }
    }

    /// The response. `close` asks the client to close the connection, for a request whose
    /// body is left unread.
    pub(crate) fn into_response(self, close: bool) -> Response<Body> {
        let body = serde_json::json!({
            "error": self.code(),
            "error_description": self.description(),
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self == Self::Busy {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(crate::limits::BUSY_RETRY_AFTER),
            );
        }
        if close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
