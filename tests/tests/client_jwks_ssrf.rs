//! A client's `jwks_uri` is a URL the client chose, so `PrivateKeyJwtVerifier` fetches it with
//! the SSRF-hardened `VettedFetcher`: a `jwks_uri` that is, or resolves to, a loopback, private
//! or other special-use address is refused with `invalid_client` before any connection (and
//! without naming the address), and reached only when that range is allow-listed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod https_host;

use std::sync::{Arc, LazyLock};

use mcp_auth_core::types::{
    Assertion, OAuthClientInformationFull, OAuthClientMetadata, TokenEndpointAuthMethod,
};
use mcp_auth_core::{ClientAssertionError, ClientAssertionVerifier};
use mcp_auth_fetch::StaticResolver;
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_jwt::{PrivateKeyJwtVerifier, SigningAlgorithm, VettedFetcher};
use serde_json::json;

use https_host::HttpsHost;

const AS: &str = "https://auth.example.com";
const CLIENT: &str = "jwks-uri-client";
const NOW: i64 = 1_700_000_000;

static KEY: LazyLock<TestKey> = LazyLock::new(|| TestKey::generate(SigningAlgorithm::ES256, "k1"));

/// Names the test controls; `keys.test` is the loopback host.
fn names() -> Arc<StaticResolver> {
    let table: &[(&str, &[&str])] = &[
        ("keys.test", &["127.0.0.1"]),
        ("loopback6.test", &["::1"]),
        ("private10.test", &["10.1.2.3"]),
        ("private192.test", &["192.168.0.10"]),
        ("metadata.test", &["169.254.169.254"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
        ("ula.test", &["fd00::1"]),
        // One public and one private address: the private one refuses the whole name.
        ("mixed.test", &["8.8.8.8", "10.0.0.1"]),
    ];
    Arc::new(StaticResolver::new(table.iter().map(|(name, addrs)| {
        (*name, addrs.iter().map(|a| a.parse().unwrap()).collect())
    })))
}

fn client(jwks_uri: &str) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec![]);
    metadata.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::PrivateKeyJwt);
    metadata.jwks_uri = Some(jwks_uri.to_owned());
    OAuthClientInformationFull::new(CLIENT, metadata)
}

fn assertion() -> Assertion {
    Assertion::new(KEY.sign(
        None,
        &json!({"iss": CLIENT, "sub": CLIENT, "aud": AS, "exp": NOW + 60, "iat": NOW,
                "jti": format!("jti-{}", rand::random::<u64>())}),
    ))
}

fn verifier(
    host: &HttpsHost,
    allow: Option<&str>,
    names: Option<Arc<StaticResolver>>,
) -> PrivateKeyJwtVerifier {
    let mut fetcher = VettedFetcher::builder()
        .root_certificates_pem(host.pem.as_bytes())
        .unwrap();
    if let Some(range) = allow {
        fetcher = fetcher.allow_address_range(range).unwrap();
    }
    if let Some(names) = names {
        fetcher = fetcher.name_resolver(names);
    }
    PrivateKeyJwtVerifier::with_fetcher(Arc::new(fetcher.build().unwrap()))
}

async fn verify(
    verifier: &PrivateKeyJwtVerifier,
    jwks_uri: &str,
) -> Result<(), ClientAssertionError> {
    verifier
        .verify_client_assertion(&client(jwks_uri), &assertion(), &[AS.to_owned()], NOW)
        .await
        .map(|_| ())
}

/// Refused as the client's fault (`invalid_client`), without naming the address.
fn assert_refused(result: Result<(), ClientAssertionError>, jwks_uri: &str) {
    match result {
        Err(ClientAssertionError::Rejected { description }) => {
            assert!(
                description.contains("not usable"),
                "{jwks_uri}: {description}"
            );
            for leak in ["127.", "10.", "192.168", "169.254", "::1", "fd00"] {
                assert!(!description.contains(leak), "{jwks_uri}: {description}");
            }
        }
        other => panic!("{jwks_uri}: expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_jwks_uri_on_special_use_addresses_is_refused_as_literals_and_through_names() {
    let host = HttpsHost::start().await;
    host.serve("/jwks.json", &TestKey::jwks(&[&KEY]));
    let verifier = verifier(&host, None, Some(names()));
    let port = host.port;
    let mut uris: Vec<String> = [
        "keys.test",
        "loopback6.test",
        "private10.test",
        "private192.test",
        "metadata.test",
        "mapped.test",
        "ula.test",
        "mixed.test",
        "127.0.0.1",
        "[::1]",
        "10.0.0.1",
        "169.254.169.254",
        "[::ffff:127.0.0.1]",
    ]
    .iter()
    .map(|h| format!("https://{h}:{port}/jwks.json"))
    .collect();
    uris.push(format!("http://keys.test:{port}/jwks.json"));
    for uri in &uris {
        assert_refused(verify(&verifier, uri).await, uri);
        // Within the minute the refusal is remembered, not turned into a server error.
        assert_refused(verify(&verifier, uri).await, uri);
    }
    assert_eq!(host.hits("/jwks.json"), 0, "nothing was ever requested");
}

#[tokio::test]
async fn a_name_the_system_resolves_to_loopback_is_refused() {
    let host = HttpsHost::start().await;
    host.serve("/jwks.json", &TestKey::jwks(&[&KEY]));
    // The platform's resolver: `localhost` is loopback.
    let verifier = verifier(&host, None, None);
    let uri = host.url("localhost", "/jwks.json");
    assert_refused(verify(&verifier, &uri).await, &uri);
    assert_eq!(host.hits("/jwks.json"), 0);
}

#[tokio::test]
async fn an_allow_listed_jwks_host_is_reached_by_name_and_as_a_literal() {
    let host = HttpsHost::start().await;
    host.serve("/jwks.json", &TestKey::jwks(&[&KEY]));
    let allowed = verifier(&host, Some("127.0.0.1/32"), Some(names()));
    for uri in [
        host.url("keys.test", "/jwks.json"),
        host.url("127.0.0.1", "/jwks.json"),
    ] {
        verify(&allowed, &uri).await.unwrap();
    }
    assert_eq!(host.hits("/jwks.json"), 2, "each jwks_uri fetched once");
    // The allow-list admits its range only: other private addresses stay refused.
    let uri = host.url("private10.test", "/jwks.json");
    assert_refused(verify(&allowed, &uri).await, &uri);
    // A key the client never published does not verify, even from an allowed host.
    let forger = TestKey::generate(SigningAlgorithm::ES256, "k1");
    let forged = Assertion::new(forger.sign(
        None,
        &json!({"iss": CLIENT, "sub": CLIENT, "aud": AS, "exp": NOW + 60, "iat": NOW, "jti": "forged"}),
    ));
    let result = allowed
        .verify_client_assertion(
            &client(&host.url("keys.test", "/jwks.json")),
            &forged,
            &[AS.to_owned()],
            NOW,
        )
        .await;
    assert!(
        matches!(&result, Err(ClientAssertionError::Rejected { description }) if description.contains("signature")),
        "{result:?}"
    );
}
