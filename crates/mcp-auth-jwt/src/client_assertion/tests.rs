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
