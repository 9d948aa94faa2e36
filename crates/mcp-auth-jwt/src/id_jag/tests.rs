use std::sync::{Arc, LazyLock};

use mcp_auth_core::{ManualClock, MemoryStore, OAuthAuthorizationServerProvider, StoreProvider};
use mcp_auth_types::{
    AccessTokenSecret, GrantType, IdentityAssertionParams, OAuthClientMetadata, TokenErrorCode,
};
use serde_json::{Value, json};

use super::*;
use crate::SigningAlgorithm;
use crate::test_util::{TestKey, hs256, unsigned};

const AS: &str = "https://auth.example.com";
const IDP: &str = "https://idp.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const CLIENT: &str = "enterprise-client";
const NOW: i64 = 1_700_000_000;
/// A subject value that must never show up in an error description.
const SUB: &str = "alice-7c1e";

static KEY: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate(SigningAlgorithm::RS256, "k1"));
/// Same kid, different key: a forger who knows the kid.
static IMPOSTOR: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::generate(SigningAlgorithm::RS256, "k1"));

fn validator_for(keys: Value) -> IdJagValidator {
    IdJagValidator::builder(AS)
        .resource(RESOURCE)
        .resource("https://other-mcp.example.com/api")
        .trusted_issuer(IDP, JwksSource::Inline(keys))
        .build()
        .unwrap()
}

fn validator() -> IdJagValidator {
    validator_for(TestKey::jwks(&[&KEY]))
}

fn client(id: &str) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec![]);
    metadata.scope = Some("read write".into());
    metadata.grant_types = vec![GrantType::JwtBearer];
    OAuthClientInformationFull::new(id, metadata)
}

fn claims() -> Value {
    json!({
        "iss": IDP, "sub": SUB, "aud": AS, "client_id": CLIENT, "jti": "jti-1",
        "exp": NOW + 300, "iat": NOW, "resource": RESOURCE, "scope": "read write admin",
    })
}

/// The claims with `changes` applied (`null` removes a claim).
fn with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn jag(claims: &Value) -> String {
    KEY.sign(Some(ID_JAG_TYP), claims)
}

fn header() -> Value {
    json!({"alg": "RS256", "kid": "k1", "typ": ID_JAG_TYP})
}

async fn validate(token: &str) -> Result<IdentityAssertionGrant, TokenError> {
    validator()
        .validate_identity_assertion(&client(CLIENT), &Assertion::new(token), NOW)
        .await
}

