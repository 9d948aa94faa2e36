//! Metadata documents and where they are served: authorization server metadata (RFC 8414, the
//! Python SDK's `build_metadata` and `MetadataHandler`) and protected resource metadata
//! (RFC 9728, `create_protected_resource_routes` and `ProtectedResourceMetadataHandler`).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use mcp_auth_core::{AuthSettings, Capabilities};
use mcp_auth_types::{
    CodeChallengeMethod, IssuerUrl, OAuthMetadata, ProtectedResourceMetadata, ResponseType,
    ServerErrorCode, TokenEndpointAuthMethod, build_resource_metadata_url,
};
use serde::Serialize;

use crate::response::{self, Caching, Status as _};

/// Where the authorization endpoint is mounted, relative to the issuer.
pub const AUTHORIZATION_PATH: &str = "/authorize";
/// Where the token endpoint is mounted, relative to the issuer.
pub const TOKEN_PATH: &str = "/token";
/// Where the registration endpoint is mounted, relative to the issuer.
pub const REGISTRATION_PATH: &str = "/register";
/// Where the revocation endpoint is mounted, relative to the issuer.
pub const REVOCATION_PATH: &str = "/revoke";
/// Where the introspection endpoint is mounted, relative to the issuer.
pub const INTROSPECTION_PATH: &str = "/introspect";

/// The RFC 8414 §3 well-known suffix.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// The OpenID Connect Discovery 1.0 §4 well-known suffix.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// The RFC 9728 §3 well-known suffix.
pub const OAUTH_PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// The authorization server metadata (RFC 8414 §2) these handlers implement.
///
/// Departures from the Python SDK's `build_metadata`:
/// - `issuer` and every URL are the configured strings, not re-serialised: a path-less issuer
///   stays without the trailing slash pydantic adds, because clients compare `issuer` byte for
///   byte with the `iss` of authorization responses (RFC 8414 §3.3, RFC 9207 §2.4);
/// - `none` is listed among the authentication methods when public clients may register or
///   URL client ids resolve (metadata documents describe public clients); the Python SDK
///   omits it although its clients register as `none`;
/// - grants, authentication methods and Client ID Metadata Documents are the provider's
///   [`Capabilities`], so nothing is advertised that the token endpoint would refuse;
/// - `authorization_response_iss_parameter_supported` is `true`: the authorization endpoint puts
///   `iss` on every redirect (RFC 9207 §3).
pub fn build_metadata(settings: &AuthSettings, capabilities: &Capabilities) -> OAuthMetadata {
    let issuer = &settings.issuer_url;
    let registration = &settings.client_registration_options;
    let mut metadata = OAuthMetadata::new(
        issuer.as_str(),
        issuer.endpoint(AUTHORIZATION_PATH),
        issuer.endpoint(TOKEN_PATH),
    );
    metadata.scopes_supported = registration.valid_scopes.clone();
    metadata.response_types_supported = vec![ResponseType::Code];
    metadata.grant_types_supported = Some(capabilities.grant_types().to_vec());
    let profiles = capabilities.authorization_grant_profiles();
    metadata.authorization_grant_profiles_supported = (!profiles.is_empty()).then_some(profiles);

    let auth_methods = capabilities
        .token_endpoint_auth_methods(registration.enabled && registration.allow_public_clients);
    // RFC 8414 §2: `token_endpoint_auth_signing_alg_values_supported` is REQUIRED when
    // `private_key_jwt` is listed.
    let signing_algs = capabilities.client_assertion_signing_algs();
    let signing_algs = (!signing_algs.is_empty()).then(|| signing_algs.to_vec());
    metadata.token_endpoint_auth_methods_supported = Some(auth_methods.clone());
    metadata.token_endpoint_auth_signing_alg_values_supported = signing_algs.clone();
    metadata.code_challenge_methods_supported = Some(vec![CodeChallengeMethod::S256]);
    metadata.authorization_response_iss_parameter_supported = Some(true);
    if capabilities.supports_client_id_metadata_documents() {
        metadata.client_id_metadata_document_supported = Some(true);
    }
    if capabilities.supports_signed_access_tokens() {
        metadata.jwks_uri = Some(issuer.endpoint(crate::jwks::JWKS_PATH));
    }
    metadata.service_documentation = settings.service_documentation_url.clone();

    if registration.enabled {
        metadata.registration_endpoint = Some(issuer.endpoint(REGISTRATION_PATH));
    }
    if settings.revocation_options.enabled {
        metadata.revocation_endpoint = Some(issuer.endpoint(REVOCATION_PATH));
        // The revocation endpoint authenticates clients exactly as the token endpoint does.
        metadata.revocation_endpoint_auth_methods_supported = Some(auth_methods.clone());
        metadata.revocation_endpoint_auth_signing_alg_values_supported = signing_algs.clone();
    }
    if settings.introspection_options.enabled {
        metadata.introspection_endpoint = Some(issuer.endpoint(INTROSPECTION_PATH));
        // Confidential clients only: a public client proves nothing about itself.
        metadata.introspection_endpoint_auth_methods_supported = Some(
            auth_methods
                .into_iter()
                .filter(|method| *method != TokenEndpointAuthMethod::None)
                .collect(),
        );
        metadata.introspection_endpoint_auth_signing_alg_values_supported = signing_algs;
    }
    metadata
}

