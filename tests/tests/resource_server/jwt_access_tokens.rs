//! Deployment (b) with self-contained tokens: `--access-token-format jwt` makes our
//! authorization server issue RFC 9068 access tokens that a resource server on another host
//! verifies with the published key set alone, while revocation still holds at our own `/mcp`.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth_core::TokenVerifier;
use mcp_auth_core::types::AccessTokenSecret;
use mcp_auth_jwt::{JwksSource, JwtAccessTokenVerifier};
use mcp_auth_server::Config;
use mcp_auth_tests::server::{SCOPE, TestServer};
use serde_json::{Value, json};

const MACHINE: &str = "nightly-job";
const MACHINE_SECRET: &str = "nightly-job-secret-0123456789abcdef";

fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client-credentials client file in `dir`.
fn machine_client(dir: &std::path::Path) -> String {
    let path = dir.join("machine.json");
    let client = json!({"client_id": MACHINE, "client_secret": MACHINE_SECRET,
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["client_credentials"], "scope": SCOPE});
    std::fs::write(&path, client.to_string()).unwrap();
    path.display().to_string()
}

async fn start(dir: &std::path::Path, store: &str, extra: &[&str]) -> TestServer {
    let client = machine_client(dir);
    let mut args = vec![
        "mcp-auth-server",
        "--store",
        store,
        "--client",
        &client,
        "--access-token-format",
        "jwt",
    ];
    args.extend_from_slice(extra);
    TestServer::start_with(Config::from_args(args).expect("configuration")).await
}

async fn machine_token(server: &TestServer) -> String {
    let response = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", MACHINE),
            ("client_secret", MACHINE_SECRET),
            ("scope", SCOPE),
            ("resource", &server.resource()),
        ])
        .await;
    response["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token: {response}"))
        .to_owned()
}

async fn get_json(server: &TestServer, url: &str) -> (reqwest::header::HeaderMap, Value) {
    let response = server.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

fn part(token: &str, index: usize) -> Value {
    let encoded = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap()
}

#[tokio::test]
async fn our_jwt_access_tokens_verify_with_the_published_keys_and_revocation_holds_here() {
    let dir = scratch_dir("jwt-access-tokens");
    let server = start(&dir, "memory", &[]).await;
    let issuer = server.url("");
    let metadata = server.discover().await;
    let jwks_uri = server.url("/.well-known/jwks.json");
    assert_eq!(metadata["jwks_uri"], jwks_uri.as_str());
    let (headers, key_set) = get_json(&server, &jwks_uri).await;
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let keys = key_set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].get("d").is_none(), "public keys only");

    let token = machine_token(&server).await;
    let header = part(&token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], keys[0]["kid"]);
    let claims = part(&token, 1);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], server.resource());
    assert_eq!(
        claims["sub"], MACHINE,
        "a client acting for itself is the subject"
    );
    assert_eq!(claims["client_id"], MACHINE);
    assert_eq!(claims["scope"], SCOPE);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 32));

    // A resource server elsewhere needs only the key set.
    let elsewhere = JwtAccessTokenVerifier::builder(&issuer, server.resource())
        .jwks(JwksSource::Inline(key_set.clone()))
        .build()
        .unwrap();
    let verified = elsewhere
        .verify_token(&AccessTokenSecret::new(token.clone()))
        .await
        .unwrap()
        .expect("verifies with the published keys");
    assert_eq!(verified.client_id, MACHINE);
    assert_eq!(verified.scopes, [SCOPE]);
    let for_another = JwtAccessTokenVerifier::builder(&issuer, "https://other.example/mcp")
        .jwks(JwksSource::Inline(key_set))
        .build()
        .unwrap();
    assert!(
        for_another
            .verify_token(&AccessTokenSecret::new(token.clone()))
            .await
            .unwrap()
            .is_none(),
        "another resource's audience does not pass"
    );

    // Our own /mcp accepts it, and refuses it once revoked (its record is gone: the `jti` is
    // refused until the token would have expired).
    let session = server.mcp_initialize(&token).await;
    let whoami = server
        .mcp_call_ok(&token, &session, "whoami", json!({}))
        .await;
    assert_eq!(
        whoami["structuredContent"]["client_id"], MACHINE,
        "{whoami}"
    );
    let revoked = server
        .http
        .post(server.url("/revoke"))
        .form(&[
            ("token", token.as_str()),
            ("client_id", MACHINE),
            ("client_secret", MACHINE_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let refused = server
        .mcp_post(Some(&token), Some(&session), super::initialize_request())
        .await;
    assert_eq!(refused.status(), 401);
    let introspected: Value = server
        .http
        .post(server.url("/introspect"))
        .form(&[
            ("token", token.as_str()),
            ("client_id", MACHINE),
            ("client_secret", MACHINE_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected, json!({"active": false}));
}

#[tokio::test]
async fn sealed_signing_keys_are_shared_through_the_store_and_need_the_secret() {
    let dir = scratch_dir("sealed-signing-keys");
    let secret = dir.join("secret.key");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef0123456789ab\n").unwrap();
    let secret = secret.display().to_string();
    let store = mcp_auth_tests::server::fresh_sqlite_url(env!("CARGO_TARGET_TMPDIR")).await;
    let with_secret = [
        "--secret-key-file",
        secret.as_str(),
        "--signing-alg",
        "EdDSA",
    ];
    let first = start(&dir, &store, &with_secret).await;
    let token = machine_token(&first).await;
    assert_eq!(part(&token, 0)["alg"], "EdDSA");

    // The private key is sealed in the database.
    let pool = sqlx::SqlitePool::connect(&store).await.unwrap();
    let (private_key,): (String,) = sqlx::query_as("SELECT private_key FROM signing_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(private_key.starts_with("a256gcm:"), "{private_key:.12}");

    // A second instance on the same store signs with the same key.
    let second = start(&dir, &store, &with_secret).await;
    let token = machine_token(&second).await;
    let (_, key_set) = get_json(&first, &first.url("/.well-known/jwks.json")).await;
    assert_eq!(part(&token, 0)["kid"], key_set["keys"][0]["kid"]);
    let session = second.mcp_initialize(&token).await;
    assert!(!session.is_empty());

    // An instance without the secret cannot read the key and refuses to start.
    let client = machine_client(&dir);
    let config = Config::from_args([
        "mcp-auth-server",
        "--store",
        &store,
        "--client",
        &client,
        "--access-token-format",
        "jwt",
    ])
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = mcp_auth_server::serve(config, listener, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("sealed"),
        "names the reason: {error}"
    );
    pool.close().await;
}

#[test]
fn signing_settings_need_jwt_access_tokens() {
    for flag in [
        ["--signing-alg", "ES256"],
        ["--signing-key-rotation-days", "7"],
        ["--secret-key-file", "/dev/null"],
    ] {
        let error = Config::from_args(["mcp-auth-server", flag[0], flag[1]]).unwrap_err();
        assert!(
            error.to_string().contains("--access-token-format jwt"),
            "{flag:?}: {error}"
        );
    }
    for (flag, value) in [
        ("--signing-alg", "HS256"),
        ("--signing-alg", "none"),
        ("--signing-key-rotation-days", "0"),
        ("--signing-key-rotation-days", "366"),
    ] {
        let args = [
            "mcp-auth-server",
            "--access-token-format",
            "jwt",
            flag,
            value,
        ];
        assert!(Config::from_args(args).is_err(), "{flag} {value}");
    }
}
