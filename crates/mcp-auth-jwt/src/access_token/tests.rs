use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_auth_core::ManualClock;
use serde_json::json;

use super::*;
use crate::test_util::{TestKey, hs256, unsigned};
use crate::{FetchedJwks, KeyFetchError};

const ISSUER: &str = "https://as.example";
const RESOURCE: &str = "https://mcp.example/mcp";
const NOW: i64 = 1_700_000_000;

static KEY: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate(SigningAlgorithm::ES256, "k1"));
static OTHER: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::generate(SigningAlgorithm::RS256, "k2"));

fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "app",
        "scope": "mcp:tools read", "iat": NOW - 10, "exp": NOW + 300, "jti": "j1",
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

fn token(changes: Value) -> String {
    KEY.sign(Some("at+jwt"), &claims(changes))
}

fn verifier(
    configure: impl FnOnce(JwtAccessTokenVerifierBuilder) -> JwtAccessTokenVerifierBuilder,
) -> JwtAccessTokenVerifier {
    configure(
        JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
            .jwks(JwksSource::Inline(TestKey::jwks(&[&KEY, &OTHER])))
            .clock(Arc::new(ManualClock::new(NOW))),
    )
    .build()
    .unwrap()
}

async fn verify(verifier: &JwtAccessTokenVerifier, token: &str) -> Option<AccessToken> {
    verifier
        .verify_token(&AccessTokenSecret::new(token))
        .await
        .expect("decided")
}

#[tokio::test]
async fn a_valid_token_grants_its_client_scopes_subject_and_this_resource() {
    let verifier = verifier(|b| b);
    let raw = token(json!({}));
    let access = verify(&verifier, &raw).await.expect("valid");
    assert_eq!(access.client_id, "app");
    assert_eq!(access.scopes, ["mcp:tools", "read"]);
    assert_eq!(access.subject.as_deref(), Some("alice"));
    assert_eq!(access.resource.as_deref(), Some(RESOURCE));
    assert_eq!(access.expires_at, Some(NOW + 300));
    assert_eq!(access.issuer().as_deref(), Some(ISSUER));
    assert_eq!(access.token.expose_secret(), raw);
}

#[tokio::test]
async fn every_claim_rule_refuses_what_breaks_it() {
    let verifier = verifier(|b| b);
    let with = |changes: Value| token(changes);
    #[rustfmt::skip]
    let refused: Vec<(&str, String)> = vec![
        ("another issuer", with(json!({"iss": "https://evil.example"}))),
        ("issuer with a slash", with(json!({"iss": "https://as.example/"}))),
        ("another resource", with(json!({"aud": "https://other.example/mcp"}))),
        ("no aud", with(json!({"aud": null}))),
        ("aud with a fragment", with(json!({"aud": "https://mcp.example/mcp#x"}))),
        ("expired", with(json!({"exp": NOW - 61}))),
        ("expired a second ago, no leeway after exp", with(json!({"exp": NOW - 1}))),
        ("expiring now", with(json!({"exp": NOW}))),
        ("longer than 8 KiB", with(json!({"pad": "x".repeat(9 * 1024)}))),
        ("no exp", with(json!({"exp": null}))),
        ("issued in the future", with(json!({"iat": NOW + 61}))),
        ("not yet valid", with(json!({"nbf": NOW + 61}))),
        ("no client", with(json!({"client_id": null}))),
        ("scope not a string", with(json!({"scope": ["read"]}))),
        ("scp array with a number", with(json!({"scope": null, "scp": ["read", 1]}))),
        ("typ JWT", KEY.sign(Some("JWT"), &claims(json!({})))),
        ("no typ", KEY.sign(None, &claims(json!({})))),
        ("an ID-JAG", KEY.sign(Some("oauth-id-jag+jwt"), &claims(json!({})))),
        ("alg none", unsigned(&json!({"alg": "none", "typ": "at+jwt"}), &claims(json!({})))),
        ("HMAC", hs256(b"secret", &json!({"alg": "HS256", "typ": "at+jwt"}), &claims(json!({})))),
        ("signed by an unknown key", TestKey::generate(SigningAlgorithm::ES256, "k1").sign(Some("at+jwt"), &claims(json!({})))),
        ("unknown kid", TestKey::generate(SigningAlgorithm::ES256, "k9").sign(Some("at+jwt"), &claims(json!({})))),
        ("not a JWS", "opaque-token".to_owned()),
    ];
    for (case, raw) in refused {
        assert!(verify(&verifier, &raw).await.is_none(), "{case}");
    }
    // Within the leeway, and the accepted shapes of each claim.
    #[rustfmt::skip]
    let accepted: Vec<(&str, Value, &[&str], &str)> = vec![
        ("issued within the leeway", json!({"iat": NOW + 59, "nbf": NOW + 59}), &["mcp:tools", "read"], "app"),
        ("aud array, non-canonical", json!({"aud": ["https://x.example", "HTTPS://MCP.example/mcp"]}), &["mcp:tools", "read"], "app"),
        ("scp string", json!({"scope": null, "scp": "a b"}), &["a", "b"], "app"),
        ("scp array", json!({"scope": null, "scp": ["a", "b"]}), &["a", "b"], "app"),
        ("no scope", json!({"scope": null}), &[], "app"),
        ("azp", json!({"client_id": null, "azp": "spa"}), &["mcp:tools", "read"], "spa"),
        ("appid", json!({"client_id": null, "appid": "entra-v1"}), &["mcp:tools", "read"], "entra-v1"),
        ("no iat, no sub", json!({"iat": null, "sub": null}), &["mcp:tools", "read"], "app"),
    ];
    for (case, changes, scopes, client) in accepted {
        let access = verify(&verifier, &token(changes)).await;
        let access = access.unwrap_or_else(|| panic!("{case} refused"));
        assert_eq!(access.scopes, scopes, "{case}");
        assert_eq!(access.client_id, client, "{case}");
    }
    let other_key = OTHER.sign(Some("application/at+jwt"), &claims(json!({})));
    assert!(
        verify(&verifier, &other_key).await.is_some(),
        "RS256, media type typ"
    );
}

