//! A Client ID Metadata Document client that authenticates with `private_key_jwt`, end to end
//! against `mcp-auth-server` in process: its document (on a local https host, self-signed
//! certificate trusted through `--cimd-root-cert`, loopback admitted through
//! `--cimd-allow-address`) publishes its key as a `jwks_uri` or inline `jwks`; it signs in
//! through /authorize and redeems the code at /token with a client assertion signed by that key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod https_host;

use std::time::{SystemTime, UNIX_EPOCH};

use mcp_auth_jwt::SigningAlgorithm;
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_server::Config;
use mcp_auth_tests::server::{ALICE_PASSWORD, Authorization, SCOPE, TestClient, TestServer};
use serde_json::{Value, json};

use https_host::HttpsHost;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// A `private_key_jwt` document for `client_id` with `keys` (`jwks_uri` or `jwks`).
fn document(client_id: &str, keys: Value) -> Value {
    let mut document = json!({
        "client_id": client_id,
        "client_name": "CIMD Key App",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": SCOPE,
    });
    for (name, value) in keys.as_object().unwrap() {
        document[name] = value.clone();
    }
    document
}

async fn server(host: &HttpsHost) -> TestServer {
    let alice = format!("alice:{ALICE_PASSWORD}");
    let pem = host.pem_file.to_string_lossy().into_owned();
    let config = Config::from_args([
        "mcp-auth-server",
        "--store",
        "memory",
        "--user",
        &alice,
        "--cimd-allow-address",
        "127.0.0.1/32",
        "--cimd-root-cert",
        &pem,
    ])
    .expect("test configuration");
    TestServer::start_with(config).await
}

/// A client assertion for `client_id`, for this server's token endpoint, signed with `key`.
fn assertion(server: &TestServer, client_id: &str, key: &TestKey) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    key.sign(
        None,
        &json!({
            "iss": client_id, "sub": client_id, "aud": server.url("/token"),
            "iat": now, "exp": now + 60, "jti": format!("{:016x}", rand::random::<u64>()),
        }),
    )
}

/// POSTs `form` to /token; the status and JSON body.
async fn token(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Redeems `code` authenticating with `assertion` (none when `None`).
async fn redeem(
    server: &TestServer,
    client: &TestClient,
    authorization: &Authorization,
    code: &str,
    assertion: Option<&str>,
) -> (u16, Value) {
    let resource = server.resource();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", &client.client_id),
        ("code_verifier", &authorization.verifier),
        ("resource", &resource),
    ];
    if let Some(assertion) = assertion {
        form.push(("client_assertion_type", JWT_BEARER));
        form.push(("client_assertion", assertion));
    }
    token(server, &form).await
}

/// Authorizes and signs alice in; the authorization and its code.
async fn signed_in(server: &TestServer, client: &TestClient) -> (Authorization, String) {
    let authorization = server.authorize(client).await;
    let page = server.sign_in_page(&authorization).await;
    assert!(page.html.contains("CIMD Key App"), "{}", page.html);
    let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
    assert_eq!(params.get("state"), Some(&authorization.state));
    (authorization, params["code"].clone())
}

