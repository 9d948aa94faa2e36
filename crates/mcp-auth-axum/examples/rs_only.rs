//! A resource server alone, trusting a remote authorization server.
//!
//! The tokens are checked with RFC 7662 token introspection at the authorization server, through
//! a custom [`TokenVerifier`]; the layer does the rest (audience, expiry, scopes, challenges).
//! Run with `cargo run -p mcp-auth-axum --example rs_only`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::routing::post;
use mcp_auth_axum::core::{ProviderError, TokenVerifier};
use mcp_auth_axum::handlers::bearer::BearerAuth;
use mcp_auth_axum::types::{AccessToken, AccessTokenSecret, split_scopes};
use mcp_auth_axum::{Authenticated, RequireBearerLayer};

const RESOURCE: &str = "http://127.0.0.1:4000/mcp";

/// Verifies tokens with an RFC 7662 introspection endpoint, authenticating as a confidential
/// client with HTTP Basic.
struct IntrospectionVerifier {
    client: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: String,
}

#[derive(serde::Deserialize)]
struct Introspection {
    active: bool,
    client_id: Option<String>,
    scope: Option<String>,
    exp: Option<i64>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    iss: Option<String>,
}

#[async_trait]
impl TokenVerifier for IntrospectionVerifier {
    async fn verify_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        let response = self
            .client
            .post(&self.endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token.expose_secret())])
            .send()
            .await
            .map_err(ProviderError::unavailable)?;
        if !response.status().is_success() {
            return Err(ProviderError::unavailable(format!(
                "introspection answered {}",
                response.status()
            )));
        }
        let body: Introspection = response.json().await.map_err(ProviderError::internal)?;
        if !body.active {
            return Ok(None);
        }
        let mut access = AccessToken::new(
            token.clone(),
            body.client_id.unwrap_or_default(),
            split_scopes(body.scope.as_deref()),
        );
        access.expires_at = body.exp;
        access.subject = body.sub;
        // RFC 9068 / RFC 7662 `aud`: a string or an array; the layer checks it against RESOURCE.
        access.resource = match body.aud {
            Some(serde_json::Value::String(aud)) => Some(aud),
            Some(serde_json::Value::Array(list)) => list
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .find(|aud| aud.starts_with(RESOURCE)),
            _ => None,
        };
        if let Some(iss) = body.iss {
            let mut claims = serde_json::Map::new();
            claims.insert("iss".to_owned(), serde_json::Value::String(iss));
            access.claims = Some(claims);
        }
        Ok(Some(access))
    }
}

async fn mcp(Authenticated(token): Authenticated) -> String {
    format!("hello {}", token.subject.as_deref().unwrap_or("?"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verifier: Arc<dyn TokenVerifier> = Arc::new(IntrospectionVerifier {
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?,
        endpoint: "https://auth.example.com/introspect".to_owned(),
        client_id: "resource-server".to_owned(),
        client_secret: std::env::var("INTROSPECTION_SECRET").unwrap_or_default(),
    });
    let bearer = RequireBearerLayer::new(
        BearerAuth::new(verifier, RESOURCE)
            .required_scopes(["mcp:tools"])
            .resource_metadata_url(
                "http://127.0.0.1:4000/.well-known/oauth-protected-resource/mcp",
            ),
    );
    let app: Router = Router::new().route("/mcp", post(mcp)).route_layer(bearer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
