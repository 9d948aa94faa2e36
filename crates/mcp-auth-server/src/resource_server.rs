//! Resource-server-only mode (`--authorization-server URL`): `/mcp` accepts the JWT access
//! tokens (RFC 9068) of authorization servers elsewhere — or, with
//! `--introspection-client-id`, whatever their introspection endpoints (RFC 7662) call active — and this server runs no authorization
//! server of its own — no `/authorize`, `/token`, `/register`, sign-in page or store.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mcp_auth_axum::McpResource;
use mcp_auth_axum::core::{ChainedTokenVerifier, TokenVerifier};
use mcp_auth_introspection::IntrospectionTokenVerifier;
use mcp_auth_jwt::{HttpJwksFetcher, JwksFetcher, JwtAccessTokenVerifier};
use tokio_util::sync::CancellationToken;

use crate::app::{ServerError, protected_mcp, public_url};
use crate::config::Config;

/// The authorization servers whose tokens a resource-server-only instance accepts.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExternalAuthorizationServers {
    /// Their issuer identifiers, each discovered through its RFC 8414 or OpenID metadata.
    pub issuers: Vec<String>,
    /// Extra PEM root certificates for their metadata and key hosts (a private CA).
    pub root_certificates_pem: Vec<u8>,
    /// Verify tokens at their introspection endpoints as this client, instead of as JWTs.
    pub introspection: Option<IntrospectionClient>,
}

/// This resource server's client registration at the authorization servers, for
/// introspection (`client_secret_basic`). `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct IntrospectionClient {
    /// The client id.
    pub client_id: String,
    secret: String,
}

impl IntrospectionClient {
    /// A client id and its secret.
    pub fn new(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            secret: secret.into(),
        }
    }
}

impl std::fmt::Debug for IntrospectionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionClient")
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for ExternalAuthorizationServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalAuthorizationServers")
            .field("issuers", &self.issuers)
            .field(
                "root_certificates_pem_bytes",
                &self.root_certificates_pem.len(),
            )
            .field("introspection", &self.introspection)
            .finish()
    }
}

/// The application of a resource-server-only instance: `/mcp` (the demo tools, behind a
/// bearer check trying each issuer's [`JwtAccessTokenVerifier`] in turn), the
/// protected-resource metadata naming the issuers, and `/healthz` (this process only: it has
/// no store, and an issuer's outage shows as 503s on `/mcp`, not as an unhealthy instance).
pub(crate) fn build(
    config: Config,
    addr: SocketAddr,
    cancel: CancellationToken,
    sessions: Arc<rmcp::transport::streamable_http_server::session::local::LocalSessionManager>,
) -> Result<(Router, Option<tokio::task::JoinHandle<()>>), ServerError> {
    let public = public_url(&config, addr)?;
    let resource = format!("{}/mcp", public.origin());
    let servers = &config.authorization_servers;
    tracing::info!(
        resource,
        authorization_servers = ?servers.issuers,
        "starting as a resource server only"
    );
    let mut fetcher = HttpJwksFetcher::builder();
    if !servers.root_certificates_pem.is_empty() {
        fetcher = fetcher
            .root_certificates_pem(&servers.root_certificates_pem)
            .map_err(ServerError::AuthorizationServer)?;
    }
    let fetcher: Arc<dyn JwksFetcher> =
        Arc::new(fetcher.build().map_err(ServerError::AuthorizationServer)?);
    let verifiers = servers
        .issuers
        .iter()
        .map(|issuer| -> Result<Arc<dyn TokenVerifier>, ServerError> {
            Ok(match &servers.introspection {
                Some(client) => Arc::new(
                    IntrospectionTokenVerifier::builder(
                        issuer.as_str(),
                        resource.as_str(),
                        client.client_id.as_str(),
                        client.secret.as_str(),
                    )
                    .build()
                    .map_err(ServerError::Introspection)?,
                ),
                None => Arc::new(
                    JwtAccessTokenVerifier::builder(issuer.as_str(), resource.as_str())
                        .fetcher(Arc::clone(&fetcher))
                        .build()
                        .map_err(ServerError::AuthorizationServer)?,
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = McpResource::builder(
        resource.as_str(),
        Arc::new(ChainedTokenVerifier::new(verifiers)),
    )
    .required_scopes(config.scopes.iter().cloned())
    .resource_name("mcp-auth-server");
    for issuer in &servers.issuers {
        builder = builder.authorization_server(issuer.as_str());
    }
    let protected = builder.build()?;
    let upstream = config
        .upstream
        .as_ref()
        .map(crate::UpstreamSettings::proxy)
        .transpose()?;
    let readiness = crate::gateway::Readiness {
        storage: None,
        upstream: upstream.clone(),
    };
    let app = protected_mcp(
        &config,
        protected.require_bearer(),
        &public,
        addr,
        &cancel,
        sessions,
        upstream,
    )
    .route("/healthz", get(|| async { "ok\n" }))
    .route("/readyz", get(crate::gateway::readyz).with_state(readiness))
    .merge(protected.router());
    // No store, so no purge task.
    Ok((app, None))
}
