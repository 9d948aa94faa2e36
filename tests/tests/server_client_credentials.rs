//! `mcp-auth-server` with a pre-registered machine client: a `--client` file listing the
//! `client_credentials` grant enables and advertises it; the client gets a token in its own
//! name and calls `/mcp`. Without such a client the grant is unsupported. Over a real socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use mcp_auth_server::Config;
use mcp_auth_tests::server::{SCOPE, TestServer};
use serde_json::{Value, json};

const CLIENT: &str = "nightly-job";
const SECRET: &str = "nightly-job-secret-0123456789abcdef";

/// Starts a server with `clients` pre-registered (one JSON file each).
async fn start(clients: &[Value]) -> TestServer {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("server-cc-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec![
        "mcp-auth-server".to_owned(),
        "--store".to_owned(),
        "memory".to_owned(),
    ];
    for (i, client) in clients.iter().enumerate() {
        let file = dir.join(format!("client-{i}.json"));
        std::fs::write(&file, client.to_string()).unwrap();
        args.push("--client".to_owned());
        args.push(file.display().to_string());
    }
    TestServer::start_with(Config::from_args(args).expect("test configuration")).await
}

fn machine_client() -> Value {
    json!({
        "client_id": CLIENT, "client_secret": SECRET,
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"], "scope": SCOPE,
    })
}

async fn client_credentials(server: &TestServer, secret: &str) -> (u16, Value) {
    let resource = server.resource();
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(CLIENT, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
            ("resource", &resource),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_preregistered_machine_client_gets_a_token_and_calls_whoami() {
    let server = start(&[machine_client()]).await;
    let metadata = server.discover().await;
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")), "{metadata}");

    let (status, token) = client_credentials(&server, SECRET).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["scope"], SCOPE);
    assert!(token.get("refresh_token").is_none(), "RFC 6749 §4.4.3");
    let access = token["access_token"].as_str().unwrap();
    let session = server.mcp_initialize(access).await;
    let whoami = server
        .mcp_call_ok(access, &session, "whoami", json!({}))
        .await;
    assert_eq!(whoami["structuredContent"]["client_id"], CLIENT);
    assert_eq!(whoami["structuredContent"]["subject"], CLIENT);

    let (status, error) = client_credentials(&server, "wrong-secret").await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["error"], "invalid_client");
}

#[tokio::test]
async fn without_a_machine_client_the_grant_is_unsupported() {
    let mut other = machine_client();
    other["grant_types"] = json!(["authorization_code", "refresh_token"]);
    other["redirect_uris"] = json!(["http://127.0.0.1/callback"]);
    let server = start(&[other]).await;
    let metadata = server.discover().await;
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    assert!(!grants.contains(&json!("client_credentials")), "{metadata}");
    let (status, error) = client_credentials(&server, SECRET).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"], "unsupported_grant_type");
}

/// A resource server on another host registers as a confidential client and asks
/// `/introspect` about the tokens it is shown: active with the token's audience and client
/// until the token is revoked, then exactly `{"active": false}`; public callers are refused.
#[tokio::test]
async fn a_resource_server_introspects_tokens_and_sees_their_revocation() {
    const RS: &str = "resource-server";
    const RS_SECRET: &str = "resource-server-secret-0123456789abcdef";
    let resource_server = json!({
        "client_id": RS, "client_secret": RS_SECRET,
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["client_credentials"],
    });
    let server = start(&[machine_client(), resource_server]).await;
    let metadata = server.discover().await;
    assert_eq!(
        metadata["introspection_endpoint"],
        server.url("/introspect"),
        "{metadata}"
    );
    let (_, token) = client_credentials(&server, SECRET).await;
    let access = token["access_token"].as_str().unwrap();

    let introspect = |token: String, secret: &'static str| {
        let server = &server;
        async move {
            let response = server
                .http
                .post(server.url("/introspect"))
                .form(&[
                    ("client_id", RS),
                    ("client_secret", secret),
                    ("token", token.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let no_store = response.headers()["cache-control"] == "no-store";
            (
                response.status().as_u16(),
                no_store,
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, no_store, active) = introspect(access.to_owned(), RS_SECRET).await;
    assert_eq!((status, no_store), (200, true), "{active}");
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], CLIENT);
    assert_eq!(active["sub"], CLIENT);
    assert_eq!(active["aud"], server.resource());
    assert_eq!(active["scope"], SCOPE);
    assert_eq!(active["iss"], server.url(""));
    assert_eq!(active["token_type"], "Bearer");
    let (iat, exp) = (
        active["iat"].as_i64().unwrap(),
        active["exp"].as_i64().unwrap(),
    );
    assert!(iat < exp && exp - iat <= 3600, "{active}");

    let (status, _, refused) = introspect(access.to_owned(), "wrong-secret").await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let revoked = server
        .http
        .post(server.url("/revoke"))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (status, _, inactive) = introspect(access.to_owned(), RS_SECRET).await;
    assert_eq!((status, inactive), (200, json!({"active": false})));
}
