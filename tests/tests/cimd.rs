//! Client ID Metadata Documents end to end: `mcp-auth-server` in process resolves an https URL
//! client_id from a local https host (self-signed certificate trusted through
//! `--cimd-root-cert`, loopback admitted through `--cimd-allow-address`), and the client
//! authorizes, signs in and redeems its code like any other.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod https_host;

use mcp_auth_jwt::SigningAlgorithm;
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_server::Config;
use mcp_auth_tests::server::{ALICE_PASSWORD, SCOPE, TestClient, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

use https_host::HttpsHost;

/// A loopback https host serving one metadata document at `/client.json`.
struct MetadataHost {
    client_id: String,
    pem_file: std::path::PathBuf,
    host: HttpsHost,
}

impl MetadataHost {
    const PATH: &str = "/client.json";

    async fn start(document: impl Fn(&str) -> Value) -> Self {
        let host = HttpsHost::start().await;
        let client_id = host.url("127.0.0.1", Self::PATH);
        host.serve(Self::PATH, &document(&client_id));
        Self {
            client_id,
            pem_file: host.pem_file.clone(),
            host,
        }
    }

    /// Requests the host answered for the document.
    fn hits(&self) -> usize {
        self.host.hits(Self::PATH)
    }

    async fn server(&self, extra: &[&str]) -> TestServer {
        let alice = format!("alice:{ALICE_PASSWORD}");
        let pem = self.pem_file.to_string_lossy().into_owned();
        let mut args = vec![
            "mcp-auth-server",
            "--store",
            "memory",
            "--user",
            &alice,
            "--cimd-allow-address",
            "127.0.0.1/32",
            "--cimd-root-cert",
            &pem,
            "--tool-scope",
            "admin_echo=mcp:admin",
        ];
        args.extend_from_slice(extra);
        TestServer::start_with(Config::from_args(args).expect("test configuration")).await
    }
}

fn public_client(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "CIMD Test App",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": SCOPE,
    })
}

