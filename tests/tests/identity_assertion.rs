//! Enterprise-managed authorization end to end below HTTP: the SEP-990 jwt-bearer grant,
//! `private_key_jwt` client authentication and the client credentials grant, through the real
//! `TokenHandler`/`RevocationHandler`, `StoreProvider` and `mcp-auth-jwt` on `MemoryStore` and
//! SQLite, with a test identity provider whose keys are generated here — and a loopback https
//! JWKS server (self-signed certificate, trusted through configuration) for key caching and
//! unknown-`kid` refetches.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod https_host;

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request};
use mcp_auth_core::types::{
    CLIENT_ASSERTION_TYPE_JWT_BEARER, ClientSecret, GrantType, JWT_BEARER_GRANT_TYPE,
    OAuthClientInformationFull, OAuthClientMetadata, TokenEndpointAuthMethod,
};
use mcp_auth_core::{
    AuthSettings, ManualClock, MemoryStore, OAuthAuthorizationServerProvider, RevocationOptions,
    Storage, StoreProvider,
};
use mcp_auth_handlers::context::HandlerContext;
use mcp_auth_handlers::revoke::RevocationHandler;
use mcp_auth_handlers::token::TokenHandler;
use mcp_auth_jwt::test_util::{TestKey, hs256, unsigned};
use mcp_auth_jwt::{
    HttpJwksFetcher, ID_JAG_TYP, IdJagValidator, JwksSource, PrivateKeyJwtVerifier,
    SigningAlgorithm,
};
use mcp_auth_sqlx::SqliteStore;
use serde_json::{Value, json};

use https_host::HttpsHost;

const AS: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const IDP: &str = "https://idp.example.com";
const ENTERPRISE: &str = "enterprise-client";
const ENTERPRISE_SECRET: &str = "enterprise-secret";
const PUBLIC: &str = "public-client";
const M2M: &str = "m2m-client";
const M2M_SECRET_CLIENT: &str = "m2m-secret-client";
const M2M_SECRET: &str = "m2m-secret";

static IDP_KEY: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::generate(SigningAlgorithm::RS256, "idp-1"));
static CLIENT_KEY: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::generate(SigningAlgorithm::ES256, "m2m-1"));

fn wall_clock() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// The authorization server under test: handlers over a `StoreProvider` on `storage`.
struct Server {
    clock: Arc<ManualClock>,
    provider: Arc<StoreProvider<Arc<dyn Storage>>>,
    token: TokenHandler<StoreProvider<Arc<dyn Storage>>>,
    revoke: RevocationHandler<StoreProvider<Arc<dyn Storage>>>,
}

fn client(
    id: &str,
    method: TokenEndpointAuthMethod,
    secret: Option<&str>,
    grants: Vec<GrantType>,
    scope: &str,
) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec![]);
    metadata.token_endpoint_auth_method = Some(method);
    metadata.grant_types = grants;
    metadata.scope = Some(scope.to_owned());
    let mut client = OAuthClientInformationFull::new(id, metadata);
    client.client_secret = secret.map(ClientSecret::new);
    client
}

