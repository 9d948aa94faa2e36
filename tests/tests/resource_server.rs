//! `mcp-auth-server --authorization-server ISSUER`: a resource server only, accepting the JWT
//! access tokens (RFC 9068) of an authorization server elsewhere. The issuer here is a
//! loopback https host serving RFC 8414 metadata and a key set, its tokens signed with a test
//! key: the server discovers the keys through the metadata, over TLS with a private root.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod https_host;
#[path = "resource_server/jwt_access_tokens.rs"]
mod jwt_access_tokens;

use std::time::{SystemTime, UNIX_EPOCH};

use https_host::HttpsHost;
use mcp_auth_jwt::SigningAlgorithm;
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_server::Config;
use mcp_auth_tests::server::{SCOPE, TestServer};
use serde_json::{Value, json};

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

struct Deployment {
    server: TestServer,
    host: HttpsHost,
    issuer: String,
    key: TestKey,
}

impl Deployment {
    async fn start() -> Self {
        let host = HttpsHost::start().await;
        let issuer = host.url("127.0.0.1", "");
        let key = TestKey::generate(SigningAlgorithm::ES256, "as-key-1");
        host.serve(
            "/.well-known/oauth-authorization-server",
            &json!({"issuer": issuer, "jwks_uri": host.url("127.0.0.1", "/keys")}),
        );
        host.serve("/keys", &TestKey::jwks(&[&key]));
        let args = [
            "mcp-auth-server",
            "--store",
            "memory",
            "--authorization-server",
            &issuer,
            "--authorization-server-root-cert",
            host.pem_file.to_str().unwrap(),
        ];
        let server = TestServer::start_with(Config::from_args(args).expect("configuration")).await;
        Self {
            server,
            host,
            issuer,
            key,
        }
    }

    /// An access token of the issuer with `changes` to its claims.
    fn token(&self, changes: Value) -> String {
        let mut claims = json!({
            "iss": self.issuer, "aud": self.server.resource(), "sub": "alice",
            "client_id": "enterprise-app", "scope": SCOPE, "iat": now(), "exp": now() + 300,
            "jti": format!("{:x}", rand::random::<u64>()),
        });
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        self.key.sign(Some("at+jwt"), &claims)
    }
}

/// An MCP `initialize` request body.
fn initialize_request() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}})
}

#[tokio::test]
async fn the_issuers_tokens_reach_the_tools_and_its_metadata_names_the_issuer() {
    let deployment = Deployment::start().await;
    let server = &deployment.server;
    let metadata: Value = server
        .http
        .get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], server.resource());
    assert_eq!(
        metadata["authorization_servers"],
        json!([deployment.issuer])
    );
    assert_eq!(metadata["scopes_supported"], json!([SCOPE]));

    let token = deployment.token(json!({}));
    let session = server.mcp_initialize(&token).await;
    let whoami = server
        .mcp_call_ok(&token, &session, "whoami", json!({}))
        .await;
    assert_eq!(whoami["structuredContent"]["subject"], "alice", "{whoami}");
    assert_eq!(whoami["structuredContent"]["client_id"], "enterprise-app");
    // Metadata and keys were fetched once; later tokens are checked against the cached keys.
    let second = deployment.token(json!({"sub": "bob"}));
    let session = server.mcp_initialize(&second).await;
    server
        .mcp_call_ok(&second, &session, "whoami", json!({}))
        .await;
    assert_eq!(deployment.host.hits("/keys"), 1);
    assert_eq!(
        deployment
            .host
            .hits("/.well-known/oauth-authorization-server"),
        1
    );
}

#[tokio::test]
async fn tokens_for_another_resource_or_issuer_or_without_the_scope_are_refused() {
    let deployment = Deployment::start().await;
    let server = &deployment.server;
    let initialize = initialize_request();
    let other_key = TestKey::generate(SigningAlgorithm::ES256, "as-key-1");
    let forged = other_key.sign(
        Some("at+jwt"),
        &json!({"iss": deployment.issuer, "aud": server.resource(), "client_id": "x",
                "scope": SCOPE, "exp": now() + 300}),
    );
    for (case, token, status) in [
        (
            "another resource",
            deployment.token(json!({"aud": "https://other.example/mcp"})),
            401,
        ),
        (
            "another issuer",
            deployment.token(json!({"iss": "https://evil.example"})),
            401,
        ),
        (
            "expired",
            deployment.token(json!({"exp": now() - 3600})),
            401,
        ),
        ("signed by another key", forged, 401),
        (
            "without the scope",
            deployment.token(json!({"scope": "other"})),
            403,
        ),
    ] {
        let response = server
            .mcp_post(Some(&token), None, initialize.clone())
            .await;
        assert_eq!(response.status().as_u16(), status, "{case}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("resource_metadata=\""),
            "{case}: {challenge}"
        );
    }
}

