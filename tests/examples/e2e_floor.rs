//! The floor of `cargo xtask bench e2e`: a hand-written minimal axum server answering the same
//! shapes as `mcp-auth-server`, so that the server's CPU per request can be read as a ratio to
//! what the web stack alone costs, measured in the same run on the same machine.
//!
//! - `GET /.well-known/oauth-authorization-server`: a JSON metadata document of the server's
//!   size, serialised per request.
//! - `POST /mcp`: a bearer check (one string comparison) and a small JSON-RPC answer echoing the
//!   `tools/call` argument; a wrong bearer gets a 401 with an RFC 6750 challenge.
//! - `POST /token`: form parsing and a client check; `client_credentials` answers a fresh random
//!   token, `authorization_code` an `invalid_grant` (no code is ever valid here).
//! - `POST /register`: JSON parsing and a 201 answer echoing the metadata with a fresh id.
//!
//! No store, no logging, no middleware: whatever the server costs beyond this is its own.
//! `TCP_NODELAY` is set on every connection, as any server answering interactive requests
//! should.
//!
//! With a fourth argument `rmcp`, `POST /mcp` is instead the server's own MCP server behind
//! the same one-comparison bearer check: rmcp's streamable HTTP service over
//! `mcp_auth_server::Tools`, with sessions and SSE answers as the server configures them, and
//! the server's [`HoldSseHeadLayer`] so that an answer leaves in one write as it does there.
//! A `tools/call` here costs what the MCP server alone costs; the server's figure beside it is
//! what the server (its authorization, logging and connection handling) adds to it.
//!
//! Usage: `e2e_floor TOKEN CLIENT_ID CLIENT_SECRET [rmcp]`. It listens on a free loopback port
//! and prints `listening on ADDR` on its first line of stdout.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use mcp_auth_server::{HoldSseHead, HoldSseHeadLayer, Tools};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tower::{Layer as _, ServiceExt as _};

/// The server's MCP server as the floor serves it in `rmcp` mode.
type McpServer = HoldSseHead<StreamableHttpService<Tools, LocalSessionManager>>;

/// What the handlers compare and serve.
struct Floor {
    /// `Bearer <token>`, the one valid `Authorization` header on `/mcp`.
    authorization: String,
    client_id: String,
    client_secret: String,
    metadata: Value,
    challenge: HeaderValue,
    /// In `rmcp` mode, what `/mcp` serves after the bearer check.
    mcp_server: Option<McpServer>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    const USAGE: &str = "usage: e2e_floor TOKEN CLIENT_ID CLIENT_SECRET [rmcp]";
    let mut args = std::env::args().skip(1);
    let (Some(token), Some(client_id), Some(client_secret)) =
        (args.next(), args.next(), args.next())
    else {
        return Err(USAGE.into());
    };
    let with_rmcp = match (args.next().as_deref(), args.next()) {
        (None, None) => false,
        (Some("rmcp"), None) => true,
        _ => return Err(USAGE.into()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let issuer = format!("http://{addr}");
    let challenge = HeaderValue::from_str(&format!(
        "Bearer error=\"invalid_token\", error_description=\"the access token is invalid\", \
         resource_metadata=\"{issuer}/.well-known/oauth-protected-resource/mcp\""
    ))?;
    // As the server configures it (crates/mcp-auth-server/src/app.rs, `protected_mcp`).
    let mcp_server = with_rmcp.then(|| {
        HoldSseHeadLayer.layer(StreamableHttpService::new(
            || Ok(Tools::new()),
            Arc::new(LocalSessionManager::default()),
            // The server's list: its issuer's authority, its address, and localhost.
            StreamableHttpServerConfig::default().with_allowed_hosts([
                addr.to_string(),
                addr.to_string(),
                format!("localhost:{}", addr.port()),
            ]),
        ))
    });
    let floor = Arc::new(Floor {
        authorization: format!("Bearer {token}"),
        client_id,
        client_secret,
        metadata: metadata(&issuer),
        challenge,
        mcp_server,
    });
    let mcp_route = if with_rmcp {
        post(rmcp_mcp).get(rmcp_mcp).delete(rmcp_mcp)
    } else {
        post(mcp)
    };
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(serve_metadata),
        )
        .route("/mcp", mcp_route)
        .route("/token", post(token_endpoint))
        .route("/register", post(register))
        .with_state(floor);
    println!("listening on {addr}");
    let listener = listener.tap_io(|tcp| {
        // A failure only costs latency, which the bench reports.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// The fields and lists `mcp-auth-server` advertises, so the document has its size.
fn metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "scopes_supported": ["mcp:tools", "mcp:admin"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn serve_metadata(State(floor): State<Arc<Floor>>) -> Response {
    json_response(StatusCode::OK, &floor.metadata)
}

/// Whether `headers` carry the one valid bearer token.
fn authorized(floor: &Floor, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == floor.authorization.as_bytes())
}

/// The 401 of a missing or wrong bearer token, with its RFC 6750 challenge.
fn unauthorized(floor: &Floor) -> Response {
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "invalid_token", "error_description": "the access token is invalid"}),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, floor.challenge.clone());
    response
}

/// `/mcp` in `rmcp` mode: the bearer check, then the server's MCP server.
async fn rmcp_mcp(State(floor): State<Arc<Floor>>, request: Request) -> Response {
    if !authorized(&floor, request.headers()) {
        return unauthorized(&floor);
    }
    let Some(server) = &floor.mcp_server else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match server.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn mcp(State(floor): State<Arc<Floor>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&floor, &headers) {
        return unauthorized(&floor);
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}}),
        );
    };
    let text = &request["params"]["arguments"]["text"];
    json_response(
        StatusCode::OK,
        &json!({
            "jsonrpc": "2.0",
            "id": request["id"],
            "result": {"content": [{"type": "text", "text": text}], "isError": false},
        }),
    )
}

async fn token_endpoint(State(floor): State<Arc<Floor>>, body: Bytes) -> Response {
    let (mut grant_type, mut client_id, mut client_secret, mut scope) = (None, None, None, None);
    for (name, value) in form_urlencoded::parse(&body) {
        match &*name {
            "grant_type" => grant_type = Some(value),
            "client_id" => client_id = Some(value),
            "client_secret" => client_secret = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
    }
    let error = |status, code: &str| json_response(status, &json!({"error": code}));
    match grant_type.as_deref() {
        Some("client_credentials") => {
            let known = client_id.as_deref() == Some(floor.client_id.as_str())
                && client_secret.as_deref() == Some(floor.client_secret.as_str());
            if !known {
                return error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            let mut response = json_response(
                StatusCode::OK,
                &json!({
                    "access_token": random_hex(),
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": scope.as_deref().unwrap_or("mcp:tools"),
                }),
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        // No code is ever valid here: the shape of a refused code redemption.
        Some("authorization_code") => error(StatusCode::BAD_REQUEST, "invalid_grant"),
        _ => error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn register(body: Bytes) -> Response {
    let Ok(Value::Object(mut client)) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_client_metadata"}),
        );
    };
    if !client.get("redirect_uris").is_some_and(Value::is_array) {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_redirect_uri"}),
        );
    }
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    client.insert("client_id".to_owned(), Value::String(random_hex()));
    client.insert("client_id_issued_at".to_owned(), Value::from(issued_at));
    json_response(StatusCode::CREATED, &Value::Object(client))
}

/// 32 random bytes, hex-encoded: the size of a real token or client id.
fn random_hex() -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes: [u8; 32] = rand::random();
    let mut hex = String::with_capacity(64);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    hex
}
