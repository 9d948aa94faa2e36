//! An authorization server and the MCP resource it protects, in one axum app.
//!
//! Run with `cargo run -p mcp-auth-axum --example as_and_rs`, then point an MCP client at
//! `http://127.0.0.1:3000/mcp`. A real deployment replaces `auto_approve` with a sign-in page
//! (see `mcp-auth-server`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use mcp_auth_axum::core::{
    AuthSettings, ClientRegistrationOptions, MemoryStore, RevocationOptions, StoreProvider,
};
use mcp_auth_axum::{Authenticated, McpAuth};

const ISSUER: &str = "http://127.0.0.1:3000";

type Provider = StoreProvider<MemoryStore>;

#[derive(serde::Deserialize)]
struct SignIn {
    request_id: String,
}

/// Stands in for a sign-in page: approves every request as the user `demo`.
async fn auto_approve(
    State(provider): State<Arc<Provider>>,
    Query(query): Query<SignIn>,
) -> Result<Redirect, (http::StatusCode, String)> {
    provider
        .complete_authorization(&query.request_id, "demo")
        .await
        .map(|to| Redirect::to(&to))
        .map_err(|e| (http::StatusCode::BAD_REQUEST, e.to_string()))
}

async fn mcp(Authenticated(token): Authenticated) -> String {
    format!(
        "hello {} (client {})",
        token.subject.as_deref().unwrap_or("?"),
        token.client_id
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = Arc::new(
        StoreProvider::builder(MemoryStore::new(), ISSUER)
            .sign_in_url(format!("{ISSUER}/sign-in"))
            .build()?,
    );
    let settings = AuthSettings::builder(ISSUER)
        .resource_server_url(format!("{ISSUER}/mcp"))
        .required_scopes(["mcp:tools"])
        .client_registration(
            ClientRegistrationOptions::enabled()
                .valid_scopes(["mcp:tools"])
                .default_scopes(["mcp:tools"]),
        )
        .revocation(RevocationOptions::enabled())
        .build()?;
    let auth = McpAuth::builder(Arc::clone(&provider))
        .settings(settings)
        .build()?;
    let bearer = auth.require_bearer().ok_or("no resource configured")?;
    let app = Router::new()
        .route("/mcp", post(mcp))
        .route_layer(bearer)
        .route("/sign-in", get(auto_approve))
        .with_state(provider)
        .merge(auth.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
