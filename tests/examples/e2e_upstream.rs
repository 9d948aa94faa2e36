//! The upstream of `cargo xtask bench gateway`: a trivial streamable-HTTP MCP server without
//! authorization, loaded directly and through `mcp-auth-server --upstream` in the same run, so
//! that what the gateway adds is the difference.
//!
//! - `POST /mcp` `initialize`: a JSON result and a fresh `Mcp-Session-Id`. Its `instructions`
//!   say which identity headers arrived and whether an `Authorization` header did, so that
//!   the bench can check what the gateway forwards.
//! - `POST /mcp` with a session: a notification gets `202 Accepted`; `tools/call` a JSON-RPC
//!   result echoing its `text` argument (as the floor does); `tools/list` the one `echo` tool;
//!   anything else "method not found". No session: 400; an unknown one: 404.
//! - `DELETE /mcp` ends a session (the gateway sends one when it closes a principal's oldest).
//!
//! Answers are `application/json`, never SSE. No auth, no logging, no middleware; the
//! sessions are a set of ids. `TCP_NODELAY` is set on every connection, as on the floor.
//!
//! Usage: `e2e_upstream`. It listens on a free loopback port and prints `listening on ADDR` on
//! its first line of stdout.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use serde_json::{Value, json};

/// Open sessions at most; `initialize` is refused beyond (a bench run opens a few hundred).
const MAX_SESSIONS: usize = 100_000;
const SESSION_HEADER: &str = "mcp-session-id";

/// The ids of the open sessions.
type Sessions = Arc<Mutex<HashSet<String>>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().len() > 1 {
        return Err("usage: e2e_upstream".into());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/mcp", post(mcp).delete(end_session))
        .with_state(Sessions::default());
    println!("listening on {addr}");
    let listener = listener.tap_io(|tcp| {
        // A failure only costs latency, which the bench reports.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn rpc_error(status: StatusCode, id: &Value, code: i64, message: &str) -> Response {
    json_response(
        status,
        &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    )
}

fn lock(sessions: &Sessions) -> std::sync::MutexGuard<'_, HashSet<String>> {
    sessions.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn mcp(State(sessions): State<Sessions>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return rpc_error(StatusCode::BAD_REQUEST, &Value::Null, -32700, "parse error");
    };
    let id = &request["id"];
    let method = request["method"].as_str().unwrap_or_default();
    if method == "initialize" {
        return initialize(&sessions, &headers, id);
    }
    let Some(session) = headers.get(SESSION_HEADER) else {
        return rpc_error(StatusCode::BAD_REQUEST, id, -32600, "no session");
    };
    let known = session
        .to_str()
        .is_ok_and(|session| lock(&sessions).contains(session));
    if !known {
        return rpc_error(StatusCode::NOT_FOUND, id, -32001, "session not found");
    }
    if id.is_null() {
        // A notification (or a response): nothing to answer.
        return StatusCode::ACCEPTED.into_response();
    }
    let result = match method {
        "tools/call" => json!({
            "content": [{"type": "text", "text": request["params"]["arguments"]["text"]}],
            "isError": false,
        }),
        "tools/list" => json!({"tools": [{
            "name": "echo",
            "description": "Returns its text argument.",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        }]}),
        _ => return rpc_error(StatusCode::OK, id, -32601, "method not found"),
    };
    json_response(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

/// A new session, and in `instructions` the identity headers this request carried.
fn initialize(sessions: &Sessions, headers: &HeaderMap, id: &Value) -> Response {
    let session = random_hex();
    let Ok(session_header) = HeaderValue::from_str(&session) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    {
        let mut sessions = lock(sessions);
        if sessions.len() >= MAX_SESSIONS {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                id,
                -32000,
                "too many sessions",
            );
        }
        sessions.insert(session);
    }
    let seen = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let authorization = if headers.contains_key(header::AUTHORIZATION) {
        "present"
    } else {
        "absent"
    };
    let instructions = format!(
        "subject={} client={} scopes={} authorization={authorization}",
        seen("x-mcp-auth-subject"),
        seen("x-mcp-auth-client-id"),
        seen("x-mcp-auth-scopes"),
    );
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "e2e_upstream", "version": "0"},
                "instructions": instructions,
            },
        }),
    );
    response
        .headers_mut()
        .insert(SESSION_HEADER, session_header);
    response
}

async fn end_session(State(sessions): State<Sessions>, headers: HeaderMap) -> StatusCode {
    let removed = headers
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|session| lock(&sessions).remove(session));
    if removed {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

/// 32 random bytes, hex-encoded: the size of a real session id.
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
