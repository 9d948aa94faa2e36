//! [`McpAuth`]: the configured authorization server and resource protection, as axum pieces.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use http::{HeaderName, Method};
use mcp_auth_core::{
    AuthSettings, Capabilities, Clock, ConfigError, OAuthAuthorizationServerProvider,
    ProviderTokenVerifier,
};
use mcp_auth_handlers::authorize::AuthorizationHandler;
use mcp_auth_handlers::bearer::BearerAuth;
use mcp_auth_handlers::context::HandlerContext;
use mcp_auth_handlers::introspect::IntrospectionHandler;
use mcp_auth_handlers::jwks::{JWKS_PATH, KeySetHandler};
use mcp_auth_handlers::metadata::{
    MetadataHandler, authorization_server_metadata_paths, build_metadata,
    build_protected_resource_metadata,
};
use mcp_auth_handlers::register::RegistrationHandler;
use mcp_auth_handlers::revoke::RevocationHandler;
use mcp_auth_handlers::token::TokenHandler;
use tower_http::cors::{Any, CorsLayer};

use crate::adapter::call;
use crate::bearer::{DynTokenVerifier, RequireBearerLayer};
use crate::resource::protected_resource_router;

/// The header MCP clients send on every request, which browsers must be allowed to send
/// cross-origin.
pub(crate) const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// CORS for endpoints that browsers may call from any origin, allowing `methods` and
/// `headers`.
///
/// Without `Vary`: every CORS header here is the same whatever the request says (`*` for the
/// origin, fixed lists for methods and headers), so no cache needs to tell requests apart, and
/// tower-http's default `Vary` list would be cloned and joined into a header on every request
/// (axum clones a route's service per request).
pub(crate) fn any_origin_cors(methods: &[Method], headers: &[HeaderName]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(methods.to_vec())
        .allow_headers(headers.to_vec())
        .vary([])
}

/// An MCP authorization server plus the protection of its resource, ready to mount in axum.
///
/// Build it with [`McpAuth::builder`] and [`settings`](McpAuthBuilder::settings); mount
/// [`router`](Self::router) and wrap the MCP endpoint in
/// [`require_bearer`](Self::require_bearer). What the server supports (grants,
/// client-authentication methods, Client ID Metadata Documents) is the provider's
/// [`capabilities`](OAuthAuthorizationServerProvider::capabilities); what the operator allows
/// (registration, revocation, scopes, resources) is the [`AuthSettings`].
pub struct McpAuth<P> {
    provider: Arc<P>,
    ctx: HandlerContext,
    bearer: Option<RequireBearerLayer>,
    resource_name: Option<String>,
}

impl<P> Clone for McpAuth<P> {
    fn clone(&self) -> Self {
        Self {
            provider: Arc::clone(&self.provider),
            ctx: self.ctx.clone(),
            bearer: self.bearer.clone(),
            resource_name: self.resource_name.clone(),
        }
    }
}

impl<P> std::fmt::Debug for McpAuth<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpAuth")
            .field("settings", &self.ctx.settings)
            .field("capabilities", &self.ctx.capabilities)
            .finish_non_exhaustive()
    }
}

/// Builder for [`McpAuth`].
#[must_use]
pub struct McpAuthBuilder<P> {
    provider: Arc<P>,
    settings: Option<AuthSettings>,
    body_limit: Option<usize>,
    clock: Option<Arc<dyn Clock>>,
    resource_name: Option<String>,
}

impl<P> std::fmt::Debug for McpAuthBuilder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpAuthBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<P: OAuthAuthorizationServerProvider> McpAuth<P> {
    /// Starts configuring the authorization layer around `provider`.
    pub fn builder(provider: Arc<P>) -> McpAuthBuilder<P> {
        McpAuthBuilder {
            provider,
            settings: None,
            body_limit: None,
            clock: None,
            resource_name: None,
        }
    }
}

impl<P: OAuthAuthorizationServerProvider> McpAuthBuilder<P> {
    /// The validated settings (required): issuer, resource, scopes, registration and
    /// revocation, built with [`AuthSettings::builder`].
    pub fn settings(mut self, settings: AuthSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// The human-readable `resource_name` of the protected-resource metadata.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// One largest accepted request body for every OAuth endpoint, replacing the per-endpoint
    /// defaults (64 KiB for the form endpoints and for `/register`: see
    /// [`mcp_auth_handlers::limits`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    /// The clock for every expiry check (tests use a manual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the configuration and reads the provider's capabilities.
    pub fn build(self) -> Result<McpAuth<P>, ConfigError> {
        let settings = self
            .settings
            .ok_or(ConfigError::Invalid("settings are required"))?;
        let mut ctx = HandlerContext::new(settings, self.provider.capabilities());
        if let Some(bytes) = self.body_limit {
            ctx = ctx.with_body_limit(bytes);
        }
        if let Some(clock) = self.clock {
            ctx = ctx.with_clock(clock);
        }
        let bearer = match ctx.settings.resource_server_url {
            Some(_) => {
                let verifier: DynTokenVerifier =
                    Arc::new(ProviderTokenVerifier::new(Arc::clone(&self.provider)));
                Some(RequireBearerLayer::new(BearerAuth::from_context(
                    verifier, &ctx,
                )?))
            }
            None => None,
        };
        Ok(McpAuth {
            provider: self.provider,
            ctx,
            bearer,
            resource_name: self.resource_name,
        })
    }
}

impl<P: OAuthAuthorizationServerProvider> McpAuth<P> {
    /// The validated settings.
    pub fn settings(&self) -> &AuthSettings {
        &self.ctx.settings
    }

