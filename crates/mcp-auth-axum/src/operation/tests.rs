//! The per-operation layer through `Router::oneshot`: decisions, challenges, and the body
//! reaching the inner service intact.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode, header};
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::{MemoryStore, StoreProvider, TokenStore};
use mcp_auth_handlers::McpOperationScopes;
use tower::ServiceExt as _;

use crate::McpAuth;

const ISSUER: &str = "http://127.0.0.1:8080";
const RESOURCE: &str = "http://127.0.0.1:8080/mcp";
const LIMIT: usize = 200;

async fn token(store: &MemoryStore, scopes: &[&str]) -> String {
    let raw = mcp_auth_core::secrets::random_secret();
    let record = serde_json::from_value(serde_json::json!({
        "token_hash": SecretHash::of(&raw),
        "grant_id": mcp_auth_core::secrets::random_id(),
        "client_id": "client-1",
        "scopes": scopes,
        "expires_at": i64::MAX / 2,
        "resource": RESOURCE,
        "subject": "alice",
        "claims": {"iss": ISSUER},
    }))
    .expect("record");
    assert!(store.issue_tokens(&record, None).await.expect("issue"));
    raw
}

/// The inner service answers with the body it received, so every case also proves the body
/// was re-attached whole.
async fn echo(body: String) -> String {
    body
}

fn app(store: &Arc<MemoryStore>) -> Router {
    let provider = Arc::new(
        StoreProvider::builder(Arc::clone(store), ISSUER)
            .build()
            .expect("provider"),
    );
    let settings = mcp_auth_core::AuthSettings::builder(ISSUER)
        .resource_server_url(RESOURCE)
        .required_scopes(["mcp:tools"])
        .build()
        .expect("settings");
    let auth = McpAuth::builder(provider)
        .settings(settings)
        .build()
        .expect("auth");
    let bearer = auth.require_bearer().expect("resource");
    let operations = bearer
        .operation_scopes(
            McpOperationScopes::new()
                .tool("admin_echo", ["mcp:admin"])
                .method("resources/list", ["mcp:resources"]),
        )
        .body_limit(LIMIT);
    Router::new().route(
        "/mcp",
        post(echo).route_layer(operations).route_layer(bearer),
    )
}

fn call(tool: &str, padding: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(padding)
    )
}

/// Extra request headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// What a request should get: the echoed body, or a status and the challenge's `scope`.
#[derive(Debug, PartialEq)]
enum Expect {
    Echo,
    Refused(StatusCode, Option<String>),
}

fn refused(status: u16, scope: &str) -> Expect {
    Expect::Refused(
        StatusCode::from_u16(status).expect("status"),
        Some(scope.to_owned()),
    )
}

async fn check(app: &Router, bearer: &str, headers: &[(&str, &str)], body: &str, expect: Expect) {
    let mut request =
        Request::post("/mcp").header(header::AUTHORIZATION, format!("Bearer {bearer}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(body.to_owned())).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let scope = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("scope=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let got = if status == StatusCode::OK {
        assert_eq!(bytes, body.as_bytes(), "the inner service saw another body");
        Expect::Echo
    } else {
        Expect::Refused(status, scope)
    };
    assert_eq!(got, expect, "{headers:?} {}", &body[..body.len().min(80)]);
}

#[tokio::test]
async fn operations_need_their_scopes_and_challenges_name_the_union() {
    let store = Arc::new(MemoryStore::new());
    let app = app(&store);
    let tools = token(&store, &["mcp:tools"]).await;
    let admin = token(&store, &["mcp:tools", "mcp:admin"]).await;
    let parent = token(&store, &["mcp"]).await;
    let admin_call = call("admin_echo", 0);
    let echo_call = call("echo", 0);
    let big_echo = call("echo", LIMIT);
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#;
    let batch = format!("[{}]", call("admin_echo", 0));
    let admin_headers = [("mcp-method", "tools/call"), ("mcp-name", "admin_echo")];
    let echo_headers = [("mcp-method", "tools/call"), ("mcp-name", "echo")];
    let cases: Vec<(&str, Headers<'_>, &str, Expect)> = vec![
        // Body only (older clients).
        (&tools, &[], &echo_call, Expect::Echo),
        (
            &tools,
            &[],
            &admin_call,
            refused(403, "mcp:tools mcp:admin"),
        ),
        (&admin, &[], &admin_call, Expect::Echo),
        (&parent, &[], &admin_call, Expect::Echo),
        (&tools, &[], list, refused(403, "mcp:tools mcp:resources")),
        (&tools, &[], &batch, refused(403, "mcp:tools mcp:admin")),
        (&tools, &[], "", Expect::Echo),
        // Fail closed: a body that cannot be judged needs every configured scope.
        (
            &tools,
            &[],
            "not json",
            refused(403, "mcp:tools mcp:resources mcp:admin"),
        ),
        (
            &tools,
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_echo","name":"echo"}}"#,
            refused(403, "mcp:tools mcp:resources mcp:admin"),
        ),
        (
            &tools,
            &echo_headers,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"admin_echo"}}"#,
            refused(403, "mcp:tools mcp:resources mcp:admin"),
        ),
        (
            &admin,
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"admin_echo"}}"#,
            refused(403, "mcp:tools mcp:resources mcp:admin"),
        ),
        // Headers (2026-07-28 clients): they can add, never remove.
        (
            &tools,
            &admin_headers,
            &admin_call,
            refused(403, "mcp:tools mcp:admin"),
        ),
        (
            &tools,
            &admin_headers,
            "",
            refused(403, "mcp:tools mcp:admin"),
        ),
        (
            &tools,
            &echo_headers,
            &admin_call,
            refused(403, "mcp:tools mcp:admin"),
        ),
        (&admin, &admin_headers, &admin_call, Expect::Echo),
        // Over the read limit: cannot be judged, so every configured scope; re-attached whole.
        (
            &tools,
            &echo_headers,
            &big_echo,
            refused(403, "mcp:tools mcp:resources mcp:admin"),
        ),
        (
            &admin,
            &[],
            &big_echo,
            refused(403, "mcp:tools mcp:resources mcp:admin"),
        ),
    ];
    for (bearer, headers, body, expect) in cases {
        check(&app, bearer, headers, body, expect).await;
    }
    let all = token(&store, &["mcp:tools", "mcp:admin", "mcp:resources"]).await;
    check(&app, &all, &[], &big_echo, Expect::Echo).await;
    // A token with every configured scope passes even a body that cannot be judged.
    check(&app, &all, &[], "not json", Expect::Echo).await;
    check(
        &app,
        &all,
        &[],
        &call("admin_echo", 10 * LIMIT),
        Expect::Echo,
    )
    .await;
}

#[tokio::test]
async fn the_base_requirement_still_comes_first() {
    let store = Arc::new(MemoryStore::new());
    let app = app(&store);
    let other = token(&store, &["other"]).await;
    check(
        &app,
        &other,
        &[],
        &call("echo", 0),
        refused(403, "mcp:tools"),
    )
    .await;
    check(
        &app,
        "unknown",
        &[],
        &call("admin_echo", 0),
        refused(401, "mcp:tools"),
    )
    .await;
}
