//! Per-tool step-up against `mcp-auth-server`: `admin_echo` needs `mcp:admin` besides the
//! endpoint's `mcp:tools`; a token with only `mcp:tools` gets a 403 naming both, and a token
//! authorised for that union succeeds.

use mcp_auth_tests::server::{ALICE_PASSWORD, TestClient, TestServer, json_rpc_result};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_tools_only_token_steps_up_to_the_union_the_403_names() {
    let server = TestServer::start("memory").await;
    // A client that may ask for both scopes (RFC 7591 `scope`); without a `scope` request it
    // gets the default, mcp:tools.
    let info: serde_json::Value = server
        .http
        .post(server.url("/register"))
        .json(&json!({
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "mcp:tools mcp:admin",
        }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("client information");
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