impl Server {
    async fn start(
        storage: Arc<dyn Storage>,
        idp_keys: JwksSource,
        fetcher: HttpJwksFetcher,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(wall_clock()));
        let validator = IdJagValidator::builder(AS)
            .resource(RESOURCE)
            .trusted_issuer(IDP, idp_keys)
            .fetcher(Arc::new(fetcher))
            .build()
            .unwrap();
        let provider = StoreProvider::builder(storage, AS)
            .clock(clock.clone())
            .valid_scopes(["read", "write", "admin"])
            .identity_assertion_validator(Arc::new(validator))
            .client_assertion_verifier(Arc::new(PrivateKeyJwtVerifier::new().unwrap()))
            .client_credentials(true)
            .build()
            .unwrap();
        let provider = Arc::new(provider);
        use TokenEndpointAuthMethod::{ClientSecretBasic, ClientSecretPost, None, PrivateKeyJwt};
        let mut m2m = client(
            M2M,
            PrivateKeyJwt,
            Option::None,
            vec![GrantType::ClientCredentials],
            "read write",
        );
        m2m.metadata.jwks = Some(TestKey::jwks(&[&CLIENT_KEY]));
        for registered in [
            client(
                ENTERPRISE,
                ClientSecretPost,
                Some(ENTERPRISE_SECRET),
                vec![GrantType::JwtBearer],
                "read write",
            ),
            client(
                PUBLIC,
                None,
                Option::None,
                vec![GrantType::JwtBearer],
                "read write",
            ),
            client(
                M2M_SECRET_CLIENT,
                ClientSecretBasic,
                Some(M2M_SECRET),
                vec![GrantType::ClientCredentials],
                "read",
            ),
            m2m,
        ] {
            provider.preregister_client(registered).await.unwrap();
        }
        let settings = AuthSettings::builder(AS)
            .resource_server_url(RESOURCE)
            .revocation(RevocationOptions::enabled())
            .build()
            .unwrap();
        let ctx = HandlerContext::new(settings, provider.capabilities()).with_clock(clock.clone());
        Self {
            token: TokenHandler::new(provider.clone(), ctx.clone()),
            revoke: RevocationHandler::new(provider.clone(), ctx),
            clock,
            provider,
        }
    }

    async fn inline(storage: Arc<dyn Storage>) -> Self {
        Self::start(
            storage,
            JwksSource::Inline(TestKey::jwks(&[&IDP_KEY])),
            HttpJwksFetcher::new().unwrap(),
        )
        .await
    }

    fn now(&self) -> i64 {
        mcp_auth_core::Clock::now(self.clock.as_ref())
    }

    /// POSTs `form` to the token endpoint (or `/revoke`); returns the status and JSON body.
    async fn post(
        &self,
        revoke: bool,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(if revoke { "/revoke" } else { "/token" })
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            use base64::Engine as _;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            request = request.header("authorization", format!("Basic {encoded}"));
        }
        let request = request.body(Bytes::from(body)).unwrap();
        let response = if revoke {
            self.revoke.handle(request).await
        } else {
            self.token.handle(request).await
        };
        let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (response.status().as_u16(), json)
    }

    /// Presents `assertion` as `client` with its secret, plus `extra` parameters.
    async fn exchange(
        &self,
        client: &str,
        assertion: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("client_id", client),
            ("client_secret", ENTERPRISE_SECRET),
            ("assertion", assertion),
        ];
        form.extend_from_slice(extra);
        self.post(false, &form, None).await
    }

    /// ID-JAG claims for the enterprise client, valid now, with `changes` applied (`null`
    /// removes a claim).
    fn claims(&self, changes: Value) -> Value {
        let now = self.now();
        let mut claims = json!({
            "iss": IDP, "sub": "alice", "aud": AS, "client_id": ENTERPRISE,
            "jti": format!("jti-{}", rand::random::<u64>()), "exp": now + 300, "iat": now,
            "resource": RESOURCE, "scope": "read write",
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn id_jag(&self, changes: Value) -> String {
        IDP_KEY.sign(Some(ID_JAG_TYP), &self.claims(changes))
    }

    /// A client assertion of the m2m client, valid now, with `changes` applied.
    fn client_assertion(&self, changes: Value) -> String {
        let now = self.now();
        let mut claims = json!({
            "iss": M2M, "sub": M2M, "aud": AS, "exp": now + 60, "iat": now,
            "jti": format!("ca-{}", rand::random::<u64>()),
        });
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        CLIENT_KEY.sign(None, &claims)
    }

    async fn access_token(&self, token: &str) -> mcp_auth_core::types::AccessToken {
        self.provider
            .load_access_token(&mcp_auth_core::types::AccessTokenSecret::new(token))
            .await
            .unwrap()
            .expect("a live token")
            .as_ref()
            .clone()
    }
}

async fn memory() -> Arc<dyn Storage> {
    Arc::new(MemoryStore::new())
}

async fn sqlite() -> Arc<dyn Storage> {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

async fn backends() -> Vec<(&'static str, Arc<dyn Storage>)> {
    vec![("memory", memory().await), ("sqlite", sqlite().await)]
}

#[tokio::test]
async fn an_id_jag_is_exchanged_for_an_audience_restricted_token_once() {
    for (backend, storage) in backends().await {
        let server = Server::inline(storage).await;
        let assertion = server.id_jag(json!({"tenant": "acme"}));
        let (status, body) = server
            .exchange(
                ENTERPRISE,
                &assertion,
                &[("resource", RESOURCE), ("scope", "read")],
            )
            .await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body["scope"], "read", "{backend}");
        assert!(body.get("refresh_token").is_none(), "{backend}");
        let token = server
            .access_token(body["access_token"].as_str().unwrap())
            .await;
        assert_eq!(token.resource.as_deref(), Some(RESOURCE), "{backend}");
        assert_eq!(
            token.subject.as_deref(),
            Some("https://idp.example.com|acme|alice"),
            "{backend}"
        );
        assert_eq!(token.issuer().as_deref(), Some(IDP), "{backend}");
        assert_eq!(token.client_id, ENTERPRISE, "{backend}");
        // The same ID-JAG again: replay.
        let (status, body) = server.exchange(ENTERPRISE, &assertion, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{backend}"
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("jti"),
            "{backend}"
        );
    }
}

/// (client, assertion, extra form fields, status, error, the rule the description names)
type RuleCase<'a> = (
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
    &'a str,
);

#[tokio::test]
async fn each_broken_id_jag_rule_is_refused_with_its_code() {
    for (backend, storage) in backends().await {
        let server = Server::inline(storage).await;
        let s = &server;
        let now = s.now();
        let public_key_bytes = IDP_KEY.public_jwk().to_string();
        let header = json!({"alg": "RS256", "kid": "idp-1", "typ": ID_JAG_TYP});
        #[rustfmt::skip]
        let cases: Vec<RuleCase<'_>> = vec![
            // (client, assertion, extra form fields, status, error, rule named)
            (ENTERPRISE, unsigned(&header, &s.claims(json!({}))), vec![], 400, "invalid_grant", "alg"),
            (ENTERPRISE, hs256(public_key_bytes.as_bytes(), &header, &s.claims(json!({}))), vec![], 400, "invalid_grant", "alg"),
            (ENTERPRISE, IDP_KEY.sign_with_header(&json!({"alg": "RS256", "kid": "idp-9", "typ": ID_JAG_TYP}), &s.claims(json!({}))), vec![], 400, "invalid_grant", "kid"),
            (ENTERPRISE, s.id_jag(json!({"aud": [AS, "https://other-as.example.com"]})), vec![], 400, "invalid_grant", "aud"),
            (ENTERPRISE, s.id_jag(json!({"exp": now - 120})), vec![], 400, "invalid_grant", "exp"),
            (ENTERPRISE, s.id_jag(json!({"nbf": now + 120})), vec![], 400, "invalid_grant", "nbf"),
            (ENTERPRISE, s.id_jag(json!({"iat": now + 120})), vec![], 400, "invalid_grant", "iat"),
            (ENTERPRISE, s.id_jag(json!({"client_id": "someone-else"})), vec![], 400, "invalid_grant", "client_id"),
            (ENTERPRISE, s.id_jag(json!({"iss": "https://untrusted-idp.example.com"})), vec![], 400, "invalid_grant", "iss"),
            (ENTERPRISE, IDP_KEY.sign(Some("JWT"), &s.claims(json!({}))), vec![], 400, "invalid_grant", "typ"),
            (ENTERPRISE, s.id_jag(json!({"resource": "https://other-mcp.example.com/mcp"})), vec![], 400, "invalid_target", "resource"),
            (ENTERPRISE, s.id_jag(json!({})), vec![("resource", "https://other-mcp.example.com/mcp")], 400, "invalid_target", "resource"),
            (ENTERPRISE, s.id_jag(json!({"scope": "read"})), vec![("scope", "admin")], 400, "invalid_scope", "scope"),
            (ENTERPRISE, s.id_jag(json!({"sub": null})), vec![], 400, "invalid_grant", "sub"),
            (ENTERPRISE, s.id_jag(json!({"jti": null})), vec![], 400, "invalid_grant", "jti"),
            (PUBLIC, s.id_jag(json!({"client_id": PUBLIC})), vec![], 400, "unauthorized_client", "the jwt-bearer grant requires a confidential client"),
        ];
        for (client, assertion, extra, status, error, rule) in cases {
            let mut form = vec![
                ("grant_type", JWT_BEARER_GRANT_TYPE),
                ("client_id", client),
                ("assertion", assertion.as_str()),
            ];
            if client == ENTERPRISE {
                form.push(("client_secret", ENTERPRISE_SECRET));
            }
            form.extend(extra);
            let (got, body) = server.post(false, &form, None).await;
            let case = format!("{backend} {rule}: {body}");
            assert_eq!(
                (got, body["error"].as_str()),
                (status, Some(error)),
                "{case}"
            );
            let description = body["error_description"].as_str().unwrap_or_default();
            assert!(description.starts_with(rule), "{case}");
            assert!(
                !description.contains(&assertion) && !description.contains("alice"),
                "{case}"
            );
        }
        // A wrong client secret is 401 invalid_client before the assertion is looked at.
        let (status, body) = server
            .post(
                false,
                &[
                    ("grant_type", JWT_BEARER_GRANT_TYPE),
                    ("client_id", ENTERPRISE),
                    ("client_secret", "wrong"),
                    ("assertion", &server.id_jag(json!({}))),
                ],
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn scope_escalation_is_narrowed_to_the_assertion_and_registration() {
    let server = Server::inline(memory().await).await;
    // The ID-JAG grants read and admin; the client is registered for read and write.
    let assertion = server.id_jag(json!({"scope": "read admin"}));
    let (status, body) = server
        .exchange(ENTERPRISE, &assertion, &[("scope", "read write admin")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read");
}

#[tokio::test]
async fn client_credentials_with_private_key_jwt_and_with_a_secret() {
    for (backend, storage) in backends().await {
        let server = Server::inline(storage).await;
        let assertion = server.client_assertion(json!({}));
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE_JWT_BEARER),
            ("client_assertion", assertion.as_str()),
            ("scope", "read"),
        ];
        let (status, body) = server.post(false, &form, None).await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert_eq!(body["scope"], "read");
        assert!(body.get("refresh_token").is_none());
        let access = body["access_token"].as_str().unwrap().to_owned();
        let token = server.access_token(&access).await;
        assert_eq!(token.subject.as_deref(), Some(M2M), "{backend}");
        assert_eq!(token.resource.as_deref(), Some(RESOURCE), "{backend}");
        // The same client assertion again: replay.
        let (status, body) = server.post(false, &form, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{backend}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains("jti"),
            "{backend}"
        );
        #[rustfmt::skip]
        let refusals: Vec<(String, &str, &str)> = vec![
            (server.client_assertion(json!({"aud": "https://other-as.example.com"})), "read", "aud"),
            (server.client_assertion(json!({"aud": format!("{AS}/token")})), "admin", "invalid_scope"),
            (server.client_assertion(json!({"iss": ENTERPRISE})), "read", "iss"),
            (server.client_assertion(json!({"exp": server.now() - 120})), "read", "exp"),
            (TestKey::generate(SigningAlgorithm::ES256, "m2m-1").sign(None, &json!({"iss": M2M, "sub": M2M, "aud": AS, "exp": server.now() + 60, "iat": server.now(), "jti": "x"})), "read", "signature"),
        ];
        for (assertion, scope, rule) in refusals {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", M2M),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE_JWT_BEARER),
                ("client_assertion", assertion.as_str()),
                ("scope", scope),
            ];
            let (status, body) = server.post(false, &form, None).await;
            let text = body.to_string();
            assert!(status == 400 || status == 401, "{backend} {rule}: {text}");
            assert!(text.contains(rule), "{backend} {rule}: {text}");
        }
        // /revoke authenticates the same way; revoking the token kills it.
        let assertion = server.client_assertion(json!({}));
        let form = [
            ("token", access.as_str()),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE_JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        let (status, body) = server.post(true, &form, None).await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert!(
            server
                .provider
                .load_access_token(&mcp_auth_core::types::AccessTokenSecret::new(access))
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
        // A secret client: scopes within its registration only.
        let basic = Some((M2M_SECRET_CLIENT, M2M_SECRET));
        let (status, body) = server
            .post(false, &[("grant_type", "client_credentials")], basic)
            .await;
        assert_eq!(
            (status, &body["scope"]),
            (200, &json!("read")),
            "{backend}: {body}"
        );
        let (status, body) = server
            .post(
                false,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "read write"),
                ],
                basic,
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{backend}"
        );
    }
}

/// The identity provider's JWKS document on a loopback https host.
struct JwksServer {
    url: String,
    host: HttpsHost,
}

impl JwksServer {
    const PATH: &str = "/jwks.json";

    async fn start(document: Value) -> Self {
        let host = HttpsHost::start().await;
        host.serve(Self::PATH, &document);
        Self {
            url: host.url("127.0.0.1", Self::PATH),
            host,
        }
    }

    /// Serves `document` from now on (a key rotation at the identity provider).
    fn replace(&self, document: &Value) {
        self.host.serve(Self::PATH, document);
    }

    fn hits(&self) -> usize {
        self.host.hits(Self::PATH)
    }

    fn fetcher(&self, max_body_bytes: usize) -> HttpJwksFetcher {
        HttpJwksFetcher::builder()
            .root_certificates_pem(self.host.pem.as_bytes())
            .unwrap()
            .max_body_bytes(max_body_bytes)
            .build()
            .unwrap()
    }
}

#[tokio::test]
async fn https_keys_are_cached_and_an_unknown_kid_refetches_at_most_once_a_minute() {
    let jwks = JwksServer::start(TestKey::jwks(&[&IDP_KEY])).await;
    let server = Server::start(
        memory().await,
        JwksSource::Url(jwks.url.clone()),
        jwks.fetcher(64 * 1024),
    )
    .await;
    let accepted = |(status, body): (u16, Value)| assert_eq!(status, 200, "{body}");

    accepted(
        server
            .exchange(ENTERPRISE, &server.id_jag(json!({})), &[])
            .await,
    );
    accepted(
        server
            .exchange(ENTERPRISE, &server.id_jag(json!({})), &[])
            .await,
    );
    assert_eq!(jwks.hits(), 1, "the second exchange uses the cached keys");

    // The identity provider rotates in a new key.
    let rotated = TestKey::generate(SigningAlgorithm::ES256, "idp-2");
    jwks.replace(&TestKey::jwks(&[&IDP_KEY, &rotated]));
    let with_new_key = |s: &Server| rotated.sign(Some(ID_JAG_TYP), &s.claims(json!({})));
    server.clock.advance(10);
    let (status, body) = server
        .exchange(ENTERPRISE, &with_new_key(&server), &[])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("kid")
    );
    assert_eq!(
        jwks.hits(),
        1,
        "no refetch within a minute of the last fetch"
    );

    server.clock.advance(51);
    accepted(
        server
            .exchange(ENTERPRISE, &with_new_key(&server), &[])
            .await,
    );
    assert_eq!(jwks.hits(), 2, "the unknown kid refetched the set once");

    // Made-up key ids cannot make the server hammer the identity provider.
    for _ in 0..20 {
        server.clock.advance(2);
        let bogus = IDP_KEY.sign_with_header(
            &json!({"alg": "RS256", "kid": format!("bogus-{}", rand::random::<u32>()), "typ": ID_JAG_TYP}),
            &server.claims(json!({})),
        );
        let (status, _) = server.exchange(ENTERPRISE, &bogus, &[]).await;
        assert_eq!(status, 400);
    }
    assert_eq!(jwks.hits(), 2);

    // Past max-age the set is fetched again.
    server.clock.advance(300);
    accepted(
        server
            .exchange(ENTERPRISE, &server.id_jag(json!({})), &[])
            .await,
    );
    assert_eq!(jwks.hits(), 3);
}

#[tokio::test]
async fn an_oversized_or_unreachable_jwks_is_temporarily_unavailable() {
    let jwks = JwksServer::start(TestKey::jwks(&[&IDP_KEY])).await;
    let server = Server::start(
        memory().await,
        JwksSource::Url(jwks.url.clone()),
        jwks.fetcher(64),
    )
    .await;
    let (status, body) = server
        .exchange(ENTERPRISE, &server.id_jag(json!({})), &[])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    assert_eq!(jwks.hits(), 1);
    // Without the test certificate among the roots, the TLS handshake fails.
    let untrusted = Server::start(
        memory().await,
        JwksSource::Url(jwks.url.clone()),
        HttpJwksFetcher::new().unwrap(),
    )
    .await;
    let (status, _) = untrusted
        .exchange(ENTERPRISE, &untrusted.id_jag(json!({})), &[])
        .await;
    assert_eq!(status, 503);
    assert_eq!(jwks.hits(), 1, "the handshake failed before any request");
}
