//! The whole authorization-code flow against `mcp-auth-server` on a SQLite file the server
//! creates and migrates at start-up.

mcp_auth_tests::server_flow_tests!(mcp_auth_tests::server::fresh_sqlite_url(env!(
    "CARGO_TARGET_TMPDIR"
)));

/// A burst of `client_credentials` token requests whose connections are dropped mid-flight
/// (as a load generator that hangs up does) leaves the SQLite store working: afterwards every
/// ordinary token request succeeds and `/healthz`, which probes a write, says ok. Over a real
/// socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_requests_dropped_mid_flight_leave_the_store_working() {
    use std::time::Duration;

    use mcp_auth_tests::server::{SCOPE, TestServer, without_request_budgets};
    use rand::Rng as _;

    const CLIENT: &str = "load-generator";
    const SECRET: &str = "load-generator-secret-0123456789abcdef";
    /// Requests started at once in each burst, as many as the load run's connections.
    const BURST: usize = 64;
    const BURSTS: usize = 6;

    let store = mcp_auth_tests::server::fresh_sqlite_url(env!("CARGO_TARGET_TMPDIR")).await;
    let client_file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("load-client-{:016x}.json", rand::random::<u64>()));
    let client = serde_json::json!({
        "client_id": CLIENT, "client_secret": SECRET,
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"], "scope": SCOPE,
    });
    std::fs::write(&client_file, client.to_string()).expect("client file");
    let config = mcp_auth_server::Config::from_args([
        "mcp-auth-server",
        "--store",
        &store,
        "--client",
        &client_file.display().to_string(),
    ])
    .expect("test configuration");
    let server = TestServer::start_with(without_request_budgets(config)).await;
    let token_request = |http: &reqwest::Client| {
        http.post(server.url("/token"))
            .basic_auth(CLIENT, Some(SECRET))
            .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
    };

    for _ in 0..BURSTS {
        let mut requests = Vec::with_capacity(BURST);
        for _ in 0..BURST {
            // A fresh client per request: one connection each, closed when the request is
            // abandoned.
            let http = reqwest::Client::new();
            let grace = Duration::from_micros(rand::rng().random_range(200..20_000));
            let request = token_request(&http).timeout(grace);
            requests.push(tokio::spawn(async move {
                let _ = request.send().await;
                drop(http);
            }));
        }
        for request in requests {
            request.await.expect("request task");
        }
    }

    for _ in 0..8 {
        let response = token_request(&server.http)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("token response");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("health response");
    assert_eq!(health.status(), 200);

    // No transaction was left open on a pooled connection: another connection to the file
    // takes SQLite's write lock within its busy wait.
    use sqlx::ConnectOptions as _;
    let path = store.trim_start_matches("sqlite://");
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("open the database");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("the write lock is free");
    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("rollback");
}

/// A user kept in the store (what `mcp-auth-server user add` writes) signs in beside the
/// `--user`s, is the subject of its tokens, and cannot sign in once removed; a wrong password
/// gets the form again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_in_the_store_signs_in_beside_the_flag_users_until_removed() {
    use mcp_auth_core::storage::{AdminStore, UserRecord};
    use mcp_auth_tests::server::TestServer;

    let url = mcp_auth_tests::server::fresh_sqlite_url(env!("CARGO_TARGET_TMPDIR")).await;
    let server = TestServer::start(&url).await;
    let store = mcp_auth_sqlx::SqliteStore::connect(&url).await.unwrap();
    let phc = mcp_auth_server::hash_password(b"carol's password").unwrap();
    assert!(
        store
            .insert_user(&UserRecord::new("carol", phc, 0))
            .await
            .unwrap()
    );

    let client = server.register("store users").await;
    let tokens = server.sign_in(&client, "carol", "carol's password").await;
    let token = tokens["access_token"].as_str().unwrap();
    let session = server.mcp_initialize(token).await;
    let whoami = server
        .mcp_call_ok(token, &session, "whoami", serde_json::json!({}))
        .await;
    assert_eq!(whoami["structuredContent"]["subject"], "carol", "{whoami}");

    let wrong = |password: &'static str| {
        let server = &server;
        let client = &client;
        async move {
            let authorization = server.authorize(client).await;
            let page = server.sign_in_page(&authorization).await;
            server
                .submit(
                    &page,
                    &[
                        ("username", "carol"),
                        ("password", password),
                        ("decision", "approve"),
                    ],
                )
                .await
                .status()
        }
    };
    assert_eq!(wrong("not carol's").await, 200, "the form again");
    assert!(store.delete_user("carol").await.unwrap());
    assert_eq!(
        wrong("carol's password").await,
        200,
        "a removed user signs in no more"
    );
}