async fn authorize_status(server: &TestServer, client_id: &str, redirect_uri: &str) -> StatusCode {
    server
        .http
        .get(server.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_metadata_document_client_authorizes_signs_in_and_gets_a_token() {
    let host = MetadataHost::start(public_client).await;
    let server = host.server(&[]).await;
    let metadata = server.discover().await;
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    // The document registers `http://127.0.0.1/callback`; RFC 8252 §7.3 lets a loopback
    // redirect use any port.
    let client = TestClient {
        client_id: host.client_id.clone(),
        redirect_uri: "http://127.0.0.1:9/callback".to_owned(),
    };
    let authorization = server.authorize(&client).await;
    let page = server.sign_in_page(&authorization).await;
    assert!(page.html.contains("CIMD Test App"), "{}", page.html);
    assert!(
        page.html.contains("Identified by"),
        "the client_id host is shown"
    );
    assert!(
        page.html.contains("this computer"),
        "a loopback redirect is warned about"
    );
    let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
    assert_eq!(params.get("state"), Some(&authorization.state));
    let token = server
        .exchange_code(&client, &authorization, &params["code"])
        .await;
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["access_token"].is_string());
    let session = server
        .mcp_initialize(token["access_token"].as_str().unwrap())
        .await;
    assert!(!session.is_empty());
    assert!(host.hits() >= 1);
}

/// The MCP spec's example document declares no `scope`: the client still gets the server's
/// default scopes when it asks for none, and may ask for the step-up scope.
#[tokio::test]
async fn a_document_without_scope_gets_the_default_scopes_and_may_step_up() {
    let host = MetadataHost::start(|id| {
        let mut document = public_client(id);
        document.as_object_mut().unwrap().remove("scope");
        document
    })
    .await;
    let server = host.server(&[]).await;
    let client = TestClient {
        client_id: host.client_id.clone(),
        redirect_uri: "http://127.0.0.1:9/callback".to_owned(),
    };
    for (requested, granted) in [("", SCOPE), ("mcp:tools mcp:admin", "mcp:tools mcp:admin")] {
        let authorization = server.authorize_scope(&client, requested).await;
        let page = server.sign_in_page(&authorization).await;
        let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
        let token = server
            .exchange_code(&client, &authorization, &params["code"])
            .await;
        assert_eq!(token["scope"], granted, "{requested:?}");
        let access = token["access_token"].as_str().unwrap();
        let session = server.mcp_initialize(access).await;
        let whoami = server
            .mcp_call_ok(access, &session, "whoami", json!({}))
            .await;
        assert_eq!(whoami["structuredContent"]["subject"], "alice");
    }
}

#[tokio::test]
async fn authorize_refuses_a_redirect_uri_the_document_does_not_list() {
    let host = MetadataHost::start(public_client).await;
    let server = host.server(&[]).await;
    for redirect_uri in [
        "http://127.0.0.1:9/other",
        "https://attacker.example/callback",
        "http://localhost:9/callback",
    ] {
        let status = authorize_status(&server, &host.client_id, redirect_uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{redirect_uri}");
    }
}

#[tokio::test]
async fn invalid_documents_denied_hosts_and_disabled_cimd_are_unknown_clients() {
    // A document naming another client_id.
    let mismatched = MetadataHost::start(|id| public_client(&format!("{id}x"))).await;
    let server = mismatched.server(&[]).await;
    let status = authorize_status(
        &server,
        &mismatched.client_id,
        "http://127.0.0.1:9/callback",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A document with a client secret.
    let secret = MetadataHost::start(|id| {
        let mut document = public_client(id);
        document["client_secret"] = json!("s3cret");
        document
    })
    .await;
    let server = secret.server(&[]).await;
    let status = authorize_status(&server, &secret.client_id, "http://127.0.0.1:9/callback").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A valid document on a denied host: never fetched.
    let host = MetadataHost::start(public_client).await;
    let server = host.server(&["--cimd-deny-host", "127.0.0.1"]).await;
    let status = authorize_status(&server, &host.client_id, "http://127.0.0.1:9/callback").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(host.hits(), 0);

    // Switched off: not advertised, not fetched.
    let server = host.server(&["--no-client-metadata-documents"]).await;
    let metadata = server.discover().await;
    assert!(
        metadata
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    let status = authorize_status(&server, &host.client_id, "http://127.0.0.1:9/callback").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(host.hits(), 0);
}

#[tokio::test]
async fn the_strict_default_refuses_a_loopback_metadata_host() {
    let host = MetadataHost::start(public_client).await;
    let pem = host.pem_file.to_string_lossy().into_owned();
    let alice = format!("alice:{ALICE_PASSWORD}");
    let config = Config::from_args([
        "mcp-auth-server",
        "--store",
        "memory",
        "--user",
        &alice,
        "--cimd-root-cert",
        &pem,
    ])
    .unwrap();
    let server = TestServer::start_with(config).await;
    let status = authorize_status(&server, &host.client_id, "http://127.0.0.1:9/callback").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(host.hits(), 0);
}

/// A `private_key_jwt` document with one inline key, listing `grant_types`.
fn key_document(client_id: &str, key: &TestKey, grant_types: &[&str]) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "CIMD Machine",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": TestKey::jwks(&[key]),
        "grant_types": grant_types,
        "scope": SCOPE,
    })
}

/// A `--client` file for a pre-registered machine client: with it the server serves the
/// `client_credentials` grant at all.
fn machine_client_file() -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cimd-cc-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("machine.json");
    let client = json!({
        "client_id": "nightly-job", "client_secret": "nightly-job-secret-0123456789abcdef",
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"], "scope": SCOPE,
    });
    std::fs::write(&file, client.to_string()).unwrap();
    file.display().to_string()
}

/// Anyone who can publish a JSON file is a metadata-document client, so such a client must
/// never get user-less tokens: a document listing `client_credentials` is refused at
/// /authorize and unknown at /token, on a server that serves the grant to its own machine
/// client, even when the client authenticates with a key its document publishes.
#[tokio::test]
async fn a_document_listing_client_credentials_is_refused_at_authorize_and_token() {
    let key = TestKey::generate(SigningAlgorithm::ES256, "k1");
    let host = MetadataHost::start(|id| {
        key_document(id, &key, &["authorization_code", "client_credentials"])
    })
    .await;
    let client_file = machine_client_file();
    let server = host.server(&["--client", &client_file]).await;
    let metadata = server.discover().await;
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")), "{metadata}");

    let status = authorize_status(&server, &host.client_id, "http://127.0.0.1:9/callback").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = key.sign(
        None,
        &json!({
            "iss": host.client_id, "sub": host.client_id, "aud": server.url("/token"),
            "iat": now, "exp": now + 60, "jti": format!("{:016x}", rand::random::<u64>()),
        }),
    );
    let resource = server.resource();
    let response = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &host.client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("scope", SCOPE),
            ("resource", &resource),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(host.hits() >= 1, "the document was fetched and refused");

    // The same client without the grant is a client like any other.
    let allowed =
        MetadataHost::start(|id| key_document(id, &key, &["authorization_code", "refresh_token"]))
            .await;
    let server = allowed.server(&["--client", &client_file]).await;
    let status = authorize_status(&server, &allowed.client_id, "http://127.0.0.1:9/callback").await;
    assert!(status.is_redirection(), "{status}");
}
