//! Server metadata documents: RFC 8414 (authorization server) and RFC 9728 (protected resource).

use serde::{Deserialize, Serialize};

use crate::vocab::{CodeChallengeMethod, GrantType, ResponseType, TokenEndpointAuthMethod};

/// Authorization server metadata, RFC 8414 §2, with the members the MCP Python SDK models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthMetadata {
    /// The issuer identifier, byte for byte (RFC 8414 §3.3 compares it exactly).
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The dynamic client registration endpoint (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// The JWK Set that verifies the server's signed access tokens (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Scopes this server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Supported response types.
    #[serde(default = "default_response_types")]
    pub response_types_supported: Vec<ResponseType>,
    /// Supported response modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<String>>,
    /// Supported grant types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<GrantType>>,
    /// Supported token-endpoint authentication methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<TokenEndpointAuthMethod>>,
    /// JWS algorithms for `private_key_jwt` at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// Human-readable documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
    /// Supported UI locales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_locales_supported: Option<Vec<String>>,
    /// Policy document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_policy_uri: Option<String>,
    /// Terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_tos_uri: Option<String>,
    /// The revocation endpoint (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Authentication methods at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_methods_supported: Option<Vec<TokenEndpointAuthMethod>>,
    /// JWS algorithms at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// The introspection endpoint (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// Authentication methods at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_methods_supported: Option<Vec<TokenEndpointAuthMethod>>,
    /// JWS algorithms at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// PKCE methods (always `["S256"]` here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<CodeChallengeMethod>>,
    /// Whether URL client ids resolve to Client ID Metadata Documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
    /// RFC 9207 §3: authorization responses carry `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// Authorization grant profiles, e.g. `urn:ietf:params:oauth:grant-profile:id-jag` (SEP-990).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_grant_profiles_supported: Option<Vec<String>>,
}

fn default_response_types() -> Vec<ResponseType> {
    vec![ResponseType::Code]
}

impl OAuthMetadata {
    /// Metadata with the three required endpoints and nothing else.
    pub fn new(
        issuer: impl Into<String>,
        authorization_endpoint: impl Into<String>,
        token_endpoint: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            authorization_endpoint: authorization_endpoint.into(),
            token_endpoint: token_endpoint.into(),
            registration_endpoint: None,
            jwks_uri: None,
            scopes_supported: None,
            response_types_supported: default_response_types(),
            response_modes_supported: None,
            grant_types_supported: None,
            token_endpoint_auth_methods_supported: None,
            token_endpoint_auth_signing_alg_values_supported: None,
            service_documentation: None,
            ui_locales_supported: None,
            op_policy_uri: None,
            op_tos_uri: None,
            revocation_endpoint: None,
            revocation_endpoint_auth_methods_supported: None,
            revocation_endpoint_auth_signing_alg_values_supported: None,
            introspection_endpoint: None,
            introspection_endpoint_auth_methods_supported: None,
            introspection_endpoint_auth_signing_alg_values_supported: None,
            code_challenge_methods_supported: None,
            client_id_metadata_document_supported: None,
            authorization_response_iss_parameter_supported: None,
            authorization_grant_profiles_supported: None,
        }
    }
}

/// Protected resource metadata, RFC 9728 §2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier.
    pub resource: String,
    /// Authorization servers that issue tokens for this resource; never empty.
    #[serde(deserialize_with = "non_empty")]
    pub authorization_servers: Vec<String>,
    /// The resource's JWKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Scopes the resource uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// How bearer tokens may be sent; MCP allows only the header.
    #[serde(
        default = "default_bearer_methods",
        skip_serializing_if = "Option::is_none"
    )]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// JWS algorithms the resource signs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_signing_alg_values_supported: Option<Vec<String>>,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// Policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy_uri: Option<String>,
    /// Terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tos_uri: Option<String>,
    /// RFC 8705 certificate-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// RFC 9396 authorization details types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details_types_supported: Option<Vec<String>>,
    /// RFC 9449 DPoP algorithms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 9449 DPoP requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens_required: Option<bool>,
}

fn default_bearer_methods() -> Option<Vec<String>> {
    Some(vec!["header".to_owned()])
}

fn non_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let servers = Vec::<String>::deserialize(deserializer)?;
    if servers.is_empty() {
        return Err(serde::de::Error::custom(
            "authorization_servers must name at least one server",
        ));
    }
    Ok(servers)
}

/// Why an authorization server's metadata document did not name what was looked for
/// ([`issuer_metadata_member`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataMemberError {
    /// The document is not a JSON object.
    #[error("the metadata is not a JSON object")]
    NotJson,
    /// The document's `issuer` is not the issuer asked about.
    #[error("the metadata's issuer is not the configured issuer")]
    OtherIssuer,
    /// The document has no such string member.
    #[error("the metadata names no such member")]
    Missing,
}

impl MetadataMemberError {
    /// The reason as a static message, for error types that carry one.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotJson => "the metadata is not a JSON object",
            Self::OtherIssuer => "the metadata's issuer is not the configured issuer",
            Self::Missing => "the metadata names no such member",
        }
    }
}

/// Where `issuer`'s metadata may be, in the order to try: RFC 8414 §3.1's path-inserted
/// location, then OpenID Connect Discovery 1.0 §4's path-appended one.
pub fn authorization_server_metadata_urls(issuer: &crate::IssuerUrl) -> [String; 2] {
    [
        crate::build_authorization_server_metadata_url(issuer),
        format!(
            "{}/.well-known/openid-configuration",
            issuer.as_str().trim_end_matches('/')
        ),
    ]
}