    /// What the provider supports, as read when this was built: what metadata advertises and
    /// the token endpoint dispatches.
    pub fn capabilities(&self) -> &Capabilities {
        &self.ctx.capabilities
    }

    /// The provider.
    pub fn provider(&self) -> &Arc<P> {
        &self.provider
    }

    /// The bearer layer for the configured resource, requiring the configured scopes; narrow
    /// or widen per route with [`RequireBearerLayer::scopes`].
    ///
    /// Returns `None` when no resource URL was configured.
    pub fn require_bearer(&self) -> Option<RequireBearerLayer> {
        self.bearer.clone()
    }

    /// The OAuth routes: authorization-server metadata (root, RFC 8414 path-inserted, OpenID
    /// alias), the access-token key set (`/.well-known/jwks.json`) when tokens are signed,
    /// `/authorize`, `/token`, `/register`, `/revoke` and `/introspect` when enabled,
    /// and the protected-resource metadata when a resource URL is configured.
    ///
    /// Every endpoint but `/authorize` and `/introspect` answers CORS requests from any origin (browser-based MCP
    /// clients call them directly; `/authorize` is navigated to, never fetched). Bodies over the
    /// endpoint's limit (`BodyLimits`: 64 KiB by default) get 413; CORS is the outermost layer,
    /// so even a 413 carries CORS headers.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let settings = &self.ctx.settings;
        // Metadata requests carry no body to speak of; they get the form limit.
        let metadata_limit = self.ctx.body_limits.form;
        let base = settings.issuer_url.path().to_owned();
        let cors = any_origin_cors(
            &[Method::GET, Method::POST, Method::OPTIONS],
            &[
                MCP_PROTOCOL_VERSION,
                http::header::CONTENT_TYPE,
                http::header::AUTHORIZATION,
            ],
        );
        let mut router = Router::new();

        let metadata = Arc::new(MetadataHandler::new(&build_metadata(
            settings,
            &self.ctx.capabilities,
        )));
        for path in authorization_server_metadata_paths(&settings.issuer_url) {
            let handler = Arc::clone(&metadata);
            router = router.route(
                &path,
                any(move |req: Request| async move {
                    call(req, metadata_limit, |r| handler.handle(r)).await
                })
                .layer(cors.clone()),
            );
        }

        if self.ctx.capabilities.supports_signed_access_tokens() {
            let keys = Arc::new(KeySetHandler::new(Arc::clone(&self.provider)));
            router = router.route(
                &format!("{base}{JWKS_PATH}"),
                any(move |req: Request| async move {
                    call(req, metadata_limit, |r| keys.handle(r)).await
                })
                .layer(cors.clone()),
            );
        }

        let authorize = Arc::new(AuthorizationHandler::new(
            Arc::clone(&self.provider),
            self.ctx.clone(),
        ));
        let limit = authorize.body_limit();
        router = router.route(
            &format!("{base}/authorize"),
            any(move |req: Request| async move { call(req, limit, |r| authorize.handle(r)).await }),
        );

        let token = Arc::new(TokenHandler::new(
            Arc::clone(&self.provider),
            self.ctx.clone(),
        ));
        let limit = token.body_limit();
        router = router.route(
            &format!("{base}/token"),
            any(move |req: Request| async move { call(req, limit, |r| token.handle(r)).await })
                .layer(cors.clone()),
        );

        if settings.client_registration_options.enabled {
            let register = Arc::new(RegistrationHandler::new(
                Arc::clone(&self.provider),
                self.ctx.clone(),
            ));
            let limit = register.body_limit();
            router =
                router.route(
                    &format!("{base}/register"),
                    any(move |req: Request| async move {
                        call(req, limit, |r| register.handle(r)).await
                    })
                    .layer(cors.clone()),
                );
        }

        if settings.revocation_options.enabled {
            let revoke = Arc::new(RevocationHandler::new(
                Arc::clone(&self.provider),
                self.ctx.clone(),
            ));
            let limit = revoke.body_limit();
            router = router.route(
                &format!("{base}/revoke"),
                any(
                    move |req: Request| async move { call(req, limit, |r| revoke.handle(r)).await },
                )
                .layer(cors.clone()),
            );
        }

        if settings.introspection_options.enabled {
            let introspect = Arc::new(IntrospectionHandler::new(
                Arc::clone(&self.provider),
                self.ctx.clone(),
            ));
            let limit = introspect.body_limit();
            // No CORS: resource servers call it from their back ends, never from a browser.
            router =
                router.route(
                    &format!("{base}/introspect"),
                    any(move |req: Request| async move {
                        call(req, limit, |r| introspect.handle(r)).await
                    }),
                );
        }

        if let Some(resource) = &settings.resource_server_url {
            let mut document = build_protected_resource_metadata(settings, resource);
            document.resource_name = self.resource_name.clone();
            router = router.merge(protected_resource_router(&document, metadata_limit));
        }
        router
    }
}
