//! Protecting the official MCP Rust SDK's streamable-HTTP service, and reading the caller inside
//! a tool. Run with `cargo run -p mcp-auth-axum --example rmcp_server`.

use std::sync::Arc;

use axum::Router;
use mcp_auth_axum::core::{AuthSettings, ClientRegistrationOptions, MemoryStore, StoreProvider};
use mcp_auth_axum::{Authenticated, McpAuth, SessionBindingLayer};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, tool, tool_router};

const ISSUER: &str = "http://127.0.0.1:5000";

#[derive(Clone)]
struct Tools;

#[tool_router(server_handler)]
impl Tools {
    /// The principal is in the HTTP request's extensions, put there by the bearer layer.
    #[tool(description = "Who is calling")]
    fn whoami(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let caller = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Authenticated>())
            .ok_or_else(|| ErrorData::internal_error("no authenticated caller", None))?;
        let principal = caller.principal();
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "client {} subject {}",
            principal.client_id,
            principal.subject.unwrap_or_default()
        ))]))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = Arc::new(StoreProvider::builder(MemoryStore::new(), ISSUER).build()?);
    let settings = AuthSettings::builder(ISSUER)
        .resource_server_url(format!("{ISSUER}/mcp"))
        .required_scopes(["mcp:tools"])
        .client_registration(ClientRegistrationOptions::enabled().default_scopes(["mcp:tools"]))
        .build()?;
    let auth = McpAuth::builder(provider).settings(settings).build()?;
    let mcp = StreamableHttpService::new(
        || Ok(Tools),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let bearer = auth.require_bearer().ok_or("no resource configured")?;
    let app: Router = Router::new()
        // Inside out: the session binding sees the verified token the bearer layer added.
        .nest_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(bearer)
                .layer(SessionBindingLayer::default())
                .service(mcp),
        )
        .merge(auth.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