/// The string member `member` (`jwks_uri`, `introspection_endpoint`, …) of `document`, an
/// authorization server's metadata, provided the document is `issuer`'s: RFC 8414 §3.3 — a
/// document naming another issuer is refused, or whoever serves it could name other keys or
/// endpoints.
pub fn issuer_metadata_member(
    document: &[u8],
    issuer: &str,
    member: &str,
) -> Result<String, MetadataMemberError> {
    let metadata: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(document).map_err(|_| MetadataMemberError::NotJson)?;
    if metadata.get("issuer").and_then(serde_json::Value::as_str) != Some(issuer) {
        return Err(MetadataMemberError::OtherIssuer);
    }
    metadata
        .get(member)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or(MetadataMemberError::Missing)
}

/// A protected-resource metadata document cannot be built without an authorization server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protected resource metadata needs at least one authorization server")]
pub struct NoAuthorizationServer;

impl ProtectedResourceMetadata {
    /// Metadata for `resource` served by `authorization_servers` (at least one), with
    /// `bearer_methods_supported = ["header"]`.
    pub fn new(
        resource: impl Into<String>,
        authorization_servers: Vec<String>,
    ) -> Result<Self, NoAuthorizationServer> {
        if authorization_servers.is_empty() {
            return Err(NoAuthorizationServer);
        }
        Ok(Self {
            resource: resource.into(),
            authorization_servers,
            jwks_uri: None,
            scopes_supported: None,
            bearer_methods_supported: default_bearer_methods(),
            resource_signing_alg_values_supported: None,
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            tls_client_certificate_bound_access_tokens: None,
            authorization_details_types_supported: None,
            dpop_signing_alg_values_supported: None,
            dpop_bound_access_tokens_required: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn as_metadata_round_trips_every_member() {
        let value = json!({
            "issuer": "https://as.example",
            "authorization_endpoint": "https://as.example/authorize",
            "token_endpoint": "https://as.example/token",
            "registration_endpoint": "https://as.example/register",
            "scopes_supported": ["a"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "service_documentation": "https://as.example/docs",
            "ui_locales_supported": ["en"],
            "op_policy_uri": "https://as.example/p",
            "op_tos_uri": "https://as.example/t",
            "revocation_endpoint": "https://as.example/revoke",
            "revocation_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "introspection_endpoint": "https://as.example/introspect",
            "introspection_endpoint_auth_methods_supported": ["none"],
            "introspection_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "authorization_grant_profiles_supported": ["urn:ietf:params:oauth:grant-profile:id-jag"],
        });
        let parsed: OAuthMetadata = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
    }

    #[test]
    fn as_metadata_keeps_pathless_issuer_exact() {
        let meta = OAuthMetadata::new(
            "https://as.example",
            "https://as.example/authorize",
            "https://as.example/token",
        );
        let value = serde_json::to_value(&meta).unwrap();
        assert_eq!(value["issuer"], "https://as.example");
        assert_eq!(value["response_types_supported"], json!(["code"]));
        assert!(value.get("registration_endpoint").is_none());
    }

    #[test]
    fn resource_metadata_defaults_bearer_methods_to_header() {
        let parsed: ProtectedResourceMetadata = serde_json::from_value(json!({
            "resource": "https://rs.example/mcp",
            "authorization_servers": ["https://as.example"],
        }))
        .unwrap();
        assert_eq!(
            parsed.bearer_methods_supported,
            Some(vec!["header".to_owned()])
        );
        let built = ProtectedResourceMetadata::new(
            "https://rs.example/mcp",
            vec!["https://as.example".into()],
        )
        .unwrap();
        assert_eq!(built, parsed);
        assert_eq!(
            serde_json::to_value(&built).unwrap(),
            json!({"resource": "https://rs.example/mcp", "authorization_servers": ["https://as.example"], "bearer_methods_supported": ["header"]})
        );
    }

    #[test]
    fn resource_metadata_needs_an_authorization_server() {
        assert!(
            serde_json::from_value::<ProtectedResourceMetadata>(json!({
                "resource": "https://rs.example/mcp", "authorization_servers": []
            }))
            .is_err()
        );
        assert!(
            serde_json::from_value::<ProtectedResourceMetadata>(
                json!({"resource": "https://rs.example/mcp"})
            )
            .is_err()
        );
        assert_eq!(
            ProtectedResourceMetadata::new("https://rs", vec![]),
            Err(NoAuthorizationServer)
        );
    }
}

#[cfg(test)]
mod member_tests {
    use super::*;

    #[test]
    fn a_member_is_read_only_from_the_issuers_own_document() {
        let document =
            br#"{"issuer": "https://as.example", "jwks_uri": "https://as.example/keys"}"#;
        assert_eq!(
            issuer_metadata_member(document, "https://as.example", "jwks_uri").unwrap(),
            "https://as.example/keys"
        );
        for (document, issuer, member, error) in [
            (
                &document[..],
                "https://as.example/",
                "jwks_uri",
                MetadataMemberError::OtherIssuer,
            ),
            (
                &document[..],
                "https://as.example",
                "introspection_endpoint",
                MetadataMemberError::Missing,
            ),
            (
                &b"[]"[..],
                "https://as.example",
                "jwks_uri",
                MetadataMemberError::NotJson,
            ),
        ] {
            assert_eq!(issuer_metadata_member(document, issuer, member), Err(error));
        }
        let issuer = crate::validate_issuer_url("https://as.example/tenant").unwrap();
        assert_eq!(
            authorization_server_metadata_urls(&issuer),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant",
                "https://as.example/tenant/.well-known/openid-configuration"
            ]
        );
    }
}
