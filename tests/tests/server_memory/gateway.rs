//! Gateway mode (`--upstream`) over real sockets: the server in front of a Rust stand-in for
//! an MCP server (`gateway/upstream.rs`). What must cross the gateway (the verified identity,
//! the MCP headers, streamed bodies) and what must not (the client's token and cookies, its
//! forged identity headers, the upstream's cookies), the failures, and the layers in front
//! (session binding, per-tool scopes, the bearer check). An https upstream is reached only
//! through a root the operator names; the body limit on streamed bodies is in
//! `gateway/body_limit.rs`.

use std::time::{Duration, Instant};

use mcp_auth_server::Config;
use mcp_auth_tests::server::{ALICE_PASSWORD, BOB_PASSWORD, TestServer, without_request_budgets};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[path = "gateway/body_limit.rs"]
mod body_limit;
#[path = "gateway/upstream.rs"]
pub(crate) mod upstream;

use upstream::Upstream;

/// A gateway on the memory store in front of `upstream_url`, with `extra` flags.
async fn gateway(upstream_url: &str, extra: &[&str]) -> TestServer {
    let alice = format!("alice:{ALICE_PASSWORD}");
    let bob = format!("bob:{BOB_PASSWORD}");
    let mut args = vec![
        "mcp-auth-server",
        "--store",
        "memory",
        "--user",
        &alice,
        "--user",
        &bob,
        "--upstream",
        upstream_url,
        "--upstream-header",
        "X-Upstream-Key: gateway-secret",
        "--tool-scope",
        "deploy=mcp:admin",
    ];
    args.extend_from_slice(extra);
    let config = Config::from_args(args).expect("gateway configuration");
    TestServer::start_with(without_request_budgets(config)).await
}

/// An access token of `user` (`mcp:tools` only).
async fn token_of(server: &TestServer, user: &str, password: &str) -> (String, String) {
    let client = server.register(&format!("{user}'s client")).await;
    let tokens = server.sign_in(&client, user, password).await;
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        client.client_id.clone(),
    )
}

/// An access token of alice's with every scope (`mcp:tools mcp:admin`): the per-tool scope
/// layer cannot judge a body over its 64 KiB window, so without them it refuses such a body
/// first (403) and the gateway's own limit is never reached.
async fn admin_token(server: &TestServer) -> String {
    let client = server.register("admin client").await;
    let authorization = server.authorize_scope(&client, "mcp:tools mcp:admin").await;
    let page = server.sign_in_page(&authorization).await;
    let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
    let tokens = server
        .exchange_code(&client, &authorization, &params["code"])
        .await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn call(tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

#[tokio::test]
async fn the_upstream_gets_the_identity_and_never_the_clients_credentials() {
    let upstream = Upstream::start().await;
    let server = gateway(&upstream.url(), &[]).await;
    let (token, client_id) = token_of(&server, "alice", ALICE_PASSWORD).await;

    let response = server
        .http
        .post(server.resource())
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .header("cookie", "mcp_auth_csrf=from-the-browser")
        .header("x-mcp-auth-subject", "mallory")
        .header("X-MCP-Auth-Scopes", "everything")
        .header("x-upstream-key", "guessed")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["mcp-session-id"],
        "s-1",
        "session id back"
    );
    assert!(
        response.headers().get("set-cookie").is_none(),
        "the upstream's cookie reached the client"
    );

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let headers = &seen[0].headers;
    assert!(
        headers.get("authorization").is_none(),
        "token passed through"
    );
    assert!(headers.get("cookie").is_none(), "cookie passed through");
    assert_eq!(headers["x-mcp-auth-subject"], "alice");
    assert_eq!(headers.get_all("x-mcp-auth-subject").iter().count(), 1);
    assert_eq!(headers["x-mcp-auth-client-id"], client_id.as_str());
    assert_eq!(headers["x-mcp-auth-scopes"], "mcp:tools");
    assert_eq!(headers["x-upstream-key"], "gateway-secret");
    assert_eq!(headers.get_all("x-upstream-key").iter().count(), 1);
    assert_eq!(headers["mcp-protocol-version"], "2025-06-18");
    assert_eq!(headers["accept"], "application/json, text/event-stream");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["host"], upstream.addr.to_string().as_str());

    // Without a token nothing is forwarded.
    let response = server
        .mcp_post(
            None,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        upstream.seen().len(),
        1,
        "an unauthenticated request was forwarded"
    );
}

