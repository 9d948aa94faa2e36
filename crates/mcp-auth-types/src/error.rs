//! Error codes per endpoint and the JSON error body.
//!
//! Each endpoint has its own enum holding exactly the codes its RFC lets it send, so a handler
//! cannot emit, say, `invalid_grant` from the authorization endpoint. HTTP status codes are not
//! chosen here; that is the handlers' business.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant,)*
        }

        impl $name {
            /// The wire form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

error_codes!(
    /// Authorization endpoint errors: RFC 6749 §4.1.2.1, plus `invalid_target` (RFC 8707 §2).
    AuthorizeErrorCode {
        /// Malformed request.
        InvalidRequest => "invalid_request",
        /// The client may not use this flow.
        UnauthorizedClient => "unauthorized_client",
        /// The resource owner or server denied the request.
        AccessDenied => "access_denied",
        /// The response type is not supported.
        UnsupportedResponseType => "unsupported_response_type",
        /// The scope is invalid, unknown or malformed.
        InvalidScope => "invalid_scope",
        /// An unexpected condition on the server.
        ServerError => "server_error",
        /// The server is temporarily unable to handle the request.
        TemporarilyUnavailable => "temporarily_unavailable",
        /// The resource indicator is invalid or not served here (RFC 8707 §2).
        InvalidTarget => "invalid_target",
    }
);

error_codes!(
    /// Token endpoint errors: RFC 6749 §5.2, plus `invalid_target` (RFC 8707 §2).
    TokenErrorCode {
        /// Malformed request.
        InvalidRequest => "invalid_request",
        /// Client authentication failed.
        InvalidClient => "invalid_client",
        /// The grant is invalid, expired, revoked or was issued to another client.
        InvalidGrant => "invalid_grant",
        /// The client may not use this grant type.
        UnauthorizedClient => "unauthorized_client",
        /// The grant type is not supported by this server.
        UnsupportedGrantType => "unsupported_grant_type",
        /// The scope is invalid or exceeds the grant.
        InvalidScope => "invalid_scope",
        /// The resource indicator is invalid or not served here (RFC 8707 §2).
        InvalidTarget => "invalid_target",
    }
);

error_codes!(
    /// Dynamic client registration errors, RFC 7591 §3.2.2.
    RegistrationErrorCode {
        /// A redirect URI is invalid.
        InvalidRedirectUri => "invalid_redirect_uri",
        /// A metadata member is invalid.
        InvalidClientMetadata => "invalid_client_metadata",
        /// The software statement is invalid.
        InvalidSoftwareStatement => "invalid_software_statement",
        /// The software statement is not approved.
        UnapprovedSoftwareStatement => "unapproved_software_statement",
    }
);

error_codes!(
    /// Revocation endpoint errors: RFC 7009 §2.2.1 (`unsupported_token_type`) and the RFC 6749
    /// §5.2 codes it reuses for malformed requests and client authentication.
    RevocationErrorCode {
        /// Malformed request.
        InvalidRequest => "invalid_request",
        /// Client authentication failed.
        InvalidClient => "invalid_client",
        /// The server cannot revoke this type of token.
        UnsupportedTokenType => "unsupported_token_type",
    }
);

error_codes!(
    /// Introspection endpoint errors: RFC 7662 §2.3 reuses the RFC 6749 §5.2 codes for a
    /// malformed request and for a caller that is not an authenticated confidential client.
    IntrospectionErrorCode {
        /// Malformed request.
        InvalidRequest => "invalid_request",
        /// Client authentication failed, or the client may not introspect.
        InvalidClient => "invalid_client",
    }
);

error_codes!(
    /// Bearer-token errors of a protected resource, RFC 6750 §3.1.
    BearerErrorCode {
        /// Malformed request.
        InvalidRequest => "invalid_request",
        /// The token is expired, revoked, malformed or for another resource.
        InvalidToken => "invalid_token",
        /// The token lacks a required scope.
        InsufficientScope => "insufficient_scope",
    }
);

error_codes!(
    /// Codes for failures of the server itself (RFC 6749 §4.1.2.1 defines them for the
    /// authorization endpoint; the other endpoints use them with a 5xx status by common practice).
    ServerErrorCode {
        /// An unexpected condition.
        ServerError => "server_error",
        /// A dependency, such as storage, is unavailable; retrying may succeed.
        TemporarilyUnavailable => "temporarily_unavailable",
    }
);

/// An OAuth error response body (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<C> {
    /// The error code.
    pub error: C,
    /// Human-readable detail for the client developer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page about the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl<C> ErrorBody<C> {
    /// A body with a code and an optional description.
    pub fn new(error: C, error_description: Option<String>) -> Self {
        Self {
            error,
            error_description,
            error_uri: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_serialise_to_rfc_strings() {
        assert_eq!(
            serde_json::to_value(TokenErrorCode::UnsupportedGrantType).unwrap(),
            "unsupported_grant_type"
        );
        assert_eq!(AuthorizeErrorCode::InvalidTarget.as_str(), "invalid_target");
        assert_eq!(
            RegistrationErrorCode::InvalidRedirectUri.to_string(),
            "invalid_redirect_uri"
        );
        assert_eq!(
            RevocationErrorCode::UnsupportedTokenType.as_str(),
            "unsupported_token_type"
        );
        assert_eq!(
            BearerErrorCode::InsufficientScope.as_str(),
            "insufficient_scope"
        );
    }

    #[test]
    fn unknown_codes_do_not_parse_into_an_endpoint_enum() {
        assert!(serde_json::from_value::<TokenErrorCode>(json!("access_denied")).is_err());
        assert!(serde_json::from_value::<AuthorizeErrorCode>(json!("invalid_grant")).is_err());
    }

    #[test]
    fn error_body_round_trip() {
        let body = ErrorBody::new(TokenErrorCode::InvalidGrant, Some("expired".into()));
        let value = serde_json::to_value(&body).unwrap();
        assert_eq!(
            value,
            json!({"error": "invalid_grant", "error_description": "expired"})
        );
        let back: ErrorBody<TokenErrorCode> = serde_json::from_value(value).unwrap();
        assert_eq!(back, body);
        let bare =
            serde_json::to_value(ErrorBody::new(TokenErrorCode::InvalidClient, None)).unwrap();
        assert_eq!(bare, json!({"error": "invalid_client"}));
    }
}
