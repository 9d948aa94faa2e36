//! [`McpAuth`]: the configured authorization server and resource protection, as axum pieces.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use http::{HeaderName, Method};
use mcp_auth_core::{
    AuthSettings, AuthSettingsBuilder, ClientRegistrationOptions, Clock, ConfigError,
    OAuthAuthorizationServerProvider, ProviderTokenVerifier, RevocationOptions,
};
use mcp_auth_handlers::authorize::AuthorizationHandler;
use mcp_auth_handlers::bearer::BearerAuth;
use mcp_auth_handlers::context::HandlerContext;
use mcp_auth_handlers::metadata::{
    MetadataHandler, ProtectedResourceMetadataHandler, authorization_server_metadata_paths,
    build_metadata, build_protected_resource_metadata, protected_resource_metadata_paths,
};
use mcp_auth_handlers::register::RegistrationHandler;
use mcp_auth_handlers::revoke::RevocationHandler;
use mcp_auth_handlers::token::TokenHandler;
use tower_http::cors::{Any, CorsLayer};

use crate::adapter::call;
use crate::bearer::{DynTokenVerifier, RequireBearerLayer};

/// The header MCP clients send on every request, which browsers must be allowed to send
/// cross-origin.
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// An MCP authorization server plus the protection of its resource, ready to mount in axum.
///
/// Build it with [`McpAuth::builder`]; mount [`router`](Self::router) and wrap the MCP endpoint
/// in [`require_bearer`](Self::require_bearer).
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
            .finish_non_exhaustive()
    }
}

/// Builder for [`McpAuth`].
#[must_use]
pub struct McpAuthBuilder<P> {
    provider: Arc<P>,
    issuer_url: Option<String>,
    configure: Vec<Box<dyn FnOnce(AuthSettingsBuilder) -> AuthSettingsBuilder + Send>>,
    body_limit: Option<usize>,
    clock: Option<Arc<dyn Clock>>,
    resource_name: Option<String>,
}

impl<P> std::fmt::Debug for McpAuthBuilder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpAuthBuilder")
            .field("issuer_url", &self.issuer_url)
            .finish_non_exhaustive()
    }
}

impl<P: OAuthAuthorizationServerProvider> McpAuth<P> {
    /// Starts configuring the authorization layer around `provider`.
    pub fn builder(provider: Arc<P>) -> McpAuthBuilder<P> {
        McpAuthBuilder {
            provider,
            issuer_url: None,
            configure: Vec::new(),
            body_limit: None,
            clock: None,
            resource_name: None,
        }
    }
}

impl<P: OAuthAuthorizationServerProvider> McpAuthBuilder<P> {
    fn with(
        mut self,
        f: impl FnOnce(AuthSettingsBuilder) -> AuthSettingsBuilder + Send + 'static,
    ) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// The issuer identifier (required), used byte for byte in metadata and `iss`.
    pub fn issuer_url(mut self, url: impl Into<String>) -> Self {
        self.issuer_url = Some(url.into());
        self
    }

    /// The protected MCP endpoint, e.g. `https://mcp.example.com/mcp`. Enables
    /// [`McpAuth::require_bearer`] and the protected-resource metadata.
    pub fn resource_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.with(move |b| b.resource_server_url(url))
    }

    /// Dynamic client registration.
    pub fn client_registration(self, options: ClientRegistrationOptions) -> Self {
        self.with(move |b| b.client_registration(options))
    }

    /// Token revocation.
    pub fn revocation(self, options: RevocationOptions) -> Self {
        self.with(move |b| b.revocation(options))
    }

    /// Scopes every protected request needs by default.
    pub fn required_scopes<I: IntoIterator<Item = S>, S: Into<String>>(self, scopes: I) -> Self {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        self.with(move |b| b.required_scopes(scopes))
    }

    /// Enables the SEP-990 identity-assertion grant.
    pub fn identity_assertion(self, enabled: bool) -> Self {
        self.with(move |b| b.identity_assertion(enabled))
    }

    /// Enables the client credentials grant (RFC 6749 §4.4); the provider must implement
    /// `exchange_client_credentials` (`StoreProvider` does).
    pub fn client_credentials(self, enabled: bool) -> Self {
        self.with(move |b| b.client_credentials(enabled))
    }

    /// Enables `private_key_jwt` client authentication with these signing algorithms (for
    /// example `mcp_auth_jwt::SUPPORTED_ALGORITHMS`); the provider must verify client
    /// assertions (`StoreProvider` with a `ClientAssertionVerifier`).
    pub fn private_key_jwt<I: IntoIterator<Item = S>, S: Into<String>>(self, algs: I) -> Self {
        let algs: Vec<String> = algs.into_iter().map(Into::into).collect();
        self.with(move |b| b.private_key_jwt(algs))
    }

    /// Advertises Client ID Metadata Documents (`client_id_metadata_document_supported`); the
    /// provider must resolve https URL client ids (`StoreProvider` with a
    /// `ClientMetadataResolver`, such as `mcp_auth_cimd::CimdResolver`).
    pub fn client_id_metadata_documents(self, enabled: bool) -> Self {
        self.with(move |b| b.client_id_metadata_documents(enabled))
    }

    /// Documentation advertised in the metadata.
    pub fn service_documentation_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.with(move |b| b.service_documentation_url(url))
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

    /// Validates the configuration.
    pub fn build(self) -> Result<McpAuth<P>, ConfigError> {
        let issuer = self
            .issuer_url
            .ok_or(ConfigError::Invalid("issuer_url is required"))?;
        let mut settings = AuthSettings::builder(issuer);
        for configure in self.configure {
            settings = configure(settings);
        }
        let mut ctx = HandlerContext::new(settings.build()?);
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
    /// alias), `/authorize`, `/token`, `/register` and `/revoke` when enabled, and the
    /// protected-resource metadata when a resource URL is configured.
    ///
    /// Every endpoint but `/authorize` answers CORS requests from any origin (browser-based MCP
    /// clients call them directly; `/authorize` is navigated to, never fetched). Bodies over the
    /// endpoint's limit (`BodyLimits`: 64 KiB by default) get 413; CORS is the outermost layer,
    /// so even a 413 carries CORS headers.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let settings = &self.ctx.settings;
        // Metadata requests carry no body to speak of; they get the form limit.
        let metadata_limit = self.ctx.body_limits.form;
        let base = settings.issuer_url.path().to_owned();
        let cors = CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                MCP_PROTOCOL_VERSION,
                http::header::CONTENT_TYPE,
                http::header::AUTHORIZATION,
            ]);
        let mut router = Router::new();

        let metadata = Arc::new(MetadataHandler::new(&build_metadata(settings)));
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

        if let Some(resource) = &settings.resource_server_url {
            let mut document = build_protected_resource_metadata(settings, resource);
            document.resource_name = self.resource_name.clone();
            let handler = Arc::new(ProtectedResourceMetadataHandler::new(&document));
            for path in protected_resource_metadata_paths(resource) {
                let handler = Arc::clone(&handler);
                router = router.route(
                    &path,
                    any(move |req: Request| async move {
                        call(req, metadata_limit, |r| handler.handle(r)).await
                    })
                    .layer(cors.clone()),
                );
            }
        }
        router
    }
}