fn assert_invalid_client((status, body): &(u16, Value), context: &str) {
    assert_eq!(
        (*status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{context}: {body}"
    );
}

#[tokio::test]
async fn a_metadata_document_client_signs_in_and_redeems_its_code_with_a_client_assertion() {
    let host = HttpsHost::start().await;
    let key = TestKey::generate(SigningAlgorithm::ES256, "cimd-1");
    host.serve("/jwks.json", &TestKey::jwks(&[&key]));
    let client_id = host.url("127.0.0.1", "/client.json");
    let jwks_uri = host.url("127.0.0.1", "/jwks.json");
    host.serve(
        "/client.json",
        &document(&client_id, json!({"jwks_uri": jwks_uri})),
    );
    let server = server(&host).await;
    let metadata = server.discover().await;
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("private_key_jwt")), "{metadata}");

    let client = TestClient {
        client_id: client_id.clone(),
        redirect_uri: REDIRECT_URI.to_owned(),
    };
    let (authorization, code) = signed_in(&server, &client).await;

    // Refused without consuming the code: no assertion, a secret instead, a key the document
    // never published, an assertion naming another client.
    let none = redeem(&server, &client, &authorization, &code, None).await;
    assert_invalid_client(&none, "no assertion");
    let forger = TestKey::generate(SigningAlgorithm::ES256, "cimd-1");
    let wrong_key = assertion(&server, &client_id, &forger);
    let forged = redeem(&server, &client, &authorization, &code, Some(&wrong_key)).await;
    assert_invalid_client(&forged, "wrong key");
    assert!(
        forged.1["error_description"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{}",
        forged.1
    );
    let other = assertion(&server, "https://127.0.0.1/other.json", &key);
    let other = redeem(&server, &client, &authorization, &code, Some(&other)).await;
    assert_invalid_client(&other, "another client's assertion");

    let signed = assertion(&server, &client_id, &key);
    let (status, body) = redeem(&server, &client, &authorization, &code, Some(&signed)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let session = server
        .mcp_initialize(body["access_token"].as_str().unwrap())
        .await;
    assert!(!session.is_empty());
    assert_eq!(host.hits("/jwks.json"), 1, "the key set is cached");

    // The refresh token is bound to the client, which authenticates again: a replayed
    // assertion is refused, a fresh one accepted.
    let refresh_token = body["refresh_token"].as_str().unwrap();
    let refresh = |assertion: String| {
        let (server, client_id) = (&server, client_id.clone());
        async move {
            token(
                server,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                    ("client_id", &client_id),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ],
            )
            .await
        }
    };
    assert_invalid_client(&refresh(signed.clone()).await, "replayed assertion");
    let (status, body) = refresh(assertion(&server, &client_id, &key)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_inline_jwks_in_the_document_authenticates_the_client_too() {
    let host = HttpsHost::start().await;
    let key = TestKey::generate(SigningAlgorithm::RS256, "inline-1");
    let client_id = host.url("127.0.0.1", "/inline.json");
    host.serve(
        "/inline.json",
        &document(&client_id, json!({"jwks": TestKey::jwks(&[&key])})),
    );
    let server = server(&host).await;
    let client = TestClient {
        client_id: client_id.clone(),
        redirect_uri: REDIRECT_URI.to_owned(),
    };
    let (authorization, code) = signed_in(&server, &client).await;
    let forger = TestKey::generate(SigningAlgorithm::RS256, "inline-1");
    let wrong_key = assertion(&server, &client_id, &forger);
    let forged = redeem(&server, &client, &authorization, &code, Some(&wrong_key)).await;
    assert_invalid_client(&forged, "wrong key");
    let signed = assertion(&server, &client_id, &key);
    let (status, body) = redeem(&server, &client, &authorization, &code, Some(&signed)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_document_jwks_uri_on_a_special_use_address_is_refused_with_invalid_client() {
    let host = HttpsHost::start().await;
    let key = TestKey::generate(SigningAlgorithm::ES256, "cimd-1");
    host.serve("/jwks.json", &TestKey::jwks(&[&key]));
    for (path, jwks_uri) in [
        ("/private.json", "https://10.0.0.1/jwks.json".to_owned()),
        (
            "/metadata.json",
            "https://169.254.169.254/latest/jwks.json".to_owned(),
        ),
        // The metadata host itself over IPv6 loopback: only 127.0.0.1/32 is allow-listed.
        (
            "/loopback6.json",
            format!("https://[::1]:{}/jwks.json", host.port),
        ),
    ] {
        let client_id = host.url("127.0.0.1", path);
        host.serve(path, &document(&client_id, json!({"jwks_uri": jwks_uri})));
        let server = server(&host).await;
        let client = TestClient {
            client_id: client_id.clone(),
            redirect_uri: REDIRECT_URI.to_owned(),
        };
        let (authorization, code) = signed_in(&server, &client).await;
        let signed = assertion(&server, &client_id, &key);
        let refused = redeem(&server, &client, &authorization, &code, Some(&signed)).await;
        assert_invalid_client(&refused, &jwks_uri);
        let description = refused.1["error_description"].as_str().unwrap();
        assert!(description.contains("not usable"), "{description}");
        assert!(!description.contains("10.0.0.1"), "{description}");
    }
    assert_eq!(host.hits("/jwks.json"), 0);
}
