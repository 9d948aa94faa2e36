//! Assembly: store, provider, OAuth routes, sign-in page, the protected MCP endpoint, health,
//! logging layers, the purge task and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use mcp_auth_axum::core::{
    AuthSettings, ClientRegistrationOptions, ConfigError as AuthConfigError,
};
use mcp_auth_axum::core::{IntrospectionOptions, RevocationOptions, StoreProvider};
use mcp_auth_axum::handlers::McpOperationScopes;
use mcp_auth_axum::{McpAuth, RequireBearerLayer, SessionBindingLayer};
use mcp_auth_core::ErrorChain;
use mcp_auth_core::{LocalRateLimiter, RateLimitStore};
use mcp_auth_gateway::UpstreamProxy;
use mcp_auth_jwt::{IdJagValidator, JwksSource};
use mcp_auth_types::{GrantType, IssuerUrl, IssuerUrlError, validate_issuer_url};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{Layer as _, ServiceBuilder};
use tower_http::timeout::{Timeout, TimeoutLayer};

use crate::access_log::{Observability, ObservabilityLayer};
use crate::config::Config;
use crate::gateway::{Readiness, readyz};
use crate::listener::serve_connections;
use crate::mcp::Tools;
use crate::sign_in::{Provider, SignIn};
use crate::store::{self, DynStorage, StoreError};
use crate::throttle::{Throttle, TrustedProxies};
use crate::users::{Users, UsersError};

