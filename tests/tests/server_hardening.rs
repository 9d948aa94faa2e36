//! `mcp-auth-server` against an anonymous caller who wants it to spend: connections, slow
//! requests, request budgets, password guessing, MCP sessions, hang-ups, and the latency a
//! kept-alive MCP client sees. Black-box, over real loopback sockets.

// A failed expectation aborts the test with its message; that is what these helpers are for.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use mcp_auth_server::Config;
use mcp_auth_tests::server::{ALICE_PASSWORD, TestServer, location, redirect_params};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A memory-store server with the users alice and bob and `edit` applied to its settings.
async fn server_with(edit: impl FnOnce(&mut Config)) -> TestServer {
    let alice = format!("alice:{ALICE_PASSWORD}");
    let mut config = Config::from_args([
        "mcp-auth-server",
        "--store",
        "memory",
        "--user",
        &alice,
        "--user",
        "bob:bob-password",
    ])
    .expect("test configuration");
    config = mcp_auth_tests::server::without_request_budgets(config);
    edit(&mut config);
    TestServer::start_with(config).await
}

/// The host:port of `server`.
fn authority(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// An access token of alice's, for a client registered as `name`.
async fn alice_token(server: &TestServer, name: &str) -> String {
    let client = server.register(name).await;
    let tokens = server.sign_in(&client, "alice", ALICE_PASSWORD).await;
    tokens["access_token"].as_str().expect("token").to_owned()
}

/// A raw connection to `server` on which `bytes` were sent.
async fn send_raw(server: &TestServer, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(authority(server))
        .await
        .expect("connect");
    stream.write_all(bytes).await.expect("write");
    stream
}

/// Reads until the peer closes (Ok(bytes read)) or `limit` passes (Err).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, ()> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(received),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return Err(()),
        }
    }
}

mod connections {
    use super::*;

    /// Nagle's algorithm meeting the client's delayed ACK costs ~40 ms per response written
    /// in several pieces (an SSE answer to `tools/call`); with `TCP_NODELAY` every call on a
    /// kept-alive connection answers in about a millisecond. The bound is generous for a
    /// loaded 2-core machine and still far below the 40 ms stall.
    #[tokio::test]
    async fn mcp_calls_on_one_kept_alive_connection_do_not_wait_for_delayed_acks() {
        let server = server_with(|_| {}).await;
        let token = alice_token(&server, "Kept-alive client").await;
        let session = server.mcp_initialize(&token).await;
        let mut took = Vec::new();
        for i in 0..9 {
            let started = Instant::now();
            let result = server
                .mcp_call_ok(&token, &session, "echo", json!({"text": format!("m{i}")}))
                .await;
            took.push(started.elapsed());
            assert!(result.to_string().contains(&format!("m{i}")));
        }
        took.sort();
        let median = took[took.len() / 2];
        assert!(
            median < Duration::from_millis(20),
            "median tools/call took {median:?} on a kept-alive connection: {took:?}"
        );
    }

    #[tokio::test]
    async fn a_half_sent_request_head_loses_its_connection_after_the_header_timeout() {
        let server = server_with(|config| config.limits.header_read_timeout = 1).await;
        let mut stream = send_raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(15))
            .await
            .expect("the server closes a connection whose head never completes");
        assert!(
            !answer.starts_with(b"HTTP/1.1 200"),
            "no answer to half a request"
        );

        // An idle kept-alive connection is closed too.
        let mut idle = send_raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let answer = read_until_closed(&mut idle, Duration::from_secs(15))
            .await
            .expect("the server closes an idle connection");
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "the request was answered first"
        );
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_until_one_closes() {
        let server = server_with(|config| config.limits.max_connections = 2).await;
        // Two idle connections (or one and the harness client's kept-alive one, with the
        // other waiting in the backlog) hold both slots.
        let first = TcpStream::connect(authority(&server))
            .await
            .expect("connect");
        let second = TcpStream::connect(authority(&server))
            .await
            .expect("connect");
        let probe = || async {
            let mut stream = send_raw(
                &server,
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await;
            let mut buf = [0u8; 64];
            tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf))
                .await
                .ok()
                .and_then(Result::ok)
                .filter(|n| *n > 0)
                .map(|n| buf[..n].to_vec())
        };
        assert!(
            probe().await.is_none(),
            "a connection beyond the cap is not served"
        );
        drop(first);
        drop(second);
        let mut served = None;
        for _ in 0..20 {
            served = probe().await;
            if served.is_some() {
                break;
            }
        }
        let served = served.expect("a freed slot serves the waiting connection");
        assert!(served.starts_with(b"HTTP/1.1 200"));
    }
}