/// Expects a rejection with `code` whose description starts with `rule`, and checks that the
/// description echoes neither the assertion nor any claim value.
async fn check_rejected(token: &str, code: TokenErrorCode, rule: &str) {
    match validate(token).await {
        Err(TokenError::Rejected {
            code: got,
            description: Some(description),
        }) => {
            assert_eq!(got, code, "{rule}: {description}");
            assert!(description.starts_with(rule), "{rule}: {description}");
            for secret in [token, SUB, "jti-1", CLIENT, IDP] {
                assert!(!description.contains(secret), "{rule}: {description}");
            }
        }
        other => panic!("{rule}: expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_id_jag_yields_its_grant() {
    let grant = validate(&jag(&claims())).await.unwrap();
    assert_eq!(grant.issuer, IDP);
    assert_eq!(grant.subject, SUB);
    assert_eq!(grant.client_id, CLIENT);
    assert_eq!(grant.resources, [RESOURCE]);
    assert_eq!(grant.scopes, ["read", "write", "admin"]);
    assert_eq!(grant.jti, "jti-1");
    assert_eq!(grant.expires_at, NOW + 300);
    assert_eq!(grant.replay_until, NOW + 300 + 60);
    assert_eq!(grant.tenant, None);
}

#[tokio::test]
async fn each_broken_rule_is_rejected_and_named() {
    use TokenErrorCode::{InvalidGrant as G, InvalidTarget as T};
    let good = jag(&claims());
    let (head, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let public_key_bytes = KEY.public_jwk().to_string();
    let mut flipped = signature.to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let tampered_payload = format!(
        "{head}.{}.{signature}",
        jag(&with(json!({"sub": "mallory"})))
            .split('.')
            .nth(1)
            .unwrap()
    );
    #[rustfmt::skip]
    let cases: Vec<(String, TokenErrorCode, &str)> = vec![
        (KEY.sign(Some("JWT"), &claims()), G, "typ"),
        (KEY.sign(None, &claims()), G, "typ"),
        (unsigned(&header(), &claims()), G, "alg"),
        (hs256(public_key_bytes.as_bytes(), &header(), &claims()), G, "alg"),
        (KEY.sign_with_header(&json!({"alg": "RS256", "kid": "k1", "typ": ID_JAG_TYP, "crit": ["exp"]}), &claims()), G, "crit"),
        (jag(&with(json!({"aud": "https://other-as.example.com"}))), G, "aud"),
        (jag(&with(json!({"aud": [AS, "https://other-as.example.com"]}))), G, "aud"),
        (jag(&with(json!({"aud": null}))), G, "aud"),
        (jag(&with(json!({"exp": NOW - 61}))), G, "exp"),
        (jag(&with(json!({"exp": null}))), G, "exp"),
        (jag(&with(json!({"iat": NOW + 61}))), G, "iat"),
        (jag(&with(json!({"iat": null}))), G, "iat"),
        (jag(&with(json!({"nbf": NOW + 61}))), G, "nbf"),
        (jag(&with(json!({"sub": null}))), G, "sub"),
        (jag(&with(json!({"client_id": null}))), G, "client_id"),
        (jag(&with(json!({"jti": null}))), G, "jti"),
        (jag(&with(json!({"client_id": "another-client"}))), G, "client_id"),
        (jag(&with(json!({"iss": "https://untrusted.example.com"}))), G, "iss"),
        (jag(&with(json!({"iss": null}))), G, "iss"),
        (KEY.sign_with_header(&json!({"alg": "RS256", "kid": "k2", "typ": ID_JAG_TYP}), &claims()), G, "kid"),
        (format!("{head}.{}.{flipped}", rest.split_once('.').unwrap().0), G, "signature"),
        (tampered_payload, G, "signature"),
        (IMPOSTOR.sign(Some(ID_JAG_TYP), &claims()), G, "signature"),
        (KEY.sign_with_header(&json!({"alg": "ES256", "kid": "k1", "typ": ID_JAG_TYP}), &claims()), G, "alg"),
        (jag(&with(json!({"resource": "https://elsewhere.example.com/mcp"}))), T, "resource"),
        (jag(&with(json!({"resource": null}))), G, "resource"),
        (jag(&with(json!({"resource": "https://mcp.example.com/mcp#frag"}))), T, "resource"),
        ("not-a-jwt".to_owned(), G, "the assertion is not a well-formed"),
    ];
    for (token, code, rule) in cases {
        check_rejected(&token, code, rule).await;
    }
}

#[tokio::test]
async fn leeway_audience_forms_and_claim_forms_that_pass() {
    let cases = [
        with(json!({"exp": NOW - 59})),
        with(json!({"iat": NOW + 59})),
        with(json!({"nbf": NOW + 59})),
        with(json!({"nbf": NOW - 10})),
        with(json!({"aud": [AS]})),
        with(json!({"scope": null})),
        with(
            json!({"resource": ["https://elsewhere.example.com/x", "HTTPS://MCP.example.com/mcp"]}),
        ),
    ];
    for claims in cases {
        let grant = validate(&jag(&claims)).await;
        assert!(grant.is_ok(), "{claims}: {grant:?}");
    }
    let grant = validate(&jag(&with(
        json!({"resource": ["https://elsewhere.example.com/x", RESOURCE], "tenant": "acme"}),
    )))
    .await
    .unwrap();
    assert_eq!(
        grant.resources,
        [RESOURCE],
        "only served resources are kept"
    );
    assert_eq!(grant.tenant.as_deref(), Some("acme"));
    let typed = KEY.sign(Some("application/oauth-id-jag+jwt"), &claims());
    assert!(validate(&typed).await.is_ok());
}

#[tokio::test]
async fn every_allowed_algorithm_verifies() {
    let keys: Vec<TestKey> = crate::SUPPORTED_ALGORITHMS
        .iter()
        .map(|alg| TestKey::generate(*alg, alg.as_str()))
        .collect();
    let validator = validator_for(TestKey::jwks(&keys.iter().collect::<Vec<_>>()));
    for key in &keys {
        let token = key.sign(Some(ID_JAG_TYP), &claims());
        let result = validator
            .validate_identity_assertion(&client(CLIENT), &Assertion::new(token), NOW)
            .await;
        assert!(result.is_ok(), "{:?}: {result:?}", key.alg());
        // Without `kid`, the key is found by trying the usable ones.
        let bare = key.sign_with_header(
            &json!({"alg": key.alg().as_str(), "typ": ID_JAG_TYP}),
            &claims(),
        );
        let result = validator
            .validate_identity_assertion(&client(CLIENT), &Assertion::new(bare), NOW)
            .await;
        assert!(result.is_ok(), "{:?} without kid: {result:?}", key.alg());
    }
}

#[test]
fn configuration_errors_are_reported() {
    let no_resource = IdJagValidator::builder(AS)
        .trusted_issuer(IDP, JwksSource::Inline(TestKey::jwks(&[&KEY])))
        .build();
    assert!(matches!(no_resource, Err(JwtConfigError::NoResources)));
    let http = IdJagValidator::builder(AS)
        .resource(RESOURCE)
        .trusted_issuer(IDP, JwksSource::Url("http://idp.example.com/keys".into()))
        .build();
    assert!(matches!(http, Err(JwtConfigError::NotHttps(_))));
    let symmetric_only = IdJagValidator::builder(AS)
        .resource(RESOURCE)
        .trusted_issuer(
            IDP,
            JwksSource::Inline(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]})),
        )
        .build();
    assert!(matches!(symmetric_only, Err(JwtConfigError::Jwks { .. })));
    let twice = IdJagValidator::builder(AS)
        .resource(RESOURCE)
        .trusted_issuer(IDP, JwksSource::Inline(TestKey::jwks(&[&KEY])))
        .trusted_issuer(IDP, JwksSource::Inline(TestKey::jwks(&[&KEY])))
        .build();
    assert!(matches!(twice, Err(JwtConfigError::DuplicateIssuer(_))));
    let missing_file = IdJagValidator::builder(AS)
        .resource(RESOURCE)
        .trusted_issuer(IDP, JwksSource::File("/nonexistent/jwks.json".into()))
        .build();
    assert!(matches!(missing_file, Err(JwtConfigError::File { .. })));
}