#[tokio::test]
async fn no_authorization_server_runs_here() {
    let deployment = Deployment::start().await;
    let server = &deployment.server;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/authorize",
        "/token",
        "/register",
        "/revoke",
        "/introspect",
        "/sign-in",
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn authorization_server_settings_are_refused_with_a_resource_server_only() {
    for extra in [
        ["--user", "a:b"],
        [
            "--trusted-idp",
            "https://idp.example=https://idp.example/keys",
        ],
    ] {
        let mut args = vec![
            "mcp-auth-server",
            "--authorization-server",
            "https://as.example",
        ];
        args.extend(extra);
        let error = Config::from_args(args).expect_err("refused").to_string();
        assert!(error.contains("--authorization-server"), "{error}");
    }
}

/// Deployment (b): our authorization server serves an MCP server on another host, which
/// cannot read its store and verifies tokens at `/introspect`. The AS issues tokens for the
/// other resource (`--additional-resource`); the resource server (`--authorization-server`
/// with `--introspection-client-id`) discovers the endpoint from the AS's metadata.
#[tokio::test]
async fn a_resource_server_on_another_host_verifies_our_tokens_by_introspection() {
    const MACHINE: &str = "nightly-job";
    const MACHINE_SECRET: &str = "nightly-job-secret-0123456789abcdef";
    const RS: &str = "remote-mcp";
    const RS_SECRET: &str = "remote-mcp-secret-0123456789abcdef";
    let rs_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rs_resource = format!("http://{}/mcp", rs_listener.local_addr().unwrap());

    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("resource-server-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, client: Value| {
        let path = dir.join(name);
        std::fs::write(&path, client.to_string()).unwrap();
        path.display().to_string()
    };
    let machine = write(
        "machine.json",
        json!({"client_id": MACHINE, "client_secret": MACHINE_SECRET,
               "token_endpoint_auth_method": "client_secret_post",
               "grant_types": ["client_credentials"], "scope": SCOPE}),
    );
    let rs_client = write(
        "rs.json",
        json!({"client_id": RS, "client_secret": RS_SECRET,
               "token_endpoint_auth_method": "client_secret_basic",
               "grant_types": ["client_credentials"]}),
    );
    let as_args = [
        "mcp-auth-server",
        "--store",
        "memory",
        "--client",
        &machine,
        "--client",
        &rs_client,
        "--additional-resource",
        &rs_resource,
    ];
    let authorization_server =
        TestServer::start_with(Config::from_args(as_args).expect("AS configuration")).await;
    let issuer = authorization_server.url("");
    let rs_args = [
        "mcp-auth-server",
        "--store",
        "memory",
        "--authorization-server",
        &issuer,
        "--introspection-client-id",
        RS,
        "--introspection-client-secret",
        RS_SECRET,
    ];
    let resource_server = TestServer::start_on(
        Config::from_args(rs_args).expect("RS configuration"),
        rs_listener,
    )
    .await;
    assert_eq!(resource_server.resource(), rs_resource);

    let token_for = |resource: String| {
        let authorization_server = &authorization_server;
        async move {
            let response: Value = authorization_server
                .http
                .post(authorization_server.url("/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", MACHINE),
                    ("client_secret", MACHINE_SECRET),
                    ("scope", SCOPE),
                    ("resource", &resource),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            response["access_token"]
                .as_str()
                .expect("a token")
                .to_owned()
        }
    };
    let token = token_for(rs_resource.clone()).await;
    let session = resource_server.mcp_initialize(&token).await;
    let whoami = resource_server
        .mcp_call_ok(&token, &session, "whoami", json!({}))
        .await;
    assert_eq!(
        whoami["structuredContent"]["client_id"], MACHINE,
        "{whoami}"
    );

    // A token of the AS's own resource is not for this one.
    let own = token_for(authorization_server.resource()).await;
    let initialize = initialize_request();
    let response = resource_server
        .mcp_post(Some(&own), None, initialize.clone())
        .await;
    assert_eq!(response.status(), 401);
    let response = resource_server
        .mcp_post(Some("made-up-token"), None, initialize)
        .await;
    assert_eq!(response.status(), 401);
}