/// The paths (on the issuer's origin) at which the authorization server metadata is served.
///
/// - `/.well-known/oauth-authorization-server`, where the Python SDK serves it and where
///   clients of the 2025-03-26 MCP revision look;
/// - for an issuer with a path, its RFC 8414 §3.1 location: the suffix inserted between the
///   host and the path (`/.well-known/oauth-authorization-server/tenant`);
/// - `/.well-known/openid-configuration`, and for an issuer with a path both the path-inserted
///   form the MCP specification probes and the path-appended form of OpenID Connect
///   Discovery 1.0 §4 (`/tenant/.well-known/openid-configuration`).
///
/// The paths are distinct and listed in that order.
pub fn authorization_server_metadata_paths(issuer: &IssuerUrl) -> Vec<String> {
    let path = issuer.path();
    let mut paths = vec![OAUTH_AUTHORIZATION_SERVER.to_owned()];
    if !path.is_empty() {
        // The path of `build_authorization_server_metadata_url(issuer)`.
        paths.push(format!("{OAUTH_AUTHORIZATION_SERVER}{path}"));
    }
    paths.push(OPENID_CONFIGURATION.to_owned());
    if !path.is_empty() {
        paths.push(format!("{OPENID_CONFIGURATION}{path}"));
        paths.push(format!("{path}{OPENID_CONFIGURATION}"));
    }
    paths
}

/// The protected resource metadata (RFC 9728 §2) of `resource`, which this authorization
/// server protects: `resource` exactly as given, `authorization_servers` = the issuer,
/// `scopes_supported` = the required scopes (omitted when there are none), and
/// `bearer_methods_supported = ["header"]` (the MCP specification forbids tokens in the query).
///
/// Set `resource_name` and `resource_documentation` on the result as needed.
///
/// Unlike the Python SDK, which lets pydantic add a trailing slash, `resource` and the issuer
/// are kept byte for byte: RFC 9728 §3.3 requires `resource` to be identical to the resource
/// identifier the client derived the metadata URL from, and RFC 8414 §3.3 compares issuers
/// exactly.
pub fn build_protected_resource_metadata(
    settings: &AuthSettings,
    resource: &str,
) -> ProtectedResourceMetadata {
    let servers = vec![settings.issuer_url.as_str().to_owned()];
    let Ok(mut metadata) = ProtectedResourceMetadata::new(resource, servers) else {
        // `new` refuses only an empty list of authorization servers.
        unreachable!("a one-element list of authorization servers is not empty")
    };
    metadata.scopes_supported =
        (!settings.required_scopes.is_empty()).then(|| settings.required_scopes.clone());
    metadata.bearer_methods_supported = Some(vec!["header".to_owned()]);
    metadata
}

/// The paths (on the resource's origin) at which the metadata of `resource` is served: its
/// RFC 9728 §3.1 location (`/.well-known/oauth-protected-resource/mcp` for
/// `https://host/mcp`) and the root `/.well-known/oauth-protected-resource`.
///
/// The Python SDK serves only the first and answers 404 at the root for a resource with a
/// path. The root is served too because the MCP specification has clients fall back to it
/// when the path-inserted URL fails, and a deployment with one resource loses nothing by
/// answering there. A server with several resources serves the root for its primary one.
pub fn protected_resource_metadata_paths(resource: &str) -> Vec<String> {
    let url = build_resource_metadata_url(resource);
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap_or_else(|| OAUTH_PROTECTED_RESOURCE.to_owned());
    let mut paths = vec![path];
    if paths[0] != OAUTH_PROTECTED_RESOURCE {
        paths.push(OAUTH_PROTECTED_RESOURCE.to_owned());
    }
    paths
}

