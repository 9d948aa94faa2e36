//! SEP-990 end to end, both legs over real sockets.
//!
//! Leg 1 is served by a test enterprise identity provider (below): a client that signed its
//! user in with OpenID Connect holds an ID token, and exchanges it at the IdP's token endpoint
//! for an ID-JAG (RFC 8693 token exchange, `requested_token_type` =
//! `urn:ietf:params:oauth:token-type:id-jag`, `audience` = the MCP authorization server,
//! `resource` = the MCP server). Leg 2 is `mcp-auth-server`: the client presents the ID-JAG with
//! the jwt-bearer grant (RFC 7523) and calls `/mcp` with the access token.
//!
//! The IdP is test scaffolding, but a faithful one: it authenticates its client, recognises
//! only ID tokens it issued to that client, issues ID-JAGs only for authorization servers it
//! knows (mapping each to the client's id *there*, which is what the ID-JAG's `client_id`
//! names), and answers in RFC 8693 §2.2's shape. The OIDC sign-in of leg 0 is out of scope, so
//! the IdP mints the ID token directly.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_jwt::{ID_JAG_TYP, SigningAlgorithm};
use mcp_auth_server::Config;
use mcp_auth_tests::server::{SCOPE, TestServer};
use serde_json::{Value, json};

const IDP_ISSUER: &str = "https://idp.example.com";
/// The client's registration at the IdP.
const IDP_CLIENT: &str = "wiki-app";
const IDP_SECRET: &str = "wiki-app-secret-at-the-idp";
/// The same application's registration at the MCP authorization server.
const AS_CLIENT: &str = "enterprise-wiki";
const AS_SECRET: &str = "enterprise-wiki-secret-at-the-as";

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ID_JAG_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// An ID token this IdP issued: to whom, for which user, until when.
struct IssuedIdToken {
    audience: String,
    subject: String,
    expires_at: i64,
}

struct Idp {
    key: TestKey,
    /// Authorization servers the IdP issues ID-JAGs for: issuer → the client's id there.
    authorization_servers: HashMap<String, String>,
    id_tokens: Mutex<HashMap<String, IssuedIdToken>>,
}

impl Idp {
    /// Leg 0, stood in for: the user signed in to the client with OIDC.
    fn sign_in(&self, subject: &str) -> String {
        let now = now();
        let id_token = self.key.sign(
            Some("JWT"),
            &json!({
                "iss": IDP_ISSUER, "sub": subject, "aud": IDP_CLIENT,
                "iat": now, "exp": now + 300,
                "nonce": format!("{:016x}", rand::random::<u64>()),
            }),
        );
        self.id_tokens.lock().unwrap().insert(
            id_token.clone(),
            IssuedIdToken {
                audience: IDP_CLIENT.to_owned(),
                subject: subject.to_owned(),
                expires_at: now + 300,
            },
        );
        id_token
    }
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        [("cache-control", "no-store")],
        axum::Json(json!({ "error": error })),
    )
        .into_response()
}

/// Leg 1: RFC 8693 token exchange of an ID token for an ID-JAG.
async fn token_exchange(State(idp): State<Arc<Idp>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("client_id") != Some(IDP_CLIENT) || field("client_secret") != Some(IDP_SECRET) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if field("grant_type") != Some(TOKEN_EXCHANGE) {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    if field("requested_token_type") != Some(ID_JAG_TYPE)
        || field("subject_token_type") != Some(ID_TOKEN_TYPE)
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let subject = {
        let tokens = idp.id_tokens.lock().unwrap();
        match field("subject_token").and_then(|token| tokens.get(token)) {
            Some(issued) if issued.audience == IDP_CLIENT && issued.expires_at > now() => {
                issued.subject.clone()
            }
            _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
        }
    };
    let Some((audience, client_id)) =
        field("audience").and_then(|audience| idp.authorization_servers.get_key_value(audience))
    else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_target");
    };
    let Some(resource) = field("resource") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let scope = field("scope").unwrap_or(SCOPE);
    let now = now();
    let id_jag = idp.key.sign(
        Some(ID_JAG_TYP),
        &json!({
            "iss": IDP_ISSUER, "sub": subject, "aud": audience, "client_id": client_id,
            "jti": format!("{:032x}", rand::random::<u128>()), "iat": now, "exp": now + 300,
            "resource": resource, "scope": scope,
        }),
    );
    (
        [("cache-control", "no-store")],
        axum::Json(json!({
            "issued_token_type": ID_JAG_TYPE,
            "access_token": id_jag,
            "token_type": "N_A",
            "expires_in": 300,
            "scope": scope,
        })),
    )
        .into_response()
}

