//! [`McpResource`]: an MCP server that is a resource server only, for tokens of authorization
//! servers elsewhere (an enterprise's Keycloak, Auth0, Okta, Entra ID, or mcp-auth on another
//! host). No `/authorize`, `/token` or `/register`: only the protected-resource metadata that
//! names those issuers (RFC 9728) and the bearer check.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use http::Method;
use mcp_auth_core::{ConfigError, TokenVerifier};
use mcp_auth_handlers::bearer::BearerAuth;
use mcp_auth_handlers::limits::MAX_FORM_BODY_BYTES;
use mcp_auth_handlers::metadata::{
    ProtectedResourceMetadataHandler, protected_resource_metadata_paths,
};
use mcp_auth_types::{
    ProtectedResourceMetadata, is_resource_indicator, resource_url_from_server_url,
};

use crate::adapter::call;
use crate::bearer::RequireBearerLayer;

/// A protected MCP endpoint whose tokens come from other authorization servers.
///
/// ```
/// use std::sync::Arc;
///
/// use axum::{Router, routing::post};
/// use mcp_auth_axum::McpResource;
/// use mcp_auth_axum::core::TokenVerifier;
///
/// async fn mcp() {}
///
/// // `verifier`: for example `mcp_auth_jwt::JwtAccessTokenVerifier` for the issuer.
/// fn app(verifier: Arc<dyn TokenVerifier>) -> Result<Router, Box<dyn std::error::Error>> {
///     let resource = McpResource::builder("https://mcp.example.com/mcp", verifier)
///         .authorization_server("https://login.example.com/realms/acme")
///         .required_scopes(["mcp:tools"])
///         .build()?;
///     Ok(Router::new()
///         .route("/mcp", post(mcp))
///         .route_layer(resource.require_bearer())
///         .merge(resource.router())) // /.well-known/oauth-protected-resource[/mcp]
/// }
/// ```
#[derive(Clone)]
pub struct McpResource {
    bearer: RequireBearerLayer,
    metadata: ProtectedResourceMetadata,
}

impl std::fmt::Debug for McpResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpResource")
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// Builder for [`McpResource`].
#[must_use]
pub struct McpResourceBuilder {
    resource: String,
    verifier: Arc<dyn TokenVerifier>,
    authorization_servers: Vec<String>,
    required_scopes: Vec<String>,
    resource_name: Option<String>,
}

impl std::fmt::Debug for McpResourceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpResourceBuilder")
            .field("resource", &self.resource)
            .field("authorization_servers", &self.authorization_servers)
            .finish_non_exhaustive()
    }
}

impl McpResource {
    /// Starts configuring the resource `resource` (the MCP endpoint's URL, which tokens must
    /// name as their audience), whose tokens `verifier` checks.
    pub fn builder(
        resource: impl Into<String>,
        verifier: Arc<dyn TokenVerifier>,
    ) -> McpResourceBuilder {
        McpResourceBuilder {
            resource: resource.into(),
            verifier,
            authorization_servers: Vec::new(),
            required_scopes: Vec::new(),
            resource_name: None,
        }
    }

    /// The bearer layer: the token verified, its audience this resource, the required scopes
    /// held (403 naming them otherwise), and a 401 pointing at the resource metadata.
    pub fn require_bearer(&self) -> RequireBearerLayer {
        self.bearer.clone()
    }

    /// The protected-resource metadata routes (RFC 9728 §3.1 and the root fallback), open to
    /// browsers (CORS).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        protected_resource_router(&self.metadata, MAX_FORM_BODY_BYTES)
    }

    /// The metadata served.
    pub fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.metadata
    }
}

impl McpResourceBuilder {
    /// An authorization server whose tokens this resource accepts, named in the metadata
    /// (its issuer identifier; at least one, repeatable).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Scopes every request needs (advertised as `scopes_supported`).
    pub fn required_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The human-readable `resource_name` of the metadata.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<McpResource, ConfigError> {
        if !is_resource_indicator(&self.resource) {
            return Err(ConfigError::Invalid(
                "the resource must be an absolute http or https URL without a fragment",
            ));
        }
        for issuer in &self.authorization_servers {
            mcp_auth_types::validate_issuer_url(issuer).map_err(|_| {
                ConfigError::Invalid("an authorization server is not a valid issuer")
            })?;
        }
        let resource = resource_url_from_server_url(&self.resource);
        let mut metadata =
            ProtectedResourceMetadata::new(resource.as_str(), self.authorization_servers).map_err(
                |_| ConfigError::Invalid("at least one authorization server is required"),
            )?;
        metadata.scopes_supported =
            (!self.required_scopes.is_empty()).then(|| self.required_scopes.clone());
        metadata.bearer_methods_supported = Some(vec!["header".to_owned()]);
        metadata.resource_name = self.resource_name;
        let bearer =
            BearerAuth::new(self.verifier, &resource).required_scopes(self.required_scopes);
        Ok(McpResource {
            bearer: RequireBearerLayer::new(bearer),
            metadata,
        })
    }
}

/// The routes serving `document` at its RFC 9728 paths, with CORS for browser clients.
pub(crate) fn protected_resource_router<S: Clone + Send + Sync + 'static>(
    document: &ProtectedResourceMetadata,
    body_limit: usize,
) -> Router<S> {
    let cors = crate::auth::any_origin_cors(
        &[Method::GET, Method::OPTIONS],
        &[crate::auth::MCP_PROTOCOL_VERSION],
    );
    let handler = Arc::new(ProtectedResourceMetadataHandler::new(document));
    let mut router = Router::new();
    for path in protected_resource_metadata_paths(&document.resource) {
        let handler = Arc::clone(&handler);
        router =
            router.route(
                &path,
                any(move |req: Request| async move {
                    call(req, body_limit, |r| handler.handle(r)).await
                })
                .layer(cors.clone()),
            );
    }
    router
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use mcp_auth_core::{MemoryStore, ProviderTokenVerifier, StoreProvider};
    use tower::ServiceExt as _;

    use super::*;

    fn verifier() -> Arc<dyn TokenVerifier> {
        let provider = StoreProvider::builder(MemoryStore::new(), "https://as.example")
            .build()
            .expect("provider");
        Arc::new(ProviderTokenVerifier::new(Arc::new(provider)))
    }

    #[tokio::test]
    async fn the_metadata_names_every_authorization_server_at_both_paths() {
        let resource = McpResource::builder("https://MCP.example/mcp", verifier())
            .authorization_server("https://as.example")
            .authorization_server("https://login.example/realms/acme")
            .required_scopes(["mcp:tools"])
            .build()
            .expect("resource");
        let app: Router = resource.router();
        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
        ] {
            let response = app
                .clone()
                .oneshot(http::Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let document: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(document["resource"], "https://mcp.example/mcp");
            assert_eq!(
                document["authorization_servers"],
                serde_json::json!(["https://as.example", "https://login.example/realms/acme"])
            );
            assert_eq!(
                document["scopes_supported"],
                serde_json::json!(["mcp:tools"])
            );
        }
    }

    #[test]
    fn a_resource_needs_an_authorization_server_and_a_url() {
        let cases = [
            McpResource::builder("https://mcp.example/mcp", verifier()),
            McpResource::builder("mcp", verifier()).authorization_server("https://as.example"),
            McpResource::builder("https://mcp.example/mcp", verifier())
                .authorization_server("not a url"),
        ];
        for builder in cases {
            assert!(builder.build().is_err());
        }
    }
}
