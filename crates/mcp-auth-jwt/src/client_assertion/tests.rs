use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_auth_types::{OAuthClientMetadata, TokenEndpointAuthMethod};
use serde_json::{Value, json};

use super::*;
use crate::jwks::FetchedJwks;
use crate::test_util::{TestKey, hs256, unsigned};
use crate::{KeyFetchError, SigningAlgorithm};

const AS: &str = "https://auth.example.com";
const TOKEN_ENDPOINT: &str = "https://auth.example.com/token";
const CLIENT: &str = "m2m-client";
const JWKS_URI: &str = "https://client.example.com/jwks.json";
const NOW: i64 = 1_700_000_000;

static KEY: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate(SigningAlgorithm::ES256, "c1"));
static OTHER: LazyLock<TestKey> =
    LazyLock::new(|| TestKey::generate(SigningAlgorithm::ES256, "c1"));

/// Serves the client's key set at its `jwks_uri` and counts fetches.
struct ClientKeys(AtomicUsize);

#[async_trait]
impl JwksFetcher for ClientKeys {
    async fn fetch(&self, url: &str) -> Result<FetchedJwks, KeyFetchError> {
        assert_eq!(url, JWKS_URI);
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(FetchedJwks::new(
            TestKey::jwks(&[&KEY]).to_string().into_bytes(),
            None,
        ))
    }
}

fn client(jwks: Option<Value>, jwks_uri: Option<&str>) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec![]);
    metadata.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::PrivateKeyJwt);
    metadata.jwks = jwks;
    metadata.jwks_uri = jwks_uri.map(str::to_owned);
    OAuthClientInformationFull::new(CLIENT, metadata)
}

fn inline_client() -> OAuthClientInformationFull {
    client(Some(TestKey::jwks(&[&KEY])), None)
}

fn claims() -> Value {
    json!({"iss": CLIENT, "sub": CLIENT, "aud": AS, "exp": NOW + 60, "iat": NOW, "jti": "a-1"})
}

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

fn audiences() -> Vec<String> {
    vec![AS.to_owned(), TOKEN_ENDPOINT.to_owned()]
}

async fn verify_with(
    verifier: &PrivateKeyJwtVerifier,
    client: &OAuthClientInformationFull,
    token: &str,
) -> Result<VerifiedClientAssertion, ClientAssertionError> {
    verifier
        .verify_client_assertion(client, &Assertion::new(token), &audiences(), NOW)
        .await
}

fn verifier() -> (PrivateKeyJwtVerifier, Arc<ClientKeys>) {
    let keys = Arc::new(ClientKeys(AtomicUsize::new(0)));
    (PrivateKeyJwtVerifier::with_fetcher(keys.clone()), keys)
}

