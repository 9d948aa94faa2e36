use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use mcp_auth_core::ManualClock;
use serde_json::json;

use super::*;
use crate::FetchedJwks;
use crate::test_util::{TestKey, hs256, unsigned};

const ISSUER: &str = "https://idp.example";
const CLIENT: &str = "mcp-auth";
const NONCE: &str = "n-0S6_WzA2Mj";
const NOW: i64 = 1_700_000_000;

static KEY: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate(SigningAlgorithm::RS256, "k1"));
static ROTATED: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::generate(SigningAlgorithm::ES256, "k2"));

fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "248289761001", "nonce": NONCE,
        "iat": NOW - 5, "exp": NOW + 600, "email": "alice@acme.example", "email_verified": true,
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
    KEY.sign(Some("JWT"), &claims(changes))
}

fn validator() -> IdTokenValidator {
    IdTokenValidator::builder(ISSUER, CLIENT)
        .jwks(JwksSource::Inline(TestKey::jwks(&[&KEY])))
        .clock(Arc::new(ManualClock::new(NOW)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_valid_id_token_names_its_subject_and_claims() {
    let claims = validator()
        .validate(&token(json!({})), NONCE)
        .await
        .unwrap();
    assert_eq!(claims.subject(), "248289761001");
    assert_eq!(claims.string("email"), Some("alice@acme.example"));
    assert!(claims.email_verified());
    // No typ at all is an ID token too (most providers send none or JWT).
    let untyped = KEY.sign(None, &claims_value());
    assert!(validator().validate(&untyped, NONCE).await.is_ok());
    // Several audiences with azp naming this client.
    let multi = token(json!({"aud": [CLIENT, "other"], "azp": CLIENT}));
    assert!(validator().validate(&multi, NONCE).await.is_ok());
}

fn claims_value() -> Value {
    claims(json!({}))
}

#[tokio::test]
async fn every_rule_refuses_what_breaks_it() {
    let validator = validator();
    let with = |changes: Value| token(changes);
    let header = |alg: &str, typ: &str| json!({"alg": alg, "typ": typ, "kid": "k1"});
    #[rustfmt::skip]
    let refused: Vec<(&str, String, Rejection)> = vec![
        ("another issuer", with(json!({"iss": "https://evil.example"})), Rejection::UntrustedIssuer),
        ("issuer with a slash", with(json!({"iss": "https://idp.example/"})), Rejection::UntrustedIssuer),
        ("another audience", with(json!({"aud": "other-client"})), Rejection::ClientMismatch),
        ("no audience", with(json!({"aud": null})), Rejection::Missing { claim: "aud" }),
        ("several audiences, no azp", with(json!({"aud": [CLIENT, "other"]})), Rejection::Missing { claim: "azp" }),
        ("azp another client", with(json!({"azp": "other"})), Rejection::ClientMismatch),
        ("a non-string audience", with(json!({"aud": [CLIENT, 5]})), Rejection::Malformed),
        ("expired", with(json!({"exp": NOW - 61})), Rejection::Expired),
        ("issued in the future", with(json!({"iat": NOW + 61})), Rejection::IssuedInFuture),
        ("no iat", with(json!({"iat": null})), Rejection::Missing { claim: "iat" }),
        ("stale", with(json!({"iat": NOW - 600 - 61})), Rejection::Stale),
        ("no nonce", with(json!({"nonce": null})), Rejection::Missing { claim: "nonce" }),
        ("another nonce", with(json!({"nonce": "n-other"})), Rejection::Nonce),
        ("no sub", with(json!({"sub": null})), Rejection::Missing { claim: "sub" }),
        ("sub too long", with(json!({"sub": "x".repeat(256)})), Rejection::Missing { claim: "sub" }),
        ("an access token", KEY.sign(Some("at+jwt"), &claims_value()), Rejection::Type { expected: "JWT" }),
        ("alg none", unsigned(&json!({"alg": "none"}), &claims_value()), Rejection::Algorithm),
        ("HS256 with a guessable secret", hs256(b"client-secret", &header("HS256", "JWT"), &claims_value()), Rejection::Algorithm),
        ("signed by a key not the provider's", ROTATED.sign_with_header(&header("ES256", "JWT"), &claims_value()), Rejection::NoUsableKey),
        ("not a JWS", "a.b".to_owned(), Rejection::Malformed),
        ("oversized", "a".repeat(MAX_ID_TOKEN_BYTES + 1), Rejection::Malformed),
    ];
    for (case, token, expected) in refused {
        match validator.validate(&token, NONCE).await {
            Err(IdTokenError::Rejected(rejection)) => assert_eq!(rejection, expected, "{case}"),
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let mut forged = token(json!({}));
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let tampered = {
        // Another subject under the original signature.
        let good = token(json!({}));
        let parts: Vec<&str> = good.split('.').collect();
        let other = token(json!({"sub": "mallory"}));
        let payload = other.split('.').nth(1).unwrap().to_owned();
        format!("{}.{}.{}", parts[0], payload, parts[2])
    };
    for token in [forged, tampered] {
        assert!(matches!(
            validator().validate(&token, NONCE).await,
            Err(IdTokenError::Rejected(Rejection::Signature))
        ));
    }
}

/// A provider whose key set changes: first only [`KEY`], then [`KEY`] and [`ROTATED`].
struct RotatingProvider {
    fetches: AtomicUsize,
}

#[async_trait]
impl JwksFetcher for RotatingProvider {
    async fn fetch(&self, url: &str) -> Result<FetchedJwks, KeyFetchError> {
        let body = if url.ends_with("/.well-known/openid-configuration") {
            json!({"issuer": ISSUER, "jwks_uri": "https://idp.example/jwks"})
        } else if url == "https://idp.example/jwks" {
            match self.fetches.fetch_add(1, Ordering::SeqCst) {
                0 => TestKey::jwks(&[&KEY]),
                _ => TestKey::jwks(&[&KEY, &ROTATED]),
            }
        } else {
            return Err(KeyFetchError::Status(404));
        };
        Ok(FetchedJwks::new(body.to_string().into_bytes(), None))
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_discovered_keys_once() {
    let provider = Arc::new(RotatingProvider {
        fetches: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new(NOW));
    let validator = IdTokenValidator::builder(ISSUER, CLIENT)
        .fetcher(Arc::clone(&provider) as Arc<dyn JwksFetcher>)
        .clock(clock.clone())
        .build()
        .unwrap();
    assert!(validator.validate(&token(json!({})), NONCE).await.is_ok());
    // The provider rotates to a new key: the first token under it makes the validator
    // fetch the key set again, and it is accepted.
    let rotated = ROTATED.sign(Some("JWT"), &claims_value());
    clock.advance(120);
    let claims = validator.validate(&rotated, NONCE).await;
    assert!(claims.is_ok(), "{claims:?}");
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn keys_that_cannot_be_had_are_unavailable_not_a_refusal() {
    struct Down;
    #[async_trait]
    impl JwksFetcher for Down {
        async fn fetch(&self, _url: &str) -> Result<FetchedJwks, KeyFetchError> {
            Err(KeyFetchError::Status(503))
        }
    }
    let validator = IdTokenValidator::builder(ISSUER, CLIENT)
        .fetcher(Arc::new(Down))
        .clock(Arc::new(ManualClock::new(NOW)))
        .build()
        .unwrap();
    assert!(matches!(
        validator.validate(&token(json!({})), NONCE).await,
        Err(IdTokenError::Keys(_))
    ));
}

#[test]
fn the_configuration_is_checked() {
    assert!(
        IdTokenValidator::builder("not a url", CLIENT)
            .build()
            .is_err()
    );
    assert!(IdTokenValidator::builder(ISSUER, "").build().is_err());
    assert!(
        IdTokenValidator::builder(ISSUER, CLIENT)
            .leeway(301)
            .build()
            .is_err()
    );
    assert!(
        IdTokenValidator::builder(ISSUER, CLIENT)
            .algorithms([])
            .build()
            .is_err()
    );
}

#[test]
fn email_verified_reads_booleans_and_the_strings_some_providers_send() {
    let verified = |value: Value| IdTokenClaims {
        subject: "s".to_owned(),
        claims: json!({"email_verified": value})
            .as_object()
            .unwrap()
            .clone(),
    };
    assert!(verified(json!(true)).email_verified());
    assert!(verified(json!("true")).email_verified());
    assert!(!verified(json!(false)).email_verified());
    assert!(!verified(json!("yes")).email_verified());
    assert!(!verified(Value::Null).email_verified());
}
