//! `mcp-auth-server`'s sign-in page and MCP endpoint under attack, on the in-memory store:
//! escaping and security headers, CSRF, session binding, the bearer challenge.

use mcp_auth_tests::server::{ALICE_PASSWORD, BOB_PASSWORD, SCOPE, TestServer};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, WWW_AUTHENTICATE};
use serde_json::json;

#[tokio::test]
async fn sign_in_page_escapes_client_metadata_and_sends_security_headers() {
    let server = TestServer::start("memory").await;
    let client = server.register("Evil & <script>alert(1)</script>").await;
    let authorization = server.authorize(&client).await;
    let page = server.sign_in_page(&authorization).await;

    let html = &page.html;
    assert!(
        html.contains("Evil &amp; &lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script"), "no script at all: {html}");
    assert!(
        html.contains("<code>127.0.0.1</code>"),
        "redirect host shown"
    );
    assert!(
        html.contains(&format!("<code>{SCOPE}</code>")),
        "scopes shown"
    );
    assert!(
        html.contains(&client.client_id),
        "client id shown beside the name"
    );
    assert_eq!(html.matches("<form").count(), 1, "one form");
    assert!(html.contains("<form method=\"post\">"));
    for input in [
        "name=\"username\"",
        "name=\"password\"",
        "type=\"password\"",
        "name=\"decision\" value=\"approve\"",
        "name=\"decision\" value=\"deny\"",
    ] {
        assert!(html.contains(input), "{input} in {html}");
    }

    assert_eq!(
        page.header("content-security-policy"),
        "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; \
         form-action 'self' http://127.0.0.1:9"
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert!(page.header("content-type").starts_with("text/html"));
    let cookie = &page.set_cookie;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/sign-in"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert_eq!(
        page.csrf_cookie, page.csrf_token,
        "double submit: same token"
    );
    assert!(page.csrf_token.len() >= 32, "a long random token");
}

#[tokio::test]
async fn forged_or_missing_csrf_token_is_refused_and_the_request_stays_pending() {
    let server = TestServer::start("memory").await;
    let client = server.register("CSRF client").await;
    let authorization = server.authorize(&client).await;
    let page = server.sign_in_page(&authorization).await;
    let approve = [
        ("username", "alice"),
        ("password", ALICE_PASSWORD),
        ("decision", "approve"),
    ];

    // A token of the right shape that is not the cookie's.
    let mut forged = page.clone();
    forged.csrf_token = format!("{}x", &page.csrf_token[..page.csrf_token.len() - 1]);
    let response = server.submit(&forged, &approve).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["x-frame-options"],
        "DENY",
        "error pages carry the security headers too"
    );

    // A cross-site post: SameSite=Strict keeps the cookie at home.
    let response = server
        .http
        .post(server.url("/sign-in"))
        .form(&[
            ("csrf_token", page.csrf_token.as_str()),
            ("request_id", &page.request_id),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
            ("decision", "approve"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The cookie alone is not enough either.
    let response = server
        .http
        .post(server.url("/sign-in"))
        .header(COOKIE, format!("mcp_auth_csrf={}", page.csrf_cookie))
        .form(&[
            ("csrf_token", ""),
            ("request_id", page.request_id.as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
    assert!(params.contains_key("code"), "still pending after refusals");
}

#[tokio::test]
async fn unknown_sign_in_request_gets_a_page_asking_to_start_again() {
    let server = TestServer::start("memory").await;
    for url in [
        server.url("/sign-in?request_id=not-a-request"),
        server.url("/sign-in"),
    ] {
        let response = server.http.get(&url).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        let html = response.text().await.expect("HTML");
        assert!(html.contains("start signing in again"), "{html}");
    }
}

#[tokio::test]
async fn another_principal_presenting_a_session_id_gets_404() {
    let server = TestServer::start("memory").await;
    let client = server.register("Shared client").await;
    let alice = server.sign_in(&client, "alice", ALICE_PASSWORD).await;
    let bob = server.sign_in(&client, "bob", BOB_PASSWORD).await;
    let alice_token = alice["access_token"].as_str().expect("token");
    let bob_token = bob["access_token"].as_str().expect("token");

    let session = server.mcp_initialize(alice_token).await;
    let response = server
        .mcp_call(bob_token, &session, "whoami", json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Same user through another client is another principal too.
    let other_client = server.register("Other client").await;
    let alice_elsewhere = server.sign_in(&other_client, "alice", ALICE_PASSWORD).await;
    let response = server
        .mcp_call(
            alice_elsewhere["access_token"].as_str().expect("token"),
            &session,
            "whoami",
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // And an unknown session answers the same.
    let response = server
        .mcp_call(bob_token, "no-such-session", "whoami", json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let whoami = server
        .mcp_call_ok(alice_token, &session, "whoami", json!({}))
        .await;
    assert_eq!(whoami["structuredContent"]["subject"], "alice");
}

#[tokio::test]
async fn unauthenticated_mcp_request_gets_401_with_resource_metadata() {
    let server = TestServer::start("memory").await;
    for token in [None, Some("not-a-token")] {
        let response = server
            .mcp_post(
                token,
                None,
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[WWW_AUTHENTICATE]
            .to_str()
            .expect("ASCII challenge");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{}\"",
                server.url("/.well-known/oauth-protected-resource/mcp")
            )),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn a_rejected_mcp_request_keeps_its_connection_unless_its_body_is_large() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The rejection comes before the body is read. A small declared body is read and the
    // connection kept, so a client's first 401 costs no reconnection; a large body is not
    // read, and `Connection: close` tells a keep-alive client to open a new connection.
    let server = TestServer::start("memory").await;
    let authority = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut answers = String::new();
    for _ in 0..2 {
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        answers.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(answers.matches("HTTP/1.1 401").count(), 2, "{answers}");
    assert!(
        !answers.to_ascii_lowercase().contains("connection: close"),
        "{answers}"
    );

    let large = "x".repeat(64 * 1024);
    let response = server
        .http
        .post(server.resource())
        .header("content-type", "application/json")
        .body(large)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["connection"], "close");
}

#[tokio::test]
async fn preregistered_client_from_a_file_signs_in() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("server-client-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let file = dir.join("client.json");
    std::fs::write(
        &file,
        json!({
            "client_id": "preregistered-app",
            "client_name": "Pre-registered app",
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": SCOPE,
        })
        .to_string(),
    )
    .expect("client file");
    let config = mcp_auth_server::Config::from_args([
        "mcp-auth-server",
        "--store",
        "memory",
        "--user",
        &format!("alice:{ALICE_PASSWORD}"),
        "--client",
        file.to_str().expect("UTF-8 path"),
    ])
    .expect("configuration");
    let server = TestServer::start_with(config).await;
    let client = mcp_auth_tests::server::TestClient {
        client_id: "preregistered-app".to_owned(),
        redirect_uri: "http://127.0.0.1:9/callback".to_owned(),
    };
    let tokens = server.sign_in(&client, "alice", ALICE_PASSWORD).await;
    let session = server
        .mcp_initialize(tokens["access_token"].as_str().expect("token"))
        .await;
    assert!(!session.is_empty());
}

#[tokio::test]
async fn healthz_answers_when_the_store_does() {
    let server = TestServer::start("memory").await;
    let response = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
}