/// A JSON document serialised once and served to every `GET` and `HEAD`.
#[derive(Debug, Clone)]
struct Document {
    status: StatusCode,
    body: Bytes,
}

impl Document {
    fn new<T: Serialize>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status: StatusCode::OK,
                body: Bytes::from(body),
            },
            // Metadata is strings, lists and booleans; serialising it cannot fail. Should it
            // anyway, every request gets a server error rather than the process a panic.
            Err(error) => {
                tracing::error!(%error, "failed to serialise a metadata document");
                Self {
                    status: ServerErrorCode::ServerError.status(),
                    body: Bytes::from_static(br#"{"error":"server_error"}"#),
                }
            }
        }
    }

    fn serve(&self, request: &Request<Bytes>) -> Response<Bytes> {
        let body = match *request.method() {
            Method::GET => self.body.clone(),
            // RFC 9110 §9.3.2: the same headers as GET, no content.
            Method::HEAD => Bytes::new(),
            _ => return response::method_not_allowed("GET, HEAD"),
        };
        let caching = if self.status.is_success() {
            Caching::PublicHour
        } else {
            Caching::NoStore
        };
        response::raw_json(self.status, body, caching)
    }
}

/// Serves authorization server metadata (RFC 8414 §3) at the paths of
/// [`authorization_server_metadata_paths`]: `GET` and `HEAD`, with
/// `Cache-Control: public, max-age=3600` as the Python SDK.
#[derive(Debug, Clone)]
pub struct MetadataHandler {
    document: Document,
}

impl MetadataHandler {
    /// A handler serving `metadata`, usually [`build_metadata`]'s, serialised once here.
    pub fn new(metadata: &OAuthMetadata) -> Self {
        Self {
            document: Document::new(metadata),
        }
    }

    /// Answers a request for the metadata.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        self.document.serve(&request)
    }
}

/// Serves protected resource metadata (RFC 9728 §3) at the paths of
/// [`protected_resource_metadata_paths`]: `GET` and `HEAD`, with
/// `Cache-Control: public, max-age=3600` as the Python SDK.
#[derive(Debug, Clone)]
pub struct ProtectedResourceMetadataHandler {
    document: Document,
}

impl ProtectedResourceMetadataHandler {
    /// A handler serving `metadata`, usually [`build_protected_resource_metadata`]'s,
    /// serialised once here.
    pub fn new(metadata: &ProtectedResourceMetadata) -> Self {
        Self {
            document: Document::new(metadata),
        }
    }

    /// Answers a request for the metadata.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        self.document.serve(&request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_auth_core::{ClientRegistrationOptions, IntrospectionOptions, RevocationOptions};
    use mcp_auth_types::validate_issuer_url;
    use serde_json::{Value, json};