#[tokio::test]
async fn sse_events_reach_the_client_as_the_upstream_sends_them() {
    let upstream = Upstream::start().await;
    let server = gateway(&upstream.url(), &[]).await;
    let (token, _) = token_of(&server, "alice", ALICE_PASSWORD).await;
    let session = initialize(&server, &token).await;

    let mut response = server
        .mcp_post(Some(&token), Some(&session), call("stream"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        arrivals.push((Instant::now(), text.matches("data:").count()));
    }
    assert_eq!(text.matches("data:").count(), 3, "{text}");
    let first = arrivals.iter().find(|(_, events)| *events >= 1).unwrap().0;
    let last = arrivals.iter().find(|(_, events)| *events == 3).unwrap().0;
    // The upstream sends the last event 600 ms after the first: a buffering proxy would
    // deliver all three at once.
    assert!(
        last.duration_since(first) >= Duration::from_millis(400),
        "the events arrived together: {:?}",
        last.duration_since(first)
    );

    // A GET stream opens, and its first event arrives while it stays open.
    let mut stream = server
        .http
        .get(server.resource())
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("last-event-id", "41")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("the GET stream's first event in time")
        .unwrap()
        .unwrap();
    assert!(std::str::from_utf8(&first).unwrap().contains("listening"));
    drop(stream);
    let get = upstream
        .seen()
        .into_iter()
        .find(|seen| seen.method == http::Method::GET)
        .unwrap();
    assert_eq!(get.headers["last-event-id"], "41");
    assert_eq!(get.headers["mcp-session-id"], session.as_str());
}

#[tokio::test]
async fn sessions_stay_with_their_principal_and_delete_is_forwarded() {
    let upstream = Upstream::start().await;
    let server = gateway(&upstream.url(), &[]).await;
    let (alice, _) = token_of(&server, "alice", ALICE_PASSWORD).await;
    let (bob, _) = token_of(&server, "bob", BOB_PASSWORD).await;
    let session = initialize(&server, &alice).await;
    let before = upstream.seen().len();

    let response = server
        .mcp_post(Some(&bob), Some(&session), call("echo"))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "bob used alice's session"
    );
    assert_eq!(upstream.seen().len(), before, "bob's request was forwarded");

    let response = server
        .http
        .delete(server.resource())
        .bearer_auth(&alice)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let delete = upstream.seen().pop().unwrap();
    assert_eq!(delete.method, http::Method::DELETE);
    assert_eq!(delete.headers["mcp-session-id"], session.as_str());
    let response = server
        .mcp_post(Some(&alice), Some(&session), call("echo"))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "a deleted session"
    );
}

#[tokio::test]
async fn a_principals_oldest_session_is_closed_upstream_in_its_name() {
    let upstream = Upstream::start().await;
    let alice_user = format!("alice:{ALICE_PASSWORD}");
    let mut config = Config::from_args([
        "mcp-auth-server",
        "--store",
        "memory",
        "--user",
        &alice_user,
        "--upstream",
        &upstream.url(),
        "--tool-scope",
        "deploy=mcp:admin",
    ])
    .unwrap();
    config.limits.mcp_sessions_per_principal = 1;
    let server = TestServer::start_with(without_request_budgets(config)).await;
    let (alice, _) = token_of(&server, "alice", ALICE_PASSWORD).await;
    let first = initialize(&server, &alice).await;
    let _second = initialize(&server, &alice).await;
    let delete = upstream
        .seen()
        .into_iter()
        .find(|seen| seen.method == http::Method::DELETE)
        .expect("the oldest session closed upstream");
    assert_eq!(delete.headers["mcp-session-id"], first.as_str());
    assert_eq!(delete.headers["x-mcp-auth-subject"], "alice");
    assert!(delete.headers.get("authorization").is_none());
}

