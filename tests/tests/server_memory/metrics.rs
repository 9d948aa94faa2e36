//! `--metrics-bind`: the Prometheus exposition on its own listener, fed by the whole stack.

use mcp_auth_server::Config;
use mcp_auth_tests::server::{ALICE_PASSWORD, TestServer, without_request_budgets};

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the first sample whose line starts with `series` (name and labels as
/// rendered), or 0.
fn sample(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_errors_grants_audit_events_storage_and_sessions() {
    let metrics = format!("127.0.0.1:{}", free_port());
    let alice = format!("alice:{ALICE_PASSWORD}");
    let args = [
        "mcp-auth-server",
        "--store",
        "memory",
        "--user",
        &alice,
        "--metrics-bind",
        &metrics,
    ];
    let server =
        TestServer::start_with(without_request_budgets(Config::from_args(args).unwrap())).await;
    let client = server.register("metered").await;
    let tokens = server.sign_in(&client, "alice", ALICE_PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();
    let _session = server.mcp_initialize(token).await;
    let bogus = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "made-up"),
            ("client_id", client.client_id.as_str()),
            ("code_verifier", "x".repeat(43).as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), 400);

    let response = server
        .http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let exposition = response.text().await.unwrap();
    for (series, at_least) in [
        (
            r#"mcp_auth_http_requests_total{endpoint="token",status="200"}"#,
            1.0,
        ),
        (
            r#"mcp_auth_http_requests_total{endpoint="token",status="400"}"#,
            1.0,
        ),
        (
            r#"mcp_auth_http_requests_total{endpoint="register",status="201"}"#,
            1.0,
        ),
        (
            r#"mcp_auth_http_requests_total{endpoint="mcp",status="200"}"#,
            1.0,
        ),
        (r#"mcp_auth_oauth_errors_total{error="invalid_grant"}"#, 1.0),
        (
            r#"mcp_auth_tokens_issued_total{grant_type="authorization_code"}"#,
            1.0,
        ),
        (
            r#"mcp_auth_audit_events_total{event="sign_in.succeeded"}"#,
            1.0,
        ),
        (
            r#"mcp_auth_audit_events_total{event="client.registered"}"#,
            1.0,
        ),
        (
            r#"mcp_auth_storage_operation_duration_seconds_count{backend="memory",operation="issue_tokens"}"#,
            1.0,
        ),
        (
            r#"mcp_auth_http_request_duration_seconds_count{endpoint="token"}"#,
            2.0,
        ),
        ("mcp_auth_mcp_sessions_open", 1.0),
    ] {
        assert!(
            sample(&exposition, series) >= at_least,
            "{series} >= {at_least} in:\n{exposition}"
        );
    }
    // Labels are a fixed vocabulary: no client-chosen path or id becomes a series.
    assert!(!exposition.contains(&client.client_id));
    assert!(!exposition.contains("made-up"));
    // The main listener does not serve metrics.
    let main = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
}

#[test]
fn a_metrics_address_must_be_an_ip_and_port() {
    let error = Config::from_args(["mcp-auth-server", "--metrics-bind", "localhost"]).unwrap_err();
    assert!(error.to_string().contains("--metrics-bind"), "{error}");
}