mod budgets {
    use super::*;

    async fn register(server: &TestServer, forwarded_for: Option<&str>) -> reqwest::Response {
        let mut request = server
            .http
            .post(server.url("/register"))
            .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "x"}));
        if let Some(address) = forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        request.send().await.expect("register")
    }

    async fn assert_rate_limited(response: reqwest::Response) {
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .expect("text")
            .parse()
            .expect("whole seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.expect("an OAuth error body");
        assert_eq!(body["error"], "temporarily_unavailable");
    }

    #[tokio::test]
    async fn registration_beyond_the_budget_answers_429_with_retry_after_never_401() {
        let server = server_with(|config| config.limits.register_per_minute = 3).await;
        for _ in 0..3 {
            assert_eq!(register(&server, None).await.status(), StatusCode::CREATED);
        }
        assert_rate_limited(register(&server, None).await).await;
        // Without a trusted proxy, a forwarding header is the client's word: same budget.
        assert_rate_limited(register(&server, Some("198.51.100.1")).await).await;
    }

    #[tokio::test]
    async fn token_requests_beyond_the_budget_answer_429() {
        let server = server_with(|config| config.limits.token_per_minute = 2).await;
        let bogus = [
            ("grant_type", "authorization_code"),
            ("code", "made-up"),
            ("client_id", "nobody"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("code_verifier", "v"),
        ];
        let post = || server.http.post(server.url("/token")).form(&bogus).send();
        for _ in 0..2 {
            let response = post().await.expect("token");
            assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        }
        assert_rate_limited(post().await.expect("token")).await;
        // Metadata is not budgeted.
        let metadata = server
            .http
            .get(server.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .expect("metadata");
        assert_eq!(metadata.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
        let server = server_with(|config| {
            config.limits.register_per_minute = 1;
            config.trusted_proxies = vec!["127.0.0.0/8".parse().expect("range")];
        })
        .await;
        let alice = Some("198.51.100.1");
        assert_eq!(register(&server, alice).await.status(), StatusCode::CREATED);
        assert_rate_limited(register(&server, alice).await).await;
        // Another client behind the same proxy.
        let bob = Some("198.51.100.2");
        assert_eq!(register(&server, bob).await.status(), StatusCode::CREATED);
        // A client cannot escape its budget by prepending a spoofed hop.
        assert_rate_limited(register(&server, Some("203.0.113.77, 198.51.100.1")).await).await;
    }
}

mod sign_in {
    use super::*;

    #[tokio::test]
    async fn a_pending_sign_in_is_burned_after_five_wrong_passwords() {
        let server = server_with(|_| {}).await;
        let client = server.register("Guessing client").await;
        let authorization = server.authorize(&client).await;
        let page = server.sign_in_page(&authorization).await;
        let attempt = |password: &'static str| {
            let page = page.clone();
            let server = &server;
            async move {
                server
                    .submit(
                        &page,
                        &[
                            ("username", "alice"),
                            ("password", password),
                            ("decision", "approve"),
                        ],
                    )
                    .await
            }
        };
        for _ in 0..5 {
            let response = attempt("wrong").await;
            assert_eq!(response.status(), StatusCode::OK, "the form again");
            assert!(
                response
                    .text()
                    .await
                    .expect("html")
                    .contains("Wrong user name")
            );
        }
        // The right password no longer helps: the request is burned and the client told.
        let response = attempt(ALICE_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let params = redirect_params(&location(&response));
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("access_denied")
        );
        assert!(!params.contains_key("code"));
        let again = attempt(ALICE_PASSWORD).await;
        assert_eq!(
            again.status(),
            StatusCode::BAD_REQUEST,
            "the request is gone"
        );
    }

    #[tokio::test]
    async fn guesses_at_one_user_name_are_throttled_across_sign_ins() {
        let server = server_with(|config| config.limits.sign_in_attempts_per_user = 3).await;
        let client = server.register("Spraying client").await;
        for i in 0..4 {
            let authorization = server.authorize(&client).await;
            let page = server.sign_in_page(&authorization).await;
            let password = if i < 3 { "wrong" } else { ALICE_PASSWORD };
            let response = server
                .submit(
                    &page,
                    &[
                        ("username", "alice"),
                        ("password", password),
                        ("decision", "approve"),
                    ],
                )
                .await;
            if i < 3 {
                assert_eq!(response.status(), StatusCode::OK);
            } else {
                // Refused before any password check, with the wait, and never a 401.
                assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
                assert!(response.headers().contains_key("retry-after"));
            }
        }
        // Another user name has its own budget.
        let authorization = server.authorize(&client).await;
        let page = server.sign_in_page(&authorization).await;
        let params = server.approve(&page, "bob", "bob-password").await;
        assert!(params.contains_key("code"), "{params:?}");
    }

    #[tokio::test]
    async fn a_csrf_token_from_one_sign_in_is_refused_for_another() {
        let server = server_with(|_| {}).await;
        let client = server.register("CSRF binding").await;
        let first = server.sign_in_page(&server.authorize(&client).await).await;
        let second = server.sign_in_page(&server.authorize(&client).await).await;
        // The first page's cookie and token, submitted for the second request.
        let mut crossed = first.clone();
        crossed.request_id = second.request_id.clone();
        let response = server
            .submit(
                &crossed,
                &[
                    ("username", "alice"),
                    ("password", ALICE_PASSWORD),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        // Each page's own pair still works.
        let params = server.approve(&second, "alice", ALICE_PASSWORD).await;
        assert!(params.contains_key("code"));
    }
}

mod sessions {
    use super::*;

    #[tokio::test]
    async fn a_principal_opening_more_sessions_than_its_share_loses_its_oldest() {
        let server = server_with(|config| config.limits.mcp_sessions_per_principal = 2).await;
        let token = alice_token(&server, "Session hoarder").await;
        let oldest = server.mcp_initialize(&token).await;
        let middle = server.mcp_initialize(&token).await;
        let newest = server.mcp_initialize(&token).await;
        let response = server
            .mcp_call(&token, &oldest, "echo", json!({"text": "hi"}))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "the oldest was closed"
        );
        for session in [&middle, &newest] {
            server
                .mcp_call_ok(&token, session, "echo", json!({"text": "hi"}))
                .await;
        }
    }
}

mod timeouts {
    use super::*;

    #[tokio::test]
    async fn a_request_whose_body_never_arrives_answers_408_after_the_request_timeout() {
        let server = server_with(|config| config.limits.request_timeout = 1).await;
        let mut stream = send_raw(
            &server,
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\ngrant_type=",
        )
        .await;
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buf))
            .await
            .expect("an answer before the test's own deadline")
            .expect("read");
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }

    /// An open SSE stream is a response whose headers came at once; the request timeout
    /// bounds only the time to those headers, so the stream outlives it.
    #[tokio::test]
    async fn an_open_mcp_event_stream_outlives_the_request_timeout() {
        let server = server_with(|config| config.limits.request_timeout = 1).await;
        let token = alice_token(&server, "Streaming client").await;
        let session = server.mcp_initialize(&token).await;
        let mut stream = server
            .http
            .get(server.resource())
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .header(
                "mcp-protocol-version",
                mcp_auth_tests::server::MCP_PROTOCOL_VERSION,
            )
            .send()
            .await
            .expect("GET /mcp");
        assert_eq!(stream.status(), StatusCode::OK);
        // Nothing arrives (or only keep-alives), and the stream does not end.
        let waited = tokio::time::timeout(Duration::from_millis(2500), async {
            loop {
                match stream.chunk().await {
                    Ok(Some(_)) => continue,
                    other => return other.map(|_| ()),
                }
            }
        })
        .await;
        assert!(waited.is_err(), "the stream ended within 2.5 s: {waited:?}");
    }
}
