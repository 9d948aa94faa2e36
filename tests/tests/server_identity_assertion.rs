//! `mcp-auth-server --trusted-idp`: trusting an identity provider enables and advertises the
//! SEP-990 jwt-bearer grant for `--client` files; without one the grant is unsupported. Over a
//! real socket, with an ID-JAG signed by a key generated here and published as a JWKS file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_jwt::{ID_JAG_TYP, SigningAlgorithm};
use mcp_auth_server::Config;
use mcp_auth_tests::server::{SCOPE, TestServer};
use serde_json::{Value, json};

const IDP: &str = "https://idp.example.com";
const CLIENT: &str = "enterprise-app";
const SECRET: &str = "enterprise-app-secret";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A fresh directory under cargo's temporary directory for integration tests.
fn temp_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("server-id-jag-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts a server with the enterprise client pre-registered and, when `idp_key` is given, the
/// test identity provider trusted through a JWKS file.
async fn start(idp_key: Option<&TestKey>) -> TestServer {
    let dir = temp_dir();
    let client = dir.join("client.json");
    std::fs::write(
        &client,
        json!({
            "client_id": CLIENT, "client_secret": SECRET,
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": [JWT_BEARER], "scope": SCOPE,
        })
        .to_string(),
    )
    .unwrap();
    let mut args = vec![
        "mcp-auth-server".to_owned(),
        "--store".to_owned(),
        "memory".to_owned(),
        "--client".to_owned(),
        client.display().to_string(),
    ];
    if let Some(key) = idp_key {
        let jwks = dir.join("idp-jwks.json");
        std::fs::write(&jwks, TestKey::jwks(&[key]).to_string()).unwrap();
        args.push("--trusted-idp".to_owned());
        args.push(format!("{IDP}={}", jwks.display()));
    }
    TestServer::start_with(Config::from_args(args).expect("test configuration")).await
}

fn id_jag(server: &TestServer, key: &TestKey) -> String {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    key.sign(
        Some(ID_JAG_TYP),
        &json!({
            "iss": IDP, "sub": "alice@example.com", "aud": server.base, "client_id": CLIENT,
            "jti": format!("{:016x}", rand::random::<u64>()), "iat": now, "exp": now + 300,
            "resource": server.resource(), "scope": SCOPE,
        }),
    )
}

async fn exchange(server: &TestServer, assertion: &str) -> (u16, Value) {
    let resource = server.resource();
    let response = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", JWT_BEARER),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("assertion", assertion),
            ("resource", resource.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn metadata(server: &TestServer) -> Value {
    server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_trusted_idp_enables_and_advertises_the_jwt_bearer_grant() {
    let key = TestKey::generate(SigningAlgorithm::ES256, "idp-1");
    let server = start(Some(&key)).await;
    let served = metadata(&server).await;
    let grants = served["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!(JWT_BEARER)), "{served}");
    assert_eq!(
        served["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );

    let assertion = id_jag(&server, &key);
    let (status, body) = exchange(&server, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], SCOPE);
    assert!(body.get("refresh_token").is_none());
    // The token opens the protected MCP endpoint.
    server
        .mcp_initialize(body["access_token"].as_str().unwrap())
        .await;
    // An ID-JAG is single-use.
    let (status, body) = exchange(&server, &assertion).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // One signed by a key the IdP never published is refused.
    let forger = TestKey::generate(SigningAlgorithm::ES256, "idp-1");
    let (status, body) = exchange(&server, &id_jag(&server, &forger)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test]
async fn without_a_trusted_idp_the_grant_is_unsupported_and_not_advertised() {
    let key = TestKey::generate(SigningAlgorithm::ES256, "idp-1");
    let server = start(None).await;
    let served = metadata(&server).await;
    assert!(
        !served["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER)),
        "{served}"
    );
    assert!(
        served
            .get("authorization_grant_profiles_supported")
            .is_none()
    );
    let (status, body) = exchange(&server, &id_jag(&server, &key)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type")),
        "{body}"
    );
}