#[tokio::test]
async fn a_token_without_kid_is_checked_against_one_key_at_most() {
    let second = TestKey::generate(SigningAlgorithm::ES256, "k3");
    let verifier = JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
        .jwks(JwksSource::Inline(TestKey::jwks(&[&KEY, &second])))
        .clock(Arc::new(ManualClock::new(NOW)))
        .build()
        .unwrap();
    let without_kid = KEY.sign_with_header(
        &json!({"alg": "ES256", "typ": "at+jwt"}),
        &claims(json!({})),
    );
    assert!(
        verify(&verifier, &without_kid).await.is_none(),
        "two ES256 keys: kid required"
    );
    assert!(
        verify(&verifier, &token(json!({}))).await.is_some(),
        "with its kid"
    );
    let alone = verifier_with_keys(&[&KEY]);
    assert!(
        verify(&alone, &without_kid).await.is_some(),
        "one key: no kid needed"
    );
}

fn verifier_with_keys(keys: &[&TestKey]) -> JwtAccessTokenVerifier {
    JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
        .jwks(JwksSource::Inline(TestKey::jwks(keys)))
        .clock(Arc::new(ManualClock::new(NOW)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn plain_jwt_typ_and_algorithms_are_configurable() {
    let lenient = verifier(|b| b.accept_plain_jwt(true));
    for typ in [Some("JWT"), None, Some("at+jwt")] {
        let raw = KEY.sign(typ, &claims(json!({})));
        assert!(verify(&lenient, &raw).await.is_some(), "{typ:?}");
    }
    let id_jag = KEY.sign(Some("oauth-id-jag+jwt"), &claims(json!({})));
    assert!(
        verify(&lenient, &id_jag).await.is_none(),
        "another typ stays refused"
    );
    let rsa_only = verifier(|b| b.algorithms([SigningAlgorithm::RS256]));
    assert!(
        verify(&rsa_only, &token(json!({}))).await.is_none(),
        "ES256 not allowed"
    );
    let rsa = OTHER.sign(Some("at+jwt"), &claims(json!({})));
    assert!(verify(&rsa_only, &rsa).await.is_some());
}

#[tokio::test]
async fn a_verified_token_is_answered_at_once_until_it_expires() {
    let clock = Arc::new(ManualClock::new(NOW));
    let verifier = verifier(|b| b.clock(clock.clone()));
    let raw = AccessTokenSecret::new(token(json!({})));
    assert!(
        verifier.verify_token_now(&raw).is_none(),
        "not verified yet"
    );
    assert!(verifier.verify_token(&raw).await.unwrap().is_some());
    let now = verifier.verify_token_now(&raw).expect("remembered");
    assert_eq!(now.unwrap().unwrap().client_id, "app");
    clock.advance(361);
    assert!(verifier.verify_token_now(&raw).is_none(), "expired");
    assert!(verifier.verify_token(&raw).await.unwrap().is_none());
}

/// Serves an issuer's metadata documents and key set by URL, counting requests.
struct IssuerHost {
    documents: std::sync::Mutex<HashMap<String, Value>>,
    fetches: AtomicUsize,
}

#[async_trait]
impl JwksFetcher for IssuerHost {
    async fn fetch(&self, url: &str) -> Result<FetchedJwks, KeyFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        match self.documents.lock().unwrap().get(url) {
            Some(document) => Ok(FetchedJwks::new(document.to_string().into_bytes(), None)),
            None => Err(KeyFetchError::Status(404)),
        }
    }
}

fn host(documents: &[(&str, Value)]) -> Arc<IssuerHost> {
    Arc::new(IssuerHost {
        documents: std::sync::Mutex::new(
            documents
                .iter()
                .map(|(url, document)| ((*url).to_owned(), document.clone()))
                .collect(),
        ),
        fetches: AtomicUsize::new(0),
    })
}

#[tokio::test]
async fn keys_are_found_through_rfc8414_or_openid_metadata_naming_this_issuer() {
    let jwks = ("https://as.example/keys", TestKey::jwks(&[&KEY]));
    for metadata_url in [
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    ] {
        let host = host(&[
            (
                metadata_url,
                json!({"issuer": ISSUER, "jwks_uri": "https://as.example/keys"}),
            ),
            jwks.clone(),
        ]);
        let verifier = JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
            .fetcher(host.clone())
            .clock(Arc::new(ManualClock::new(NOW)))
            .build()
            .unwrap();
        assert!(
            verify(&verifier, &token(json!({}))).await.is_some(),
            "{metadata_url}"
        );
        // A second token needs no more fetches.
        let fetches = host.fetches.load(Ordering::SeqCst);
        assert!(
            verify(&verifier, &token(json!({"jti": "j2"})))
                .await
                .is_some()
        );
        assert_eq!(host.fetches.load(Ordering::SeqCst), fetches);
    }
}

/// A verifier discovering its keys through `host`, and its clock.
fn discovering(host: &Arc<IssuerHost>) -> (JwtAccessTokenVerifier, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let verifier = JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
        .fetcher(host.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    (verifier, clock)
}

#[tokio::test]
async fn metadata_of_another_issuer_is_unavailable_and_retried_at_most_once_a_minute() {
    let host = host(&[
        (
            "https://as.example/.well-known/oauth-authorization-server",
            json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/keys"}),
        ),
        ("https://evil.example/keys", TestKey::jwks(&[&KEY])),
    ]);
    let (verifier, clock) = discovering(&host);
    let raw = AccessTokenSecret::new(token(json!({})));
    let error = verifier
        .verify_token(&raw)
        .await
        .expect_err("unavailable, not invalid");
    assert_eq!(error.kind(), mcp_auth_core::ProviderErrorKind::Unavailable);
    let fetches = host.fetches.load(Ordering::SeqCst);
    assert_eq!(
        fetches, 2,
        "both metadata locations tried, the foreign keys never"
    );
    for _ in 0..5 {
        assert!(verifier.verify_token(&raw).await.is_err());
    }
    assert_eq!(
        host.fetches.load(Ordering::SeqCst),
        fetches,
        "no retry within a minute"
    );
    clock.advance(DISCOVERY_RETRY_INTERVAL_FOR_TESTS);
    assert!(verifier.verify_token(&raw).await.is_err());
    assert_eq!(
        host.fetches.load(Ordering::SeqCst),
        fetches + 2,
        "retried after a minute"
    );
}

/// A token naming a key the issuer rotated in while its key host is down is "unavailable"
/// (503), not "unknown key" (401): an outage must not send every client to re-authorize.
#[tokio::test]
async fn an_unknown_kid_during_a_key_host_outage_is_unavailable_not_invalid() {
    let host = host(&[
        (
            "https://as.example/.well-known/oauth-authorization-server",
            json!({"issuer": ISSUER, "jwks_uri": "https://as.example/keys"}),
        ),
        ("https://as.example/keys", TestKey::jwks(&[&KEY])),
    ]);
    let (verifier, clock) = discovering(&host);
    assert!(verify(&verifier, &token(json!({}))).await.is_some());
    host.documents
        .lock()
        .unwrap()
        .remove("https://as.example/keys");
    clock.advance(crate::MIN_REFETCH_INTERVAL);
    let rotated = TestKey::generate(SigningAlgorithm::ES256, "k-new");
    let raw = AccessTokenSecret::new(rotated.sign(
        Some("at+jwt"),
        &claims(json!({"iat": NOW + 50, "exp": NOW + 600})),
    ));
    let error = verifier.verify_token(&raw).await.expect_err("503, not 401");
    assert_eq!(error.kind(), mcp_auth_core::ProviderErrorKind::Unavailable);
    // The key it holds still verifies the tokens it signed.
    let known = token(json!({"jti": "j3", "exp": NOW + 600}));
    assert!(verify(&verifier, &known).await.is_some());
}

const DISCOVERY_RETRY_INTERVAL_FOR_TESTS: i64 = crate::limits::DISCOVERY_RETRY_INTERVAL;

#[tokio::test]
async fn a_forged_token_costs_no_discovery_when_its_claims_are_wrong() {
    let host = host(&[]);
    let verifier = JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
        .fetcher(host.clone())
        .clock(Arc::new(ManualClock::new(NOW)))
        .build()
        .unwrap();
    for changes in [
        json!({"iss": "https://evil.example"}),
        json!({"aud": "https://x.example"}),
        json!({"exp": NOW - 100}),
    ] {
        assert!(verify(&verifier, &token(changes)).await.is_none());
    }
    assert_eq!(host.fetches.load(Ordering::SeqCst), 0);
}

#[test]
fn configuration_is_checked_when_built() {
    for builder in [
        JwtAccessTokenVerifier::builder("http://as.example", RESOURCE),
        JwtAccessTokenVerifier::builder(ISSUER, "mcp"),
        JwtAccessTokenVerifier::builder(ISSUER, "https://mcp.example/#f"),
        JwtAccessTokenVerifier::builder(ISSUER, RESOURCE).leeway(301),
        JwtAccessTokenVerifier::builder(ISSUER, RESOURCE).algorithms([]),
    ] {
        assert!(builder.build().is_err());
    }
}