/// How often expired codes, tokens and pending requests are deleted.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listener's address could not be read.
    #[error("cannot read the listening address: {0}")]
    Listener(#[source] std::io::Error),
    /// The configured issuer is not a valid issuer identifier (RFC 8414 §2).
    #[error("--issuer: {0}")]
    Issuer(#[source] IssuerUrlError),
    /// No `--issuer` and the bound address makes no valid issuer.
    #[error(
        "the bound address {addr} makes no valid issuer (http://{addr}: {reason}); \
         pass --issuer with the public https URL of this server"
    )]
    DefaultIssuer {
        /// The bound address.
        addr: SocketAddr,
        /// Why the issuer was refused.
        reason: String,
    },
    /// The storage backend could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The authorization layer refused the configuration.
    #[error("invalid authorization settings: {0}")]
    Auth(#[from] AuthConfigError),
    /// An `--authorization-server` could not be configured (resource-server-only mode).
    #[error("--authorization-server: {0}")]
    AuthorizationServer(#[source] mcp_auth_jwt::JwtConfigError),
    /// The introspection verifier of resource-server-only mode refused its configuration.
    #[error("--introspection-client-id: {0}")]
    Introspection(#[source] mcp_auth_introspection::IntrospectionConfigError),
    /// A `--trusted-idp` key set could not be read, or the validator refused the configuration.
    #[error("--trusted-idp: {0}")]
    TrustedIdp(#[from] mcp_auth_jwt::JwtConfigError),
    /// The Client ID Metadata Document fetcher refused its configuration.
    #[error("client metadata documents: {0}")]
    ClientMetadata(#[from] mcp_auth_cimd::CimdConfigError),
    /// A pre-registered client could not be stored.
    #[error("cannot store pre-registered client {client_id:?}: {source}")]
    Preregister {
        /// The client.
        client_id: String,
        /// Why.
        #[source]
        source: mcp_auth_core::ProviderError,
    },
    /// A password could not be hashed.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The sign-in templates did not compile.
    #[error("sign-in templates: {0}")]
    Templates(#[from] minijinja::Error),
    /// JWT access tokens could not be set up.
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// Sign-in through the OpenID Provider could not be set up.
    #[error("--oidc-issuer: {0}")]
    Oidc(String),
    /// The `--upstream` proxy could not be set up.
    #[error("--upstream: {0}")]
    Upstream(#[from] mcp_auth_gateway::UpstreamConfigError),
    /// The metrics listener could not start.
    #[error("--metrics-bind: {0}")]
    Metrics(#[source] std::io::Error),
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Serves the authorization server and `/mcp` on `listener` until `shutdown` completes, then
/// stops gracefully: no new connections, MCP sessions closed, in-flight requests finished.
///
/// Without `config.issuer` the issuer is `http://<listener's address>`, so a listener on
/// `127.0.0.1:0` gets the right issuer in tests.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().map_err(ServerError::Listener)?;
    let cancel = CancellationToken::new();
    let connection_limits = config.limits.connections();
    let sessions = Arc::new(LocalSessionManager::default());
    // The recorder is installed before anything records, and a port that cannot be bound stops
    // the start-up like the main listener's would.
    let metrics = match config.metrics_bind {
        Some(metrics_addr) => Some(tokio::spawn(
            crate::metrics::start(
                metrics_addr,
                config.limits.connections(),
                Arc::clone(&sessions),
                cancel.clone(),
            )
            .await
            .map_err(ServerError::Metrics)?,
        )),
        None => None,
    };
    let base = public_url(&config, addr)?.path().to_owned();
    let request_timeout = Duration::from_secs(config.limits.request_timeout);
    let (app, purge_task) = build(config, addr, cancel.clone(), sessions).await?;
    let app = finish(app, request_timeout);
    tracing::info!(%addr, "listening");
    let stop = cancel.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down");
        // Ends rmcp's sessions (and their open SSE streams) and the purge task, so that
        // graceful shutdown does not wait for streams that never end.
        stop.cancel();
    };
    if metrics.is_some() {
        let app = crate::metrics::HttpMetricsLayer::new(&base).layer(app);
        serve_connections(listener, app, &connection_limits, shutdown).await;
    } else {
        serve_connections(listener, app, &connection_limits, shutdown).await;
    }
    cancel.cancel();
    // The purge task only sleeps and purges; it ends at once once cancelled.
    if let Some(purge_task) = purge_task {
        let _ = purge_task.await;
    }
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    Ok(())
}

/// Builds the application for a server bound to `addr`, and starts the purge task (stopped by
/// `cancel`).
async fn build(
    mut config: Config,
    addr: SocketAddr,
    cancel: CancellationToken,
    sessions: Arc<LocalSessionManager>,
) -> Result<(Router, Option<tokio::task::JoinHandle<()>>), ServerError> {
    if !config.authorization_servers.issuers.is_empty() {
        return crate::resource_server::build(config, addr, cancel, sessions);
    }
    let issuer = public_url(&config, addr)?;
    let resource = format!("{}/mcp", issuer.origin());
    tracing::info!(
        issuer = issuer.as_str(),
        resource,
        store = ?config.store,
        "starting"
    );

    let valid_scopes = config.valid_scopes();
    let registration = ClientRegistrationOptions::enabled()
        .valid_scopes(valid_scopes.iter().cloned())
        .default_scopes(config.default_scopes.iter().cloned())
        // Every client may later step up to the per-tool scopes: MCP clients register with the
        // scope of their first 401 and only learn of a tool's scope from its 403.
        .step_up_scopes(config.tool_scopes.values().flatten().cloned());
    let mut storage = store::open(&config.store).await?;
    if crate::metrics::enabled(&config) {
        storage = crate::metrics::storage::MeteredStorage::wrap(storage, config.store.backend());
    }
    let signer = crate::signing::access_token_signer(&config, &storage, &resource).await?;
    let mut provider = StoreProvider::builder(Arc::clone(&storage), issuer.as_str())
        .sign_in_url(issuer.endpoint("/sign-in"))
        .access_token_ttl(config.access_token_ttl)
        .access_token_cache_ttl(config.access_token_cache_ttl)
        .refresh_reuse_interval(config.refresh_reuse_interval)
        .grant_lifetime(Some(config.grant_lifetime_days * 24 * 3600))
        .valid_scopes(valid_scopes.iter().cloned())
        // Metadata-document clients and requests without `scope` follow /register's rules.
        .client_scope_rules(registration.clone());
    // SEP-990: trusting an identity provider is what enables the jwt-bearer grant; without one
    // it answers `unsupported_grant_type` and is not advertised.
    let identity_assertion = !config.trusted_idps.is_empty();
    // The client credentials grant (machine clients acting in their own name): enabled, and
    // so advertised, when a pre-registered client lists it. Registration cannot grant it
    // (anyone may register), and the token endpoint still refuses it to public clients
    // (RFC 6749 §4.4).
    let client_credentials = config.clients.iter().any(|client| {
        client
            .metadata
            .grant_types
            .contains(&GrantType::ClientCredentials)
    });
    provider = provider.client_credentials(client_credentials);
    if let Some(signer) = &signer {
        provider = provider.access_token_signer(Arc::clone(signer) as _);
    }
    if identity_assertion {
        let mut validator = IdJagValidator::builder(issuer.as_str()).resource(resource.as_str());
        for idp in &config.trusted_idps {
            tracing::info!(
                issuer = idp.issuer,
                jwks = idp.jwks,
                "trusting identity provider"
            );
            validator = validator.trusted_issuer(&idp.issuer, JwksSource::from_spec(&idp.jwks));
        }
        provider = provider.identity_assertion_validator(Arc::new(validator.build()?));
    }
    // Client ID Metadata Documents: on unless --no-client-metadata-documents. They bring
    // `private_key_jwt` (a document cannot hold a secret, but it can publish a key), which
    // registered clients may then use as well; every `jwks_uri` is fetched through the vetted
    // fetcher.
    if let Some(client_metadata) = crate::cimd::client_metadata(&config.client_metadata)? {
        provider = provider
            .client_metadata_resolver(Arc::new(client_metadata.resolver))
            .client_assertion_verifier(Arc::new(client_metadata.verifier));
    }
    let provider = Arc::new(provider.build()?);
    for client in std::mem::take(&mut config.clients) {
        let client_id = client.client_id.clone();
        provider
            .preregister_client(client)
            .await
            .map_err(|source| ServerError::Preregister {
                client_id: client_id.clone(),
                source,
            })?;
        tracing::info!(%client_id, "pre-registered client");
    }

    let credentials = std::mem::take(&mut config.users);
    let (concurrency, wait) = (
        config.limits.password_hashing_concurrency,
        Duration::from_millis(config.limits.password_hashing_wait_ms),
    );
    let users = tokio::task::spawn_blocking(move || Users::hash(credentials, concurrency, wait))
        .await
        .map_err(|err| ServerError::Serve(std::io::Error::other(err)))??;
    // Users kept in the store (`mcp-auth-server user add`) sign in beside the `--user`s.
    let users = users.with_store(Arc::clone(&storage) as Arc<dyn mcp_auth_core::AdminStore>);
    if users.is_empty() && config.oidc.is_none() {
        tracing::info!(
            "no --user given: only users added with `mcp-auth-server user add` can sign in"
        );
    } else if !users.is_empty() {
        tracing::info!(
            users = users.len(),
            "--user sign-ins ready, besides the store's users"
        );
    }

    // What the server supports is the provider's statement (its capabilities, from the
    // collaborators given above); the settings are the operator's policy.
    let mut settings = AuthSettings::builder(issuer.as_str());
    for other in &config.additional_resources {
        settings = settings.additional_resource(other.as_str());
    }
    let settings = settings
        .resource_server_url(resource.as_str())
        .required_scopes(config.scopes.iter().cloned())
        .client_registration(registration)
        .revocation(RevocationOptions::enabled())
        // Resource servers on other hosts, which cannot read the store, ask here.
        .introspection(IntrospectionOptions::enabled())
        .build()?;
    let auth = McpAuth::builder(Arc::clone(&provider))
        .settings(settings)
        .resource_name("mcp-auth-server")
        .build()?;
    let bearer = auth
        .require_bearer()
        .ok_or(AuthConfigError::Invalid("a resource URL is required"))?;
    let (federation, upstream_tokens) =
        crate::federation::federation(&config, &issuer, &storage, &users, &provider).await?;
    // The user's token at the OpenID Provider, for the upstream (--forward-upstream-token).
    let credential = upstream_tokens
        .clone()
        .filter(|_| config.forward_upstream_token)
        .map(|source| source as Arc<dyn mcp_auth_gateway::PrincipalCredential>);
    let upstream = config
        .upstream
        .as_ref()
        .map(|settings| settings.proxy_forwarding(credential))
        .transpose()?;
    let mcp = protected_mcp(
        &config,
        bearer,
        &issuer,
        addr,
        &cancel,
        sessions,
        upstream.clone(),
    );
    // Tool handlers find the provider's tokens through the request (see UpstreamTokenSource).
    let mcp = match upstream_tokens {
        Some(source) => mcp.layer(axum::Extension(source)),
        None => mcp,
    };

    let sign_in_path = format!("{}/sign-in", issuer.path());
    let secure_cookie = issuer.as_str().starts_with("https://");
    let (limiter, local_limiter) = rate_limiter(&config.store).await?;
    let throttle = Throttle::new(
        limiter,
        TrustedProxies::new(config.trusted_proxies.clone()),
        issuer.path(),
        &sign_in_path,
        config.limits.endpoint_quotas(),
    );
    let sign_in = SignIn::new(
        Arc::clone(&provider),
        Arc::new(users),
        sign_in_path,
        secure_cookie,
        throttle.clone(),
        config.limits.clone(),
        federation,
    )?;

    // Request budgets guard the OAuth endpoints and the sign-in page only: `/mcp` (the hot
    // path, authenticated) and `/healthz` never pass through the budget middleware.
    let budgeted = Router::new()
        .merge(sign_in.router())
        .merge(auth.router())
        .layer(axum::middleware::from_fn_with_state(
            throttle,
            crate::throttle::limit_requests,
        ));
    let readiness = Readiness {
        storage: Some(Arc::clone(&storage)),
        upstream,
    };
    let app = mcp
        .route("/healthz", get(healthz).with_state(Arc::clone(&storage)))
        .route("/readyz", get(readyz).with_state(readiness))
        .merge(budgeted);

    let keys = crate::signing::refresh_periodically(signer, cancel.clone());
    let purge = purge_periodically(provider, local_limiter, cancel);
    let maintenance = tokio::spawn(async move {
        tokio::join!(purge, keys);
    });
    Ok((app, Some(maintenance)))
}

/// This server's public URL: `--issuer`, or `http://<bound address>`. In the authorization
/// server it is the issuer identifier; in either mode the MCP resource is its origin + `/mcp`.
pub(crate) fn public_url(config: &Config, addr: SocketAddr) -> Result<IssuerUrl, ServerError> {
    match &config.issuer {
        Some(issuer) => validate_issuer_url(issuer).map_err(ServerError::Issuer),
        None => validate_issuer_url(&format!("http://{addr}")).map_err(|err| {
            ServerError::DefaultIssuer {
                addr,
                reason: err.to_string(),
            }
        }),
    }
}

/// `/mcp` behind `bearer`, the per-tool scopes and the session binding: the demo tools, or
/// with `upstream` (gateway mode) that MCP server, proxied.
pub(crate) fn protected_mcp(
    config: &Config,
    bearer: RequireBearerLayer,
    issuer: &IssuerUrl,
    addr: SocketAddr,
    cancel: &CancellationToken,
    sessions: Arc<LocalSessionManager>,
    upstream: Option<UpstreamProxy>,
) -> Router {
    let operation_scopes = bearer.operation_scopes(
        config
            .tool_scopes
            .iter()
            .fold(McpOperationScopes::new(), |scopes, (tool, needed)| {
                scopes.tool(tool.as_str(), needed.iter().cloned())
            }),
    );
    let layers = tower::ServiceBuilder::new()
        .layer(bearer)
        .layer(operation_scopes)
        .layer(
            SessionBindingLayer::default()
                .max_per_principal(config.limits.mcp_sessions_per_principal),
        )
        // An answer over SSE leaves with its head in one write (see `sse_head`).
        .layer(crate::sse_head::HoldSseHeadLayer);
    if let Some(upstream) = upstream {
        tracing::info!(upstream = %upstream.upstream(), "gateway: /mcp proxies the upstream MCP server");
        return Router::new().route_service("/mcp", layers.service(upstream));
    }
    let mcp = StreamableHttpService::new(
        || Ok(Tools::new()),
        sessions,
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(allowed_hosts(issuer, addr))
            .with_cancellation_token(cancel.child_token()),
    );
    Router::new().route_service("/mcp", layers.service(mcp))
}

/// The application as served: its routes inside the layers every request passes, outermost
/// first: request ids and the access log, then the request timeout.
pub(crate) type Served = Observability<Timeout<Router>>;

/// Puts `app` inside the layers every request passes ([`Served`]), `request_timeout` being the
/// time to the response's headers, body reading included (an SSE stream's body outlives it;
/// see `Limits::request_timeout`).
///
/// The layers wrap the router rather than being added with `Router::layer`: axum keeps a
/// router's routes as boxed, cloneable services and clones one, layers and all, into a fresh
/// box for every request. Wrapped here, a request costs no allocation for them (profiled:
/// the clones and drops of every layer added that way were 4 % of a token issuance's samples,
/// these two about half of it).
pub(crate) fn finish(app: Router, request_timeout: Duration) -> Served {
    // A router's handlers become services when it is given its state; a router served without
    // that step turns each handler into a service, layers and all, on every request (axum
    // 0.8's `MethodRouter::call_with_state`). Giving it `()` here does that once.
    let app: Router = app.with_state(());
    ServiceBuilder::new()
        .layer(ObservabilityLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .service(app)
}

/// Where request budgets live: in Redis when the store is Redis, so that every instance spends
/// one budget; in this process otherwise (the local limiter is also returned, for sweeping).
async fn rate_limiter(
    store: &crate::config::StoreUrl,
) -> Result<(Arc<dyn RateLimitStore>, Option<Arc<LocalRateLimiter>>), ServerError> {
    if let crate::config::StoreUrl::Redis(url) = store {
        let redis = mcp_auth_redis::RedisStore::connect(url)
            .await
            .map_err(|source| {
                ServerError::Store(StoreError::Connect {
                    backend: "redis",
                    url: store.redacted(),
                    source,
                })
            })?;
        return Ok((Arc::new(redis), None));
    }
    let local = Arc::new(LocalRateLimiter::new());
    Ok((Arc::clone(&local) as Arc<dyn RateLimitStore>, Some(local)))
}

/// Hosts rmcp accepts in `Host`, so that DNS-rebinding protection stays on: the issuer's
/// authority, and the bound address (plus `localhost` on a loopback bind) for local use.
fn allowed_hosts(issuer: &IssuerUrl, addr: SocketAddr) -> Vec<String> {
    let mut hosts = Vec::new();
    if let Some(authority) = issuer.origin().split_once("://").map(|(_, a)| a) {
        hosts.push(authority.to_owned());
    }
    hosts.push(addr.to_string());
    if addr.ip().is_loopback() {
        hosts.push(format!("localhost:{}", addr.port()));
    }
    hosts
}

async fn healthz(State(storage): State<DynStorage>) -> Response {
    match store::is_healthy(&storage).await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(err) => {
            tracing::error!(error = %ErrorChain(&err), "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

/// Deletes expired records every [`PURGE_INTERVAL`] until `cancel`, and forgets idle
/// rate-limit budgets.
async fn purge_periodically(
    provider: Arc<Provider>,
    local_limiter: Option<Arc<LocalRateLimiter>>,
    cancel: CancellationToken,
) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        match provider.purge_expired().await {
            Ok(report) => tracing::debug!(?report, "purged expired records"),
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), "purging expired records failed")
            }
        }
        if let Some(limiter) = &local_limiter {
            limiter.sweep();
        }
    }
}