    fn to_json<T: Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap()
    }

    fn issuer_only(issuer: &str) -> AuthSettings {
        AuthSettings::builder(issuer).build().unwrap()
    }

    /// The settings of the Python SDK's `test_auth_integration.py` fixture.
    fn integration_settings() -> AuthSettings {
        AuthSettings::builder("https://auth.example.com")
            .service_documentation_url("https://docs.example.com")
            .client_registration(
                ClientRegistrationOptions::enabled()
                    .valid_scopes(["read", "write", "profile"])
                    .default_scopes(["read", "write"]),
            )
            .revocation(RevocationOptions::enabled())
            .build()
            .unwrap()
    }

    #[test]
    fn metadata_serves_the_issuer_without_a_trailing_slash() {
        let served = to_json(&build_metadata(
            &issuer_only("https://as.example.com"),
            &Capabilities::new(),
        ));
        assert_eq!(served["issuer"], "https://as.example.com");
        assert_eq!(
            served["authorization_endpoint"],
            "https://as.example.com/authorize"
        );
        assert_eq!(served["token_endpoint"], "https://as.example.com/token");
    }

    #[test]
    fn metadata_advertises_client_id_metadata_documents_only_when_enabled() {
        let settings = issuer_only("https://as.example");
        let off = to_json(&build_metadata(&settings, &Capabilities::new()));
        assert!(off.get("client_id_metadata_document_supported").is_none());
        let on = build_metadata(
            &settings,
            &Capabilities::new().client_id_metadata_documents(),
        );
        let on = to_json(&on);
        assert_eq!(on["client_id_metadata_document_supported"], true);
        // Metadata documents describe public clients: `none` is an authentication method.
        assert_eq!(
            on["token_endpoint_auth_methods_supported"],
            json!(["client_secret_post", "client_secret_basic", "none"])
        );
    }

    #[test]
    fn metadata_keeps_a_configured_trailing_slash_and_path() {
        let served = to_json(&build_metadata(
            &issuer_only("https://as.example/tenant/"),
            &Capabilities::new(),
        ));
        assert_eq!(served["issuer"], "https://as.example/tenant/");
        assert_eq!(served["token_endpoint"], "https://as.example/tenant/token");
    }

    /// The Python SDK's `test_metadata_endpoint`, with our corrections: the issuer and the
    /// documentation URL are exact (no added slash), `none` is advertised because public clients
    /// may register, and RFC 9207 support is announced.
    #[test]
    fn full_metadata_document() {
        assert_eq!(
            to_json(&build_metadata(
                &integration_settings(),
                &Capabilities::new()
            )),
            json!({
                "issuer": "https://auth.example.com",
                "authorization_endpoint": "https://auth.example.com/authorize",
                "token_endpoint": "https://auth.example.com/token",
                "registration_endpoint": "https://auth.example.com/register",
                "scopes_supported": ["read", "write", "profile"],
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported":
                    ["client_secret_post", "client_secret_basic", "none"],
                "service_documentation": "https://docs.example.com",
                "revocation_endpoint": "https://auth.example.com/revoke",
                "revocation_endpoint_auth_methods_supported":
                    ["client_secret_post", "client_secret_basic", "none"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": true,
            })
        );
    }

    #[test]
    fn minimal_metadata_document() {
        assert_eq!(
            to_json(&build_metadata(
                &issuer_only("https://as.example"),
                &Capabilities::new()
            )),
            json!({
                "issuer": "https://as.example",
                "authorization_endpoint": "https://as.example/authorize",
                "token_endpoint": "https://as.example/token",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": true,
            })
        );
    }

    #[test]
    fn identity_assertion_adds_the_grant_and_the_id_jag_profile() {
        let served = to_json(&build_metadata(
            &issuer_only("https://as.example"),
            &Capabilities::new().identity_assertion(),
        ));
        assert_eq!(
            served["grant_types_supported"],
            json!([
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer"
            ])
        );
        assert_eq!(
            served["authorization_grant_profiles_supported"],
            json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
        );
    }

    #[test]
    fn client_credentials_and_private_key_jwt_are_advertised_when_enabled() {
        let off = to_json(&build_metadata(
            &issuer_only("https://as.example"),
            &Capabilities::new(),
        ));
        assert!(
            off.get("token_endpoint_auth_signing_alg_values_supported")
                .is_none()
        );
        let settings = AuthSettings::builder("https://as.example")
            .revocation(RevocationOptions::enabled())
            .build()
            .unwrap();
        let capabilities = Capabilities::new()
            .client_credentials()
            .private_key_jwt(["RS256", "ES256"]);
        let served = to_json(&build_metadata(&settings, &capabilities));
        assert_eq!(
            served["grant_types_supported"],
            json!(["authorization_code", "refresh_token", "client_credentials"])
        );
        for (methods, algs) in [
            (
                "token_endpoint_auth_methods_supported",
                "token_endpoint_auth_signing_alg_values_supported",
            ),
            (
                "revocation_endpoint_auth_methods_supported",
                "revocation_endpoint_auth_signing_alg_values_supported",
            ),
        ] {
            assert_eq!(
                served[methods],
                json!([
                    "client_secret_post",
                    "client_secret_basic",
                    "private_key_jwt"
                ])
            );
            assert_eq!(served[algs], json!(["RS256", "ES256"]));
        }
    }

    #[test]
    fn jwks_uri_is_advertised_exactly_when_access_tokens_are_signed() {
        let settings = issuer_only("https://as.example/tenant");
        let opaque = to_json(&build_metadata(&settings, &Capabilities::new()));
        assert!(opaque.get("jwks_uri").is_none());
        let signed = to_json(&build_metadata(
            &settings,
            &Capabilities::new().signed_access_tokens(),
        ));
        assert_eq!(
            signed["jwks_uri"],
            "https://as.example/tenant/.well-known/jwks.json"
        );
    }

    #[test]
    fn introspection_is_advertised_when_enabled_for_confidential_methods_only() {
        let off = to_json(&build_metadata(
            &issuer_only("https://as.example"),
            &Capabilities::new(),
        ));
        assert!(off.get("introspection_endpoint").is_none());
        let settings = AuthSettings::builder("https://as.example")
            .client_registration(ClientRegistrationOptions::enabled())
            .introspection(IntrospectionOptions::enabled())
            .build()
            .unwrap();
        let capabilities = Capabilities::new().private_key_jwt(["ES256"]);
        let served = to_json(&build_metadata(&settings, &capabilities));
        assert_eq!(
            served["introspection_endpoint"],
            "https://as.example/introspect"
        );
        assert_eq!(
            served["introspection_endpoint_auth_methods_supported"],
            json!([
                "client_secret_post",
                "client_secret_basic",
                "private_key_jwt"
            ])
        );
        assert_eq!(
            served["introspection_endpoint_auth_signing_alg_values_supported"],
            json!(["ES256"])
        );
        // The token endpoint still admits public clients.
        assert_eq!(
            served["token_endpoint_auth_methods_supported"],
            json!([
                "client_secret_post",
                "client_secret_basic",
                "none",
                "private_key_jwt"
            ])
        );
    }

    #[test]
    fn none_is_advertised_only_when_public_clients_may_register() {
        let methods = |registration: ClientRegistrationOptions| {
            let settings = AuthSettings::builder("https://as.example")
                .client_registration(registration)
                .build()
                .unwrap();
            build_metadata(&settings, &Capabilities::new()).token_endpoint_auth_methods_supported
        };
        let confidential = Some(vec![
            TokenEndpointAuthMethod::ClientSecretPost,
            TokenEndpointAuthMethod::ClientSecretBasic,
        ]);
        let cases = [
            (ClientRegistrationOptions::enabled(), true),
            (
                ClientRegistrationOptions::enabled().allow_public_clients(false),
                false,
            ),
            (ClientRegistrationOptions::disabled(), false),
            (
                ClientRegistrationOptions::disabled().allow_public_clients(true),
                false,
            ),
        ];
        for (registration, with_none) in cases {
            let mut expected = confidential.clone().unwrap();
            if with_none {
                expected.push(TokenEndpointAuthMethod::None);
            }
            assert_eq!(methods(registration), Some(expected));
        }
    }

    #[test]
    fn as_metadata_paths() {
        let cases: [(&str, &[&str]); 4] = [
            (
                "https://as.example",
                &[
                    "/.well-known/oauth-authorization-server",
                    "/.well-known/openid-configuration",
                ],
            ),
            (
                "https://as.example/",
                &[
                    "/.well-known/oauth-authorization-server",
                    "/.well-known/openid-configuration",
                ],
            ),
            (
                "https://as.example/tenant",
                &[
                    "/.well-known/oauth-authorization-server",
                    "/.well-known/oauth-authorization-server/tenant",
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/tenant",
                    "/tenant/.well-known/openid-configuration",
                ],
            ),
            (
                "http://localhost:8080/a/b/",
                &[
                    "/.well-known/oauth-authorization-server",
                    "/.well-known/oauth-authorization-server/a/b",
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/a/b",
                    "/a/b/.well-known/openid-configuration",
                ],
            ),
        ];
        for (issuer, expected) in cases {
            let issuer = validate_issuer_url(issuer).unwrap();
            let paths = authorization_server_metadata_paths(&issuer);
            assert_eq!(paths, expected, "{issuer}");
            // The RFC 8414 §3.1 location is among them.
            let url = mcp_auth_types::build_authorization_server_metadata_url(&issuer);
            let rfc_path = url.strip_prefix(issuer.origin()).unwrap();
            assert!(paths.iter().any(|p| p == rfc_path), "{issuer}");
        }
    }

    /// The Python SDK's `test_metadata_endpoint_with_path`, without the slashes pydantic adds.
    #[test]
    fn resource_metadata_document() {
        let settings = AuthSettings::builder("https://auth.example.com/authorization")
            .required_scopes(["read", "write"])
            .build()
            .unwrap();
        let mut metadata =
            build_protected_resource_metadata(&settings, "https://example.com/resource");
        metadata.resource_name = Some("Example Resource".to_owned());
        metadata.resource_documentation = Some("https://docs.example.com/resource".to_owned());
        assert_eq!(
            to_json(&metadata),
            json!({
                "resource": "https://example.com/resource",
                "authorization_servers": ["https://auth.example.com/authorization"],
                "scopes_supported": ["read", "write"],
                "resource_name": "Example Resource",
                "resource_documentation": "https://docs.example.com/resource",
                "bearer_methods_supported": ["header"],
            })
        );
    }

    /// The Python SDK's `test_metadata_endpoint_without_path`: the resource is kept as
    /// configured (RFC 9728 §3.3), where pydantic serves `https://example.com/`.
    #[test]
    fn root_resource_metadata_document_omits_absent_members() {
        let settings = issuer_only("https://auth.example.com");
        let metadata = build_protected_resource_metadata(&settings, "https://example.com");
        assert_eq!(
            to_json(&metadata),
            json!({
                "resource": "https://example.com",
                "authorization_servers": ["https://auth.example.com"],
                "bearer_methods_supported": ["header"],
            })
        );
    }

    /// The Python SDK's URL-construction and route-consistency cases, plus the root path we
    /// also serve. Python's `test_metadata_endpoint_root_path_returns_404` is deliberately not
    /// ported: the root is served for clients that fall back to it (MCP specification,
    /// "Protected Resource Metadata Discovery Requirements").
    #[test]
    fn resource_metadata_paths() {
        let root = "/.well-known/oauth-protected-resource";
        let cases: [(&str, &[&str]); 6] = [
            ("https://example.com", &[root]),
            ("https://example.com/", &[root]),
            (
                "https://example.com/mcp",
                &["/.well-known/oauth-protected-resource/mcp", root],
            ),
            (
                "http://localhost:8001/mcp",
                &["/.well-known/oauth-protected-resource/mcp", root],
            ),
            (
                "https://example.com/resource",
                &["/.well-known/oauth-protected-resource/resource", root],
            ),
            (
                "https://example.com/a/b?x=1",
                &["/.well-known/oauth-protected-resource/a/b", root],
            ),
        ];
        for (resource, expected) in cases {
            assert_eq!(
                protected_resource_metadata_paths(resource),
                expected,
                "{resource}"
            );
        }
    }

    /// Each path is the path of the URL the bearer challenge advertises.
    #[test]
    fn first_resource_path_matches_the_advertised_url() {
        for resource in ["https://example.com", "https://example.com/mcp"] {
            let url = build_resource_metadata_url(resource);
            let path = &protected_resource_metadata_paths(resource)[0];
            assert_eq!(url, format!("https://example.com{path}"));
        }
    }

    fn get(method: Method) -> Request<Bytes> {
        Request::builder()
            .method(method)
            .uri("/.well-known/oauth-authorization-server")
            .body(Bytes::from_static(b"ignored"))
            .unwrap()
    }

    #[tokio::test]
    async fn handlers_serve_json_with_an_hour_of_public_caching() {
        let metadata = build_metadata(&integration_settings(), &Capabilities::new());
        let handler = MetadataHandler::new(&metadata);
        let response = handler.handle(get(Method::GET)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
        let served: OAuthMetadata = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(served, metadata);

        let resource = build_protected_resource_metadata(
            &integration_settings(),
            "https://mcp.example.com/mcp",
        );
        let handler = ProtectedResourceMetadataHandler::new(&resource);
        let response = handler.handle(get(Method::GET)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
        let served: ProtectedResourceMetadata = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(served, resource);
    }

    #[tokio::test]
    async fn head_gets_the_headers_without_the_document() {
        let handler = MetadataHandler::new(&build_metadata(
            &integration_settings(),
            &Capabilities::new(),
        ));
        let response = handler.handle(get(Method::HEAD)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
        assert!(response.body().is_empty());
    }

    #[tokio::test]
    async fn other_methods_are_not_allowed() {
        let handler = MetadataHandler::new(&build_metadata(
            &integration_settings(),
            &Capabilities::new(),
        ));
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let response = handler.handle(get(method)).await;
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(response.headers()["allow"], "GET, HEAD");
        }
    }
}