/// The provider half: replay and scope intersection with the real validator.
#[tokio::test]
async fn through_the_store_provider_replays_fail_and_scopes_intersect() {
    let provider = StoreProvider::builder(MemoryStore::new(), AS)
        .clock(Arc::new(ManualClock::new(NOW)))
        .identity_assertion_validator(Arc::new(validator()))
        .build()
        .unwrap();
    let client = client(CLIENT);
    let mut params = IdentityAssertionParams::new(Assertion::new(jag(&claims())));
    params.scopes = Some(vec!["read".into(), "admin".into()]);
    let token = provider
        .exchange_identity_assertion(&client, params.clone())
        .await
        .unwrap();
    // admin is in the ID-JAG but not the client's registration.
    assert_eq!(token.scope.as_deref(), Some("read"));
    assert!(token.refresh_token.is_none());
    let record = provider
        .load_access_token(&AccessTokenSecret::new(token.access_token.expose_secret()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.as_ref().resource.as_deref(), Some(RESOURCE));
    assert_eq!(
        record.as_ref().subject.as_deref(),
        Some(&*format!("{IDP}|{SUB}"))
    );
    match provider.exchange_identity_assertion(&client, params).await {
        Err(TokenError::Rejected { code, description }) => {
            assert_eq!(code, TokenErrorCode::InvalidGrant);
            assert!(description.unwrap().starts_with("jti"));
        }
        other => panic!("replay accepted: {other:?}"),
    }
}

#[tokio::test]
async fn lifetime_and_jti_length_are_bounded() {
    // (claims, rule) — `None`: accepted.
    let year_3000 = 32_503_680_000_i64;
    #[rustfmt::skip]
    let cases: [(Value, Option<&str>); 6] = [
        (with(json!({"exp": NOW + 3600})), None),
        (with(json!({"jti": "j".repeat(256)})), None),
        (with(json!({"exp": year_3000})), Some("exp")),
        (with(json!({"exp": NOW + 3601})), Some("exp")),
        (with(json!({"iat": NOW - 7200, "exp": NOW + 60})), Some("exp")),
        (with(json!({"jti": "j".repeat(257)})), Some("jti")),
    ];
    for (claims, rule) in cases {
        match rule {
            None => assert!(validate(&jag(&claims)).await.is_ok(), "{claims}"),
            Some(rule) => check_rejected(&jag(&claims), TokenErrorCode::InvalidGrant, rule).await,
        }
    }
}

#[tokio::test]
async fn the_maximum_lifetime_is_configurable_within_a_day() {
    let build = |seconds| {
        IdJagValidator::builder(AS)
            .resource(RESOURCE)
            .trusted_issuer(IDP, JwksSource::Inline(TestKey::jwks(&[&KEY])))
            .max_lifetime(seconds)
            .build()
    };
    for seconds in [0, 24 * 3600 + 1] {
        assert!(
            matches!(build(seconds), Err(JwtConfigError::Url { .. })),
            "{seconds}"
        );
    }
    let validator = build(7200).unwrap();
    let long = jag(&with(json!({"exp": NOW + 7200})));
    validator
        .validate_identity_assertion(&client(CLIENT), &Assertion::new(long), NOW)
        .await
        .unwrap();
    let longer = jag(&with(json!({"exp": NOW + 7201})));
    assert!(
        validator
            .validate_identity_assertion(&client(CLIENT), &Assertion::new(longer), NOW)
            .await
            .is_err()
    );
}

/// Serves the issuer's keys and counts fetches.
struct CountingFetcher(std::sync::atomic::AtomicUsize);

#[async_trait]
impl JwksFetcher for CountingFetcher {
    async fn fetch(&self, _: &str) -> Result<crate::FetchedJwks, crate::KeyFetchError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(crate::FetchedJwks::new(
            TestKey::jwks(&[&KEY]).to_string().into_bytes(),
            None,
        ))
    }
}

#[tokio::test]
async fn claims_are_checked_before_the_issuer_keys_are_fetched() {
    let fetcher = Arc::new(CountingFetcher(std::sync::atomic::AtomicUsize::new(0)));
    let validator = IdJagValidator::builder(AS)
        .resource(RESOURCE)
        .trusted_issuer(IDP, JwksSource::Url("https://idp.example.com/keys".into()))
        .fetcher(fetcher.clone())
        .build()
        .unwrap();
    for claims in [
        with(json!({"aud": "https://other-as.example.com"})),
        with(json!({"exp": NOW - 120})),
        with(json!({"client_id": "another-client"})),
        with(json!({"resource": "https://elsewhere.example.com/mcp"})),
    ] {
        let forged = IMPOSTOR.sign(Some(ID_JAG_TYP), &claims);
        assert!(
            validator
                .validate_identity_assertion(&client(CLIENT), &Assertion::new(forged), NOW)
                .await
                .is_err()
        );
    }
    assert_eq!(fetcher.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    validator
        .validate_identity_assertion(&client(CLIENT), &Assertion::new(jag(&claims())), NOW)
        .await
        .unwrap();
    assert_eq!(fetcher.0.load(std::sync::atomic::Ordering::SeqCst), 1);
}
