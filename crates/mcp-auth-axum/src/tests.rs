//! Router and layer behaviour through `Router::oneshot`, no socket.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode, header};
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_core::types::GrantType;
use mcp_auth_core::{
    AuthSettings, ClientRegistrationOptions, MemoryStore, OAuthAuthorizationServerProvider,
    RevocationOptions, StoreProvider, TokenStore,
};
use tower::ServiceExt as _;

use crate::{Authenticated, McpAuth, SessionBindingLayer};

const ISSUER: &str = "http://127.0.0.1:8080";
const RESOURCE: &str = "http://127.0.0.1:8080/mcp";

struct Fixture {
    store: Arc<MemoryStore>,
    auth: McpAuth<StoreProvider<Arc<MemoryStore>>>,
}

fn fixture(
    configure: impl FnOnce(
        crate::McpAuthBuilder<StoreProvider<Arc<MemoryStore>>>,
    ) -> crate::McpAuthBuilder<StoreProvider<Arc<MemoryStore>>>,
) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(
        StoreProvider::builder(Arc::clone(&store), ISSUER)
            .build()
            .expect("provider"),
    );
    let settings = AuthSettings::builder(ISSUER)
        .resource_server_url(RESOURCE)
        .required_scopes(["mcp:tools"])
        .client_registration(ClientRegistrationOptions::enabled())
        .revocation(RevocationOptions::enabled())
        .build()
        .expect("settings");
    let builder = McpAuth::builder(provider).settings(settings);
    Fixture {
        store,
        auth: configure(builder).build().expect("auth"),
    }
}

/// Stores an access token with `scopes` for `resource` and returns its raw value.
async fn token(store: &MemoryStore, subject: &str, scopes: &[&str], resource: &str) -> String {
    let raw = mcp_auth_core::secrets::random_secret();
    let record = serde_json::from_value(serde_json::json!({
        "token_hash": SecretHash::of(&raw),
        "grant_id": mcp_auth_core::secrets::random_id(),
        "client_id": "client-1",
        "scopes": scopes,
        "expires_at": i64::MAX / 2,
        "resource": resource,
        "subject": subject,
        "claims": {"iss": ISSUER},
    }))
    .expect("record");
    assert!(store.issue_tokens(&record, None).await.expect("issue"));
    raw
}

async fn whoami(Authenticated(token): Authenticated) -> String {
    token.subject.clone().unwrap_or_default()
}

async fn maybe(auth: Option<Authenticated>) -> &'static str {
    if auth.is_some() { "yes" } else { "no" }
}

fn app(fixture: &Fixture) -> Router {
    let bearer = fixture.auth.require_bearer().expect("resource configured");
    Router::new()
        .route("/mcp", post(whoami))
        .route(
            "/admin",
            post(whoami).route_layer(bearer.scopes(["mcp:admin", "mcp:tools"])),
        )
        .route_layer(bearer)
        .route("/unprotected", get(whoami))
        .route("/optional", get(maybe))
        .merge(fixture.auth.router())
}

async fn send(app: &Router, request: Request<Body>) -> http::Response<Body> {
    app.clone().oneshot(request).await.expect("infallible")
}

