//! `--oidc-keep-tokens` with `--forward-upstream-token`: the provider's tokens are kept per
//! grant, sealed in the store, forwarded to a gateway's upstream (never the client's own
//! token), refreshed at the provider when they expire, and deleted with their grant.

use super::*;
use crate::gateway::upstream::Upstream;

/// A server on a fresh SQLite file (so that the test can read the stored bytes) that signs
/// users in at `provider`, keeps their tokens and forwards them to `upstream`.
async fn keeping_server(
    provider: &Provider,
    upstream: &Upstream,
) -> (TestServer, std::path::PathBuf) {
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let store = mcp_auth_tests::server::fresh_sqlite_url(tmp).await;
    let database = std::path::PathBuf::from(store.trim_start_matches("sqlite://"));
    let secret = database.with_file_name("secret.key");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef-keep-tokens").unwrap();
    let pem_file = provider.pem_file.display().to_string();
    let args = [
        "mcp-auth-server",
        "--store",
        store.as_str(),
        "--oidc-issuer",
        provider.issuer.as_str(),
        "--oidc-client-id",
        CLIENT_ID,
        "--oidc-client-secret",
        CLIENT_SECRET,
        "--oidc-root-cert",
        pem_file.as_str(),
        "--oidc-keep-tokens",
        "--secret-key-file",
        secret.to_str().unwrap(),
        "--upstream",
        &upstream.url(),
        "--forward-upstream-token",
    ];
    let config = Config::from_args(args).expect("keep-tokens configuration");
    (
        TestServer::start_with(without_request_budgets(config)).await,
        database,
    )
}

/// Signs in at the provider, consents, and redeems the code: our token response and client.
async fn sign_in(provider: &Provider, server: &TestServer) -> (serde_json::Value, TestClient) {
    let client = server.register("Keeping client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(server, &provider.pem);
    let (_, callback) =
        through_provider(&mut browser, server, provider, &authorization.sign_in_url).await;
    let consent = Consent::read(callback).await;
    let response = decide(&mut browser, server, &consent, "approve").await;
    assert_eq!(response.status(), StatusCode::FOUND, "approve redirects");
    let params = redirect_params(&location(&response));
    let tokens = server
        .exchange_code(&client, &authorization, &params["code"])
        .await;
    (tokens, client)
}

fn forwarded(upstream: &Upstream) -> Vec<String> {
    upstream
        .seen()
        .iter()
        .filter_map(|seen| seen.headers.get("x-mcp-auth-upstream-token"))
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_providers_token_reaches_the_upstream_sealed_at_rest_and_goes_with_its_grant() {
    let provider = Provider::start(ClientAuth::Basic).await;
    let upstream = Upstream::start().await;
    let (server, database) = keeping_server(&provider, &upstream).await;
    let (tokens, client) = sign_in(&provider, &server).await;
    let ours = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let response = server
        .mcp_post(
            Some(ours),
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let theirs = provider.access_tokens();
    assert_eq!(forwarded(&upstream), vec![theirs[0].clone()]);
    assert_ne!(theirs[0], ours, "never the client's own token");
    assert!(upstream.seen()[0].headers.get("authorization").is_none());

    // At rest: the store holds the tokens sealed, so neither appears in its bytes.
    let stored = std::fs::read(&database).unwrap();
    let wal = std::fs::read(database.with_extension("db-wal")).unwrap_or_default();
    for bytes in [&stored, &wal] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(&theirs[0]),
            "the provider's access token in the clear"
        );
        assert!(
            !text.contains("op-rt-"),
            "the provider's refresh token in the clear"
        );
    }

    assert_eq!(kept_records(&database).await, 1, "one grant's tokens");
    // Revoking the grant (RFC 7009, our refresh token) deletes the provider's tokens too.
    let revoked = server
        .http
        .post(server.url("/revoke"))
        .form(&[("token", refresh), ("client_id", client.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(kept_records(&database).await, 0, "deleted with the grant");
}

/// Rows of the upstream-token table.
async fn kept_records(database: &std::path::Path) -> i64 {
    use sqlx::Connection as _;
    let mut connection =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display()))
            .await
            .unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM upstream_tokens")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_expired_provider_token_is_refreshed_before_it_is_forwarded() {
    let provider = Provider::start(ClientAuth::Post).await;
    // Within the server's 30 s refresh margin from the start: every use refreshes it.
    provider.access_token_lifetime(10);
    let upstream = Upstream::start().await;
    let (server, _) = keeping_server(&provider, &upstream).await;
    let (tokens, _) = sign_in(&provider, &server).await;
    let ours = tokens["access_token"].as_str().unwrap();
    let response = server
        .mcp_post(
            Some(ours),
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(provider.refreshes(), 1, "refreshed before use");
    let issued = provider.access_tokens();
    assert_eq!(issued.len(), 2);
    assert_eq!(
        forwarded(&upstream),
        vec![issued[1].clone()],
        "the refreshed token"
    );
}