#[tokio::test]
async fn an_assertion_signed_with_a_registered_key_authenticates() {
    let (verifier, fetches) = verifier();
    for aud in [json!(AS), json!(TOKEN_ENDPOINT), json!([AS])] {
        let token = KEY.sign(Some("JWT"), &with(json!({"aud": aud})));
        let verified = verify_with(&verifier, &inline_client(), &token)
            .await
            .unwrap();
        assert_eq!(verified.jti, "a-1");
        assert_eq!(verified.expires_at, NOW + 60);
        assert_eq!(verified.replay_until, NOW + 120);
    }
    // A registered key without `kid` still verifies an assertion whose header names one.
    let mut anonymous = KEY.public_jwk();
    anonymous.as_object_mut().unwrap().remove("kid");
    let kidless = client(Some(json!({"keys": [anonymous]})), None);
    verify_with(&verifier, &kidless, &KEY.sign(None, &claims()))
        .await
        .unwrap();
    // By jwks_uri: fetched once, then cached.
    let by_uri = client(None, Some(JWKS_URI));
    for _ in 0..3 {
        let token = KEY.sign(None, &claims());
        verify_with(&verifier, &by_uri, &token).await.unwrap();
    }
    assert_eq!(fetches.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn each_broken_rule_is_rejected_and_named() {
    let (verifier, _) = verifier();
    let header = json!({"alg": "ES256", "kid": "c1"});
    #[rustfmt::skip]
    let cases: Vec<(OAuthClientInformationFull, String, &str)> = vec![
        (inline_client(), unsigned(&header, &claims()), "alg"),
        (inline_client(), hs256(KEY.public_jwk().to_string().as_bytes(), &header, &claims()), "alg"),
        (inline_client(), KEY.sign(Some(crate::ID_JAG_TYP), &claims()), "typ"),
        (inline_client(), KEY.sign(None, &with(json!({"iss": "someone-else"}))), "iss"),
        (inline_client(), KEY.sign(None, &with(json!({"sub": "someone-else"}))), "sub"),
        (inline_client(), KEY.sign(None, &with(json!({"sub": null}))), "sub"),
        (inline_client(), KEY.sign(None, &with(json!({"aud": "https://other.example.com"}))), "aud"),
        (inline_client(), KEY.sign(None, &with(json!({"aud": [AS, TOKEN_ENDPOINT]}))), "aud"),
        (inline_client(), KEY.sign(None, &with(json!({"aud": "https://auth.example.com/revoke"}))), "aud"),
        (inline_client(), KEY.sign(None, &with(json!({"exp": null}))), "exp"),
        (inline_client(), KEY.sign(None, &with(json!({"exp": NOW - 61}))), "exp"),
        (inline_client(), KEY.sign(None, &with(json!({"nbf": NOW + 61}))), "nbf"),
        (inline_client(), KEY.sign(None, &with(json!({"iat": NOW + 61}))), "iat"),
        (inline_client(), KEY.sign(None, &with(json!({"jti": null}))), "jti"),
        (inline_client(), OTHER.sign(None, &claims()), "signature"),
        (inline_client(), KEY.sign_with_header(&json!({"alg": "ES256", "kid": "c9"}), &claims()), "kid"),
        (client(None, None), KEY.sign(None, &claims()), "the client has registered no jwks"),
        (client(Some(json!({"keys": []})), None), KEY.sign(None, &claims()), "the client's registered jwks"),
        (client(None, Some("http://client.example.com/jwks.json")), KEY.sign(None, &claims()), "the client's registered jwks"),
    ];
    for (client, token, rule) in cases {
        match verify_with(&verifier, &client, &token).await {
            Err(ClientAssertionError::Rejected { description }) => {
                assert!(description.starts_with(rule), "{rule}: {description}");
                assert!(!description.contains(&token), "{rule}");
            }
            other => panic!("{rule}: expected a rejection, got {other:?}"),
        }
    }
}

/// Expects a rejection whose description starts with `rule`.
async fn check_refused(
    verifier: &PrivateKeyJwtVerifier,
    client: &OAuthClientInformationFull,
    token: &str,
    rule: &str,
) {
    match verify_with(verifier, client, token).await {
        Err(ClientAssertionError::Rejected { description }) => {
            assert!(description.starts_with(rule), "{rule}: {description}");
        }
        other => panic!("{rule}: expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn iat_is_required_and_the_lifetime_is_bounded() {
    let (verifier, _) = verifier();
    let client = inline_client();
    // (claims, accepted by the default verifier, rule)
    let cases = [
        (with(json!({"iat": null})), Some("iat")),
        (with(json!({"exp": NOW + 3600})), None),
        (with(json!({"exp": NOW + 3601})), Some("exp")),
        (
            with(json!({"iat": NOW - 3000, "exp": NOW + 601})),
            Some("exp"),
        ),
        (with(json!({"exp": 32_503_680_000_i64})), Some("exp")),
    ];
    for (claims, rule) in cases {
        let token = KEY.sign(None, &claims);
        match rule {
            None => {
                verify_with(&verifier, &client, &token).await.unwrap();
            }
            Some(rule) => check_refused(&verifier, &client, &token, rule).await,
        }
    }
    let short = PrivateKeyJwtVerifier::with_fetcher(Arc::new(ClientKeys(AtomicUsize::new(0))))
        .max_lifetime(60);
    let token = KEY.sign(None, &with(json!({"exp": NOW + 61, "jti": "b"})));
    check_refused(&short, &client, &token, "exp").await;
    let token = KEY.sign(None, &with(json!({"exp": NOW + 60, "jti": "c"})));
    verify_with(&short, &client, &token).await.unwrap();
}

#[tokio::test]
async fn a_jti_longer_than_256_characters_is_refused() {
    let (verifier, _) = verifier();
    let longest = "j".repeat(256);
    let token = KEY.sign(None, &with(json!({"jti": longest})));
    let verified = verify_with(&verifier, &inline_client(), &token)
        .await
        .unwrap();
    assert_eq!(verified.jti, longest);
    let token = KEY.sign(None, &with(json!({"jti": "é".repeat(257)})));
    check_refused(&verifier, &inline_client(), &token, "jti").await;
}

static KEY_B: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate(SigningAlgorithm::ES256, "b"));

/// `count` public keys named `k0`, `k1`, … (the same key material: only the count matters).
fn many_keys(count: usize) -> Value {
    let keys: Vec<Value> = (0..count)
        .map(|i| {
            let mut jwk = KEY.public_jwk();
            jwk["kid"] = json!(format!("k{i}"));
            jwk
        })
        .collect();
    json!({ "keys": keys })
}

#[tokio::test]
async fn inline_key_sets_are_bounded_and_need_a_kid_per_key() {
    let (verifier, _) = verifier();
    let mut kidless = KEY_B.public_jwk();
    kidless.as_object_mut().unwrap().remove("kid");
    let mut padded = KEY.public_jwk();
    padded["x-padding"] = json!("p".repeat(16 * 1024));
    let mut same_kid = KEY_B.public_jwk();
    same_kid["kid"] = json!("c1");
    let refused = [
        many_keys(11),
        json!({"keys": [padded]}),
        json!({"keys": [KEY.public_jwk(), kidless]}),
        json!({"keys": [KEY.public_jwk(), same_kid]}),
    ];
    for jwks in refused {
        let client = client(Some(jwks.clone()), None);
        let token = KEY.sign(None, &claims());
        check_refused(&verifier, &client, &token, "the client's key set").await;
    }
    // Ten keys, each with its own kid, are fine.
    let mut ten = many_keys(9);
    ten["keys"].as_array_mut().unwrap().push(KEY.public_jwk());
    verify_with(
        &verifier,
        &client(Some(ten), None),
        &KEY.sign(None, &claims()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_key_is_chosen_by_kid_and_never_by_trying_each() {
    let (verifier, _) = verifier();
    let two = client(Some(TestKey::jwks(&[&KEY, &KEY_B])), None);
    let b_without_kid = KEY_B.sign_with_header(&json!({"alg": "ES256"}), &claims());
    let b_as_c1 = KEY_B.sign_with_header(&json!({"alg": "ES256", "kid": "c1"}), &claims());
    let b_as_unknown = KEY_B.sign_with_header(&json!({"alg": "ES256", "kid": "zz"}), &claims());
    check_refused(&verifier, &two, &b_without_kid, "kid").await;
    check_refused(&verifier, &two, &b_as_c1, "signature").await;
    check_refused(&verifier, &two, &b_as_unknown, "kid").await;
    verify_with(&verifier, &two, &KEY_B.sign(None, &claims()))
        .await
        .unwrap();
    // With exactly one key, no kid is needed.
    let one = client(Some(TestKey::jwks(&[&KEY_B])), None);
    verify_with(&verifier, &one, &b_without_kid).await.unwrap();
}

/// Serves a fixed body at any URL and counts fetches.
struct Serve(Vec<u8>, AtomicUsize);

#[async_trait]
impl JwksFetcher for Serve {
    async fn fetch(&self, _: &str) -> Result<FetchedJwks, KeyFetchError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(FetchedJwks::new(self.0.clone(), None))
    }
}

#[tokio::test]
async fn fetched_key_sets_are_bounded_like_inline_ones() {
    let mut padded = KEY.public_jwk();
    padded["x-padding"] = json!("p".repeat(16 * 1024));
    for body in [many_keys(11), json!({"keys": [padded]})] {
        let verifier = PrivateKeyJwtVerifier::with_fetcher(Arc::new(Serve(
            body.to_string().into_bytes(),
            AtomicUsize::new(0),
        )));
        let client = client(None, Some(JWKS_URI));
        check_refused(
            &verifier,
            &client,
            &KEY.sign(None, &claims()),
            "the client's key set",
        )
        .await;
    }
}

#[tokio::test]
async fn claims_are_checked_before_any_key_is_fetched_or_parsed() {
    let serve = Arc::new(Serve(
        TestKey::jwks(&[&KEY]).to_string().into_bytes(),
        AtomicUsize::new(0),
    ));
    let verifier = PrivateKeyJwtVerifier::with_fetcher(serve.clone());
    let by_uri = client(None, Some(JWKS_URI));
    // An oversized inline set is not even counted when a claim is wrong.
    let oversized = client(Some(many_keys(11)), None);
    let forged = [
        (with(json!({"aud": "https://other.example.com"})), "aud"),
        (with(json!({"exp": NOW - 120})), "exp"),
        (with(json!({"iat": null})), "iat"),
        (with(json!({"exp": NOW + 7200})), "exp"),
        (with(json!({"jti": "j".repeat(300)})), "jti"),
    ];
    for (claims, rule) in forged {
        let token = OTHER.sign(None, &claims);
        check_refused(&verifier, &by_uri, &token, rule).await;
        check_refused(&verifier, &oversized, &token, rule).await;
    }
    assert_eq!(serve.1.load(Ordering::SeqCst), 0, "no key set was fetched");
}

#[test]
fn parsed_inline_key_sets_are_cached_by_their_bytes_and_bounded() {
    let (verifier, _) = verifier();
    let jwks = TestKey::jwks(&[&KEY]);
    let first = verifier.inline_keys(&jwks).unwrap();
    let again = verifier.inline_keys(&jwks.clone()).unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second lookup is not parsed again"
    );
    let other = verifier.inline_keys(&TestKey::jwks(&[&KEY_B])).unwrap();
    assert!(!Arc::ptr_eq(&first, &other));
    for i in 0..crate::limits::MAX_CACHED_KEY_SETS + 8 {
        let mut jwk = KEY.public_jwk();
        jwk["kid"] = json!(format!("rotating-{i}"));
        verifier.inline_keys(&json!({"keys": [jwk]})).unwrap();
    }
    let cached = verifier.inline_sets.lock().unwrap().len();
    assert!(cached <= crate::limits::MAX_CACHED_KEY_SETS, "{cached}");
}