/// Starts the IdP on loopback, issuing ID-JAGs for `authorization_server` only.
async fn start_idp(key: TestKey, authorization_server: &str) -> (Arc<Idp>, String) {
    let idp = Arc::new(Idp {
        key,
        authorization_servers: [(authorization_server.to_owned(), AS_CLIENT.to_owned())].into(),
        id_tokens: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/oauth2/token", post(token_exchange))
        .with_state(Arc::clone(&idp));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (idp, format!("{base}/oauth2/token"))
}

/// `mcp-auth-server` trusting the IdP's key and knowing the enterprise client.
async fn start_server(key: &TestKey) -> TestServer {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sep990-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("idp-jwks.json");
    std::fs::write(&jwks, TestKey::jwks(&[key]).to_string()).unwrap();
    let client = dir.join("client.json");
    std::fs::write(
        &client,
        json!({
            "client_id": AS_CLIENT, "client_secret": AS_SECRET,
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": [JWT_BEARER], "scope": SCOPE,
        })
        .to_string(),
    )
    .unwrap();
    let args = vec![
        "mcp-auth-server".to_owned(),
        "--store".to_owned(),
        "memory".to_owned(),
        "--client".to_owned(),
        client.display().to_string(),
        "--trusted-idp".to_owned(),
        format!("{IDP_ISSUER}={}", jwks.display()),
    ];
    TestServer::start_with(Config::from_args(args).expect("test configuration")).await
}

/// The client's leg 1: exchange the ID token for an ID-JAG for `audience`.
async fn request_id_jag(
    http: &reqwest::Client,
    idp_token_endpoint: &str,
    id_token: &str,
    audience: &str,
    resource: &str,
) -> Value {
    let response = http
        .post(idp_token_endpoint)
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("requested_token_type", ID_JAG_TYPE),
            ("subject_token", id_token),
            ("subject_token_type", ID_TOKEN_TYPE),
            ("audience", audience),
            ("resource", resource),
            ("scope", SCOPE),
            ("client_id", IDP_CLIENT),
            ("client_secret", IDP_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "leg 1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ID_JAG_TYPE);
    body
}

/// The client's leg 2: the jwt-bearer grant at the MCP authorization server.
async fn redeem(server: &TestServer, id_jag: &str) -> (u16, Value) {
    let resource = server.resource();
    let response = server
        .http
        .post(server.url("/token"))
        .basic_auth(AS_CLIENT, Some(AS_SECRET))
        .form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", id_jag),
            ("resource", resource.as_str()),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn an_id_token_becomes_an_id_jag_at_the_idp_and_an_access_token_at_the_server() {
    let key = TestKey::generate(SigningAlgorithm::RS256, "idp-signing-1");
    let server = start_server(&key).await;
    let (idp, idp_token_endpoint) = start_idp(key, &server.base).await;
    let http = reqwest::Client::new();

    let id_token = idp.sign_in("alice@example.com");
    let exchanged = request_id_jag(
        &http,
        &idp_token_endpoint,
        &id_token,
        &server.base,
        &server.resource(),
    )
    .await;
    let id_jag = exchanged["access_token"].as_str().unwrap();
    let (status, token) = redeem(&server, id_jag).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["scope"], SCOPE);
    assert!(
        token.get("refresh_token").is_none(),
        "SEP-990: no refresh token"
    );

    let access = token["access_token"].as_str().unwrap();
    let session = server.mcp_initialize(access).await;
    let whoami = server
        .mcp_call_ok(access, &session, "whoami", json!({}))
        .await;
    assert_eq!(whoami["structuredContent"]["client_id"], AS_CLIENT);
    assert_eq!(
        whoami["structuredContent"]["subject"],
        format!("{IDP_ISSUER}|alice@example.com"),
        "the subject is qualified by the IdP that vouched for it"
    );

    // The same ID-JAG twice: single use.
    let (status, error) = redeem(&server, id_jag).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn an_id_jag_minted_for_another_authorization_server_is_refused() {
    let key = TestKey::generate(SigningAlgorithm::ES256, "idp-signing-1");
    let server = start_server(&key).await;
    // The IdP serves another authorization server; the client asks it for that audience and
    // replays the result here.
    let (idp, idp_token_endpoint) = start_idp(key, "https://other-as.example.com").await;
    let http = reqwest::Client::new();
    let id_token = idp.sign_in("alice@example.com");
    let exchanged = request_id_jag(
        &http,
        &idp_token_endpoint,
        &id_token,
        "https://other-as.example.com",
        &server.resource(),
    )
    .await;
    let (status, error) = redeem(&server, exchanged["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant")),
        "{error}"
    );
}
