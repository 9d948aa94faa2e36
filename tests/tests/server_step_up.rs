//! Per-tool step-up against `mcp-auth-server`: `admin_echo` needs `mcp:admin` besides the
//! endpoint's `mcp:tools`; a token with only `mcp:tools` gets a 403 naming both, and a token
//! authorised for that union succeeds.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use mcp_auth_tests::server::{ALICE_PASSWORD, TestClient, TestServer, json_rpc_result};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_tools_only_token_steps_up_to_the_union_the_403_names() {
    // A client that registered for both scopes (RFC 7591 `scope`).
    steps_up_after_registering_with("mcp:tools mcp:admin").await;
}

/// The official MCP SDKs register with the scope of their first 401 challenge, `mcp:tools`,
/// and learn of `mcp:admin` only from the 403; the server records the step-up scopes at
/// registration (RFC 7591 §3.2.1), so their re-authorization is not `invalid_scope`.
#[tokio::test]
async fn a_client_registered_for_the_first_challenge_only_can_still_step_up() {
    steps_up_after_registering_with("mcp:tools").await;
}

async fn steps_up_after_registering_with(registered_scope: &str) {
    let server = TestServer::start("memory").await;
    let info: serde_json::Value = server
        .http
        .post(server.url("/register"))
        .json(&json!({
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": registered_scope,
        }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("client information");
    assert_eq!(info["scope"], "mcp:tools mcp:admin", "registered scope");
    let client = TestClient {
        client_id: info["client_id"].as_str().expect("client_id").to_owned(),
        redirect_uri: "http://127.0.0.1:9/callback".to_owned(),
    };
    let tokens = server.sign_in(&client, "alice", ALICE_PASSWORD).await;
    let tools_only = tokens["access_token"].as_str().expect("access token");
    assert_eq!(tokens["scope"], "mcp:tools");

    let session = server.mcp_initialize(tools_only).await;
    let echoed = server
        .mcp_call_ok(tools_only, &session, "echo", json!({"text": "hi"}))
        .await;
    assert_eq!(echoed["content"][0]["text"], "hi");

    let response = server
        .mcp_call(tools_only, &session, "admin_echo", json!({"text": "hi"}))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ASCII challenge")
        .to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="mcp:tools mcp:admin""#),
        "{challenge}"
    );

    // Re-authorise with exactly what the challenge named.
    let authorization = server.authorize_scope(&client, "mcp:tools mcp:admin").await;
    let page = server.sign_in_page(&authorization).await;
    let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
    let tokens = server
        .exchange_code(&client, &authorization, &params["code"])
        .await;
    assert_eq!(tokens["scope"], "mcp:tools mcp:admin");
    let admin = tokens["access_token"].as_str().expect("access token");

    let session = server.mcp_initialize(admin).await;
    let response = server
        .mcp_call(admin, &session, "admin_echo", json!({"text": "as admin"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let result = json_rpc_result(response, 2).await;
    assert_eq!(result["content"][0]["text"], "as admin");
}