async fn body_string(response: http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

fn post_to(uri: &str, bearer: Option<&str>) -> Request<Body> {
    let mut builder = Request::post(uri);
    if let Some(token) = bearer {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::empty()).expect("request")
}

#[tokio::test]
async fn metadata_is_served_at_every_well_known_path_with_cors() {
    let fixture = fixture(|b| b);
    let app = app(&fixture);
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let response = send(
            &app,
            Request::get(path)
                .header(header::ORIGIN, "https://inspector.example")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*",
            "{path}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&body_string(response).await).expect("json");
        if path.contains("protected-resource") {
            assert_eq!(json["resource"], RESOURCE);
            assert_eq!(json["authorization_servers"][0], ISSUER);
        } else {
            assert_eq!(json["issuer"], ISSUER);
            assert_eq!(json["token_endpoint"], format!("{ISSUER}/token"));
        }
    }
}

#[tokio::test]
async fn preflight_is_answered_on_token_but_authorize_has_no_cors() {
    let fixture = fixture(|b| b);
    let app = app(&fixture);
    let preflight = |path: &str| {
        Request::options(path)
            .header(header::ORIGIN, "https://inspector.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "mcp-protocol-version",
            )
            .body(Body::empty())
            .expect("request")
    };
    for path in [
        "/token",
        "/register",
        "/revoke",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = send(&app, preflight(path)).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*",
            "{path}"
        );
        let allowed = response.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .expect("ascii");
        assert!(
            allowed.contains("mcp-protocol-version"),
            "{path}: {allowed}"
        );
    }
    let response = send(&app, preflight("/authorize")).await;
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let response = send(
        &app,
        Request::get("/authorize?client_id=x")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn every_oauth_endpoint_refuses_bodies_over_64_kib_by_default() {
    let fixture = fixture(|b| b);
    let app = app(&fixture);
    for path in ["/token", "/register", "/revoke", "/authorize"] {
        for (bytes, too_large) in [(64 * 1024, false), (64 * 1024 + 1, true)] {
            let response = send(
                &app,
                Request::post(path)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(vec![b'a'; bytes]))
                    .expect("request"),
            )
            .await;
            assert_eq!(
                response.status() == StatusCode::PAYLOAD_TOO_LARGE,
                too_large,
                "{path} {bytes}"
            );
        }
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_with_cors_headers() {
    let fixture = fixture(|b| b.body_limit(64));
    let app = app(&fixture);
    for path in ["/token", "/register", "/revoke"] {
        let response = send(
            &app,
            Request::post(path)
                .header(header::ORIGIN, "https://inspector.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(vec![b'a'; 65]))
                .expect("request"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*",
            "{path}"
        );
        assert!(body_string(response).await.contains("invalid_request"));
    }
}

#[tokio::test]
async fn wrong_method_gets_405_with_allow() {
    let fixture = fixture(|b| b);
    let app = app(&fixture);
    let response = send(
        &app,
        Request::get("/token").body(Body::empty()).expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        response.headers()[header::ALLOW]
            .to_str()
            .expect("ascii")
            .contains("POST")
    );
    let response = send(
        &app,
        Request::delete("/authorize")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key(header::ALLOW));
}

/// Metadata and the token endpoint read the same statement (the provider's capabilities): a
/// grant is advertised exactly when `/token` dispatches it, with the client-credentials switch
/// on and off.
#[tokio::test]
async fn metadata_advertises_exactly_the_grants_the_token_endpoint_accepts() {
    for client_credentials in [false, true] {
        let provider = Arc::new(
            StoreProvider::builder(Arc::new(MemoryStore::new()), ISSUER)
                .client_credentials(client_credentials)
                .build()
                .expect("provider"),
        );
        // A client registered for every grant, so that only the server's support decides.
        let client = serde_json::from_value(serde_json::json!({
            "client_id": "machine",
            "client_secret": "machine-secret",
            "token_endpoint_auth_method": "client_secret_post",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": [
                "authorization_code", "refresh_token", "client_credentials",
                "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:example:grant"
            ],
        }))
        .expect("client");
        provider.register_client(client).await.expect("registered");
        let settings = AuthSettings::builder(ISSUER).build().expect("settings");
        let app: Router = McpAuth::builder(provider)
            .settings(settings)
            .build()
            .expect("auth")
            .router();
        let metadata = send(
            &app,
            Request::get("/.well-known/oauth-authorization-server")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        let metadata: serde_json::Value =
            serde_json::from_str(&body_string(metadata).await).expect("json");
        let advertised = metadata["grant_types_supported"]
            .as_array()
            .expect("grant types");
        for grant in [
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::JwtBearer,
            GrantType::Other("urn:example:grant".to_owned()),
        ] {
            let form = format!(
                "grant_type={}&client_id=machine&client_secret=machine-secret",
                urlencoding(grant.as_str())
            );
            let response = send(
                &app,
                Request::post("/token")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .expect("request"),
            )
            .await;
            let body = body_string(response).await;
            let dispatched = !body.contains("unsupported_grant_type");
            let listed = advertised.iter().any(|g| g == grant.as_str());
            assert_eq!(
                listed, dispatched,
                "{grant:?} (client_credentials {client_credentials}): {body}"
            );
            if grant == GrantType::ClientCredentials {
                assert_eq!(listed, client_credentials);
            }
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of the few characters grant type URNs hold.
fn urlencoding(value: &str) -> String {
    value.replace(':', "%3A")
}

#[tokio::test]
async fn endpoints_move_under_an_issuer_path() {
    let store = Arc::new(MemoryStore::new());
    let issuer = "http://127.0.0.1:8080/tenant";
    let provider = Arc::new(
        StoreProvider::builder(store, issuer)
            .build()
            .expect("provider"),
    );
    let auth = McpAuth::builder(provider)
        .settings(AuthSettings::builder(issuer).build().expect("settings"))
        .build()
        .expect("auth");
    let app: Router = auth.router();
    for path in [
        "/.well-known/oauth-authorization-server/tenant",
        "/tenant/.well-known/openid-configuration",
    ] {
        let response = send(
            &app,
            Request::get(path).body(Body::empty()).expect("request"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // Routed under the issuer's path: an unauthenticated token request reaches the handler.
    let response = send(
        &app,
        Request::post("/tenant/token")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = send(
        &app,
        Request::post("/token")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        auth.require_bearer().is_none(),
        "no resource, no bearer layer"
    );
}

#[tokio::test]
async fn bearer_layer_challenges_and_passes_the_token_on() {
    let fixture = fixture(|b| b);
    let app = app(&fixture);
    let response = send(&app, post_to("/mcp", None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        challenge.contains(
            "resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );
    assert!(
        !challenge.contains("error="),
        "no error attribute without a token: {challenge}"
    );

    assert!(
        response.headers().get(header::CONNECTION).is_none(),
        "a request without a body keeps its connection after a 401"
    );
    // A small declared body is read and the connection kept; a large one is not read, and
    // the client is told not to reuse the connection.
    for (size, close) in [
        (300, false),
        (crate::limits::MAX_DRAINED_BODY as usize + 1, true),
    ] {
        let request = Request::post("/mcp")
            .header(header::CONTENT_LENGTH, size)
            .body(Body::from("x".repeat(size)))
            .expect("request");
        let response = send(&app, request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(header::CONNECTION).is_some(),
            close,
            "{size}-byte body"
        );
    }

    let response = send(&app, post_to("/mcp", Some("not-a-token"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(header::CONNECTION).is_none());
    assert!(
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii")
            .contains("invalid_token")
    );

    let good = token(&fixture.store, "alice", &["mcp:tools"], RESOURCE).await;
    let response = send(&app, post_to("/mcp", Some(&good))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::CONNECTION).is_none());
    assert_eq!(body_string(response).await, "alice");

    let elsewhere = token(
        &fixture.store,
        "alice",
        &["mcp:tools"],
        "http://other.example/mcp",
    )
    .await;
    let response = send(&app, post_to("/mcp", Some(&elsewhere))).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a token for another resource is refused"
    );
}

#[tokio::test]
async fn per_route_scopes_answer_403_naming_every_needed_scope() {
    let fixture = fixture(|b| b);
    let app = app(&fixture);
    let tools_only = token(&fixture.store, "bob", &["mcp:tools"], RESOURCE).await;
    let response = send(&app, post_to("/admin", Some(&tools_only))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(
        challenge.contains("scope=\"mcp:admin mcp:tools\""),
        "{challenge}"
    );
    let both = token(&fixture.store, "bob", &["mcp:tools", "mcp:admin"], RESOURCE).await;
    assert_eq!(
        send(&app, post_to("/admin", Some(&both))).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_paths_stay_404_under_route_layer() {
    let fixture = fixture(|b| b);
    let app = app(&fixture);
    let response = send(&app, post_to("/nowhere", None)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn extractor_without_the_layer_rejects_with_a_bearer_challenge() {
    let fixture = fixture(|b| b);
    let app = app(&fixture);
    let response = send(
        &app,
        Request::get("/unprotected")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let response = send(
        &app,
        Request::get("/optional")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(body_string(response).await, "no");
}

/// A verifier over one token that counts how it was asked, and answers without waiting unless
/// `waits`.
#[derive(Default)]
struct CountingVerifier {
    waits: bool,
    now_calls: std::sync::atomic::AtomicUsize,
    async_calls: std::sync::atomic::AtomicUsize,
}

impl CountingVerifier {
    fn lookup(token: &mcp_auth_types::AccessTokenSecret) -> Option<mcp_auth_types::AccessToken> {
        (token.expose_secret() == "good").then(|| {
            let mut token = mcp_auth_types::AccessToken::new(
                mcp_auth_types::AccessTokenSecret::new("good"),
                "client-1",
                vec!["mcp:tools".to_owned()],
            );
            token.resource = Some(RESOURCE.to_owned());
            token.subject = Some("carol".to_owned());
            token
        })
    }
}

#[async_trait::async_trait]
impl mcp_auth_core::TokenVerifier for CountingVerifier {
    async fn verify_token(
        &self,
        token: &mcp_auth_types::AccessTokenSecret,
    ) -> Result<Option<mcp_auth_types::AccessToken>, mcp_auth_core::ProviderError> {
        self.async_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Self::lookup(token))
    }

    fn verify_token_now(
        &self,
        token: &mcp_auth_types::AccessTokenSecret,
    ) -> Option<Result<Option<mcp_auth_types::AccessToken>, mcp_auth_core::ProviderError>> {
        self.now_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (!self.waits).then(|| Ok(Self::lookup(token)))
    }
}

#[tokio::test]
async fn the_layer_takes_an_immediate_verdict_and_waits_only_when_the_verifier_must() {
    use std::sync::atomic::Ordering::SeqCst;
    for waits in [false, true] {
        let verifier = Arc::new(CountingVerifier {
            waits,
            ..CountingVerifier::default()
        });
        let dyn_verifier: crate::DynTokenVerifier = verifier.clone();
        let auth = mcp_auth_handlers::bearer::BearerAuth::new(dyn_verifier, RESOURCE)
            .required_scopes(["mcp:tools"]);
        let app = Router::new()
            .route("/mcp", post(whoami))
            .route_layer(crate::RequireBearerLayer::new(auth));

        let response = send(&app, post_to("/mcp", Some("good"))).await;
        assert_eq!(response.status(), StatusCode::OK, "waits: {waits}");
        assert_eq!(body_string(response).await, "carol");
        let response = send(&app, post_to("/mcp", Some("bad"))).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "waits: {waits}"
        );
        assert!(
            response.headers().get(header::CONNECTION).is_none(),
            "no body: the connection is kept, waits: {waits}"
        );
        let response = send(&app, post_to("/mcp", None)).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "waits: {waits}"
        );

        // Two requests carried a token: each was offered to the immediate path, and only a
        // verifier that could not answer there was asked asynchronously.
        assert_eq!(verifier.now_calls.load(SeqCst), 2, "waits: {waits}");
        let expected_async = if waits { 2 } else { 0 };
        assert_eq!(
            verifier.async_calls.load(SeqCst),
            expected_async,
            "waits: {waits}"
        );
    }
}

mod session;