#[tokio::test]
async fn per_tool_scopes_apply_to_upstream_tools() {
    let upstream = Upstream::start().await;
    let server = gateway(&upstream.url(), &[]).await;
    let (token, _) = token_of(&server, "alice", ALICE_PASSWORD).await;
    let session = initialize(&server, &token).await;
    let before = upstream.seen().len();
    let response = server
        .mcp_post(Some(&token), Some(&session), call("deploy"))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains("mcp:admin"), "{challenge}");
    assert_eq!(
        upstream.seen().len(),
        before,
        "the refused call was forwarded"
    );
    let metadata: Value = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["scopes_supported"],
        json!(["mcp:tools", "mcp:admin"])
    );
}

#[tokio::test]
async fn upstream_failures_are_clear_and_name_no_address() {
    // Nothing listens on a port that was just released.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let server = gateway(&format!("http://{closed}/mcp"), &[]).await;
    let (token, _) = token_of(&server, "alice", ALICE_PASSWORD).await;
    let response = server.mcp_post(Some(&token), None, call("echo")).await;
    assert_failure(
        response,
        StatusCode::BAD_GATEWAY,
        "upstream_unreachable",
        &closed,
    )
    .await;
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(server);

    let upstream = Upstream::start().await;
    let server = gateway(&upstream.url(), &["--upstream-timeout", "1"]).await;
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let (token, _) = token_of(&server, "alice", ALICE_PASSWORD).await;
    let session = initialize(&server, &token).await;
    // A redirect would also name the upstream and lead the client around the gateway.
    for (tool, status, error) in [
        ("slow", StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        (
            "reject",
            StatusCode::BAD_GATEWAY,
            "upstream_rejected_gateway",
        ),
        ("redirect", StatusCode::BAD_GATEWAY, "upstream_redirected"),
    ] {
        let response = server
            .mcp_post(Some(&token), Some(&session), call(tool))
            .await;
        assert!(response.headers().get("location").is_none(), "{tool}");
        assert_failure(response, status, error, &upstream.addr).await;
    }

    // A declared body over the limit is refused before anything is forwarded (see
    // `admin_token` for why the token has every scope).
    let token = &admin_token(&server).await;
    let session = initialize(&server, token).await;
    let before = upstream.seen().len();
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let response = server
        .http
        .post(server.resource())
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        upstream.seen().len(),
        before,
        "an oversized body was forwarded"
    );
}

#[tokio::test]
async fn an_https_upstream_is_reached_only_through_a_root_the_operator_names() {
    let (upstream, root) = Upstream::start_https().await;
    assert!(upstream.url().starts_with("https://127.0.0.1:"));

    // Certificate verification is on: the upstream's self-signed certificate is trusted by
    // nothing the gateway knows without `--upstream-root-cert`.
    let server = gateway(&upstream.url(), &[]).await;
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (token, _) = token_of(&server, "alice", ALICE_PASSWORD).await;
    let response = server.mcp_post(Some(&token), None, call("echo")).await;
    assert_failure(
        response,
        StatusCode::BAD_GATEWAY,
        "upstream_unreachable",
        &upstream.addr,
    )
    .await;
    assert!(
        upstream.seen().is_empty(),
        "a request crossed an unverified TLS connection"
    );
    drop(server);

    let root = root.to_str().unwrap();
    let server = gateway(&upstream.url(), &["--upstream-root-cert", root]).await;
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let (token, _) = token_of(&server, "alice", ALICE_PASSWORD).await;
    let session = initialize(&server, &token).await;
    let response = server
        .mcp_post(Some(&token), Some(&session), call("echo"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
    let seen = upstream.seen();
    let call = seen.last().unwrap();
    assert_eq!(call.tool().as_deref(), Some("echo"));
    assert_eq!(call.headers["x-mcp-auth-subject"], "alice");
    assert_eq!(call.headers["x-upstream-key"], "gateway-secret");
    assert!(call.headers.get("authorization").is_none());
}

async fn assert_failure(
    response: reqwest::Response,
    status: StatusCode,
    error: &str,
    upstream: &std::net::SocketAddr,
) {
    assert_eq!(response.status(), status, "{error}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], error, "{text}");
    assert!(
        !text.contains(&upstream.port().to_string()),
        "the body names the upstream: {text}"
    );
}

/// `initialize` through the gateway; the session id the upstream gave.
async fn initialize(server: &TestServer, token: &str) -> String {
    let response = server
        .mcp_post(
            Some(token),
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "initialize");
    response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}
