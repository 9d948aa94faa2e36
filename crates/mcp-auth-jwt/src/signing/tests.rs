use std::sync::Arc;

use mcp_auth_core::types::AccessTokenSecret;
use mcp_auth_core::{ManualClock, MemoryStore, TokenVerifier};
use serde_json::Value;

use super::*;
use crate::signing::key::PrivateKey;
use crate::{JwksSource, JwtAccessTokenVerifier};

const ISSUER: &str = "https://as.example";
const RESOURCE: &str = "https://mcp.example/mcp";
const START: i64 = 1_700_000_000;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn claims<'a>(
    scopes: &'a [String],
    issued_at: i64,
    audience: Option<&'a str>,
) -> AccessTokenClaims<'a> {
    AccessTokenClaims {
        issuer: ISSUER,
        subject: "alice",
        audience,
        client_id: "app",
        scopes,
        issued_at,
        expires_at: issued_at + HOUR,
        jwt_id: "5f1c-jti",
    }
}

fn builder(store: &Arc<MemoryStore>, clock: &Arc<ManualClock>) -> JwtAccessTokenSignerBuilder {
    JwtAccessTokenSigner::builder(Arc::clone(store) as Arc<dyn SigningKeyStore>, RESOURCE)
        .token_lifetime(Duration::from_secs(HOUR as u64))
        .clock(Arc::clone(clock) as Arc<dyn Clock>)
}

/// A verifier of `issuer`'s tokens over the key set the signer publishes now, at `now`.
fn verifier_of(signer: &JwtAccessTokenSigner, now: i64) -> JwtAccessTokenVerifier {
    let key_set: Value = serde_json::from_str(&signer.key_set()).unwrap();
    JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
        .jwks(JwksSource::Inline(key_set))
        .algorithms(crate::SUPPORTED_ALGORITHMS)
        .clock(Arc::new(ManualClock::new(now)))
        .build()
        .unwrap()
}

async fn accepted(verifier: &JwtAccessTokenVerifier, token: &str) -> bool {
    verifier
        .verify_token(&AccessTokenSecret::new(token))
        .await
        .unwrap()
        .is_some()
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn tokens_of_every_algorithm_carry_the_rfc_9068_claims_and_verify() {
    for algorithm in [
        SigningAlgorithm::ES256,
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::RS256,
        SigningAlgorithm::PS256,
        SigningAlgorithm::ES384,
    ] {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(START));
        let signer = builder(&store, &clock)
            .algorithm(algorithm)
            .load()
            .await
            .unwrap();
        let scopes = vec!["mcp:tools".to_owned(), "read".to_owned()];
        let token = signer.sign(&claims(&scopes, START, None)).unwrap();
        let header = decode_part(&token, 0);
        let (_, kid) = signer.signing_kid().unwrap();
        assert_eq!(header["alg"], algorithm.as_str());
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["kid"], kid.as_str());
        let payload = decode_part(&token, 1);
        assert_eq!(
            payload,
            serde_json::json!({
                "iss": ISSUER, "sub": "alice", "aud": RESOURCE, "client_id": "app",
                "scope": "mcp:tools read", "iat": START, "exp": START + HOUR, "jti": "5f1c-jti",
            }),
            "{algorithm:?}"
        );
        let verifier = verifier_of(&signer, START + 1);
        assert!(accepted(&verifier, &token).await, "{algorithm:?} verifies");
        // One altered byte of the signature breaks it.
        let mut forged = token.clone().into_bytes();
        let at = forged.len() - 2;
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        assert!(!accepted(&verifier, &String::from_utf8(forged).unwrap()).await);
        // The published key is public only.
        let key_set: Value = serde_json::from_str(&signer.key_set()).unwrap();
        let jwk = &key_set["keys"][0];
        assert_eq!(jwk["kid"], kid.as_str());
        // The kid is the RFC 7638 thumbprint, as jsonwebtoken computes it independently.
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let thumbprint = parsed
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap();
        assert_eq!(thumbprint, kid, "{algorithm:?}");
        assert_eq!(jwk["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                jwk.get(private).is_none(),
                "{algorithm:?} publishes {private}"
            );
        }
    }
}

#[tokio::test]
async fn the_resource_is_the_audience_and_scopeless_tokens_have_no_scope_claim() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    let signer = builder(&store, &clock).load().await.unwrap();
    let token = signer
        .sign(&claims(&[], START, Some("https://other.example/mcp")))
        .unwrap();
    let payload = decode_part(&token, 1);
    assert_eq!(payload["aud"], "https://other.example/mcp");
    assert!(payload.get("scope").is_none());
    // Our own resource refuses a token for another one.
    assert!(!accepted(&verifier_of(&signer, START), &token).await);
}

#[tokio::test]
async fn instances_sharing_a_store_sign_with_the_same_key() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    let (first, second) = tokio::join!(
        builder(&store, &clock).load(),
        builder(&store, &clock).load()
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    second.refresh().await.unwrap();
    first.refresh().await.unwrap();
    assert_eq!(
        store.signing_keys().await.unwrap().len(),
        1,
        "one first key"
    );
    assert_eq!(first.signing_kid(), second.signing_kid());
    let token = first.sign(&claims(&[], START, None)).unwrap();
    assert!(accepted(&verifier_of(&second, START), &token).await);
}

#[tokio::test]
async fn rotation_publishes_ahead_keeps_old_tokens_valid_and_deletes_retired_keys() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    let signer = builder(&store, &clock)
        .rotation_period(Duration::from_secs(DAY as u64))
        .load()
        .await
        .unwrap();
    let (first_generation, first_kid) = signer.signing_kid().unwrap();
    assert_eq!(first_generation, 1);
    let turn = START + DAY;

    // An hour before its turn the successor is published, but does not sign yet.
    clock.set(turn - HOUR);
    signer.refresh().await.unwrap();
    let published = |signer: &JwtAccessTokenSigner| -> Vec<String> {
        let key_set: Value = serde_json::from_str(&signer.key_set()).unwrap();
        key_set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|jwk| jwk["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(published(&signer).len(), 2);
    assert_eq!(signer.signing_kid().unwrap().1, first_kid);
    let old_token = signer.sign(&claims(&[], turn - 1, None)).unwrap();

    // At its turn the new key signs; the key set holds both.
    clock.set(turn);
    let new_token = signer.sign(&claims(&[], turn, None)).unwrap();
    let (second_generation, second_kid) = signer.signing_kid().unwrap();
    assert_eq!(second_generation, 2);
    assert_ne!(second_kid, first_kid);
    assert_eq!(decode_part(&new_token, 0)["kid"], second_kid.as_str());
    assert_eq!(published(&signer), [first_kid.clone(), second_kid.clone()]);
    let verifier = verifier_of(&signer, turn + 10);
    assert!(
        accepted(&verifier, &old_token).await,
        "the old key's token is valid until it expires"
    );
    assert!(accepted(&verifier, &new_token).await);

    // The old key stays published until its last token has expired, then it is deleted.
    clock.set(turn + HOUR + rotation::CLOCK_SLACK - 1);
    signer.refresh().await.unwrap();
    assert_eq!(published(&signer).len(), 2);
    clock.set(turn + HOUR + rotation::CLOCK_SLACK);
    signer.refresh().await.unwrap();
    assert_eq!(published(&signer), [second_kid]);
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sealed_keys_need_the_secret_and_never_reach_the_store_in_the_clear() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    let signer = builder(&store, &clock)
        .sealing_key(SealingKey::from_secret(secret).unwrap())
        .load()
        .await
        .unwrap();
    let stored = store.signing_keys().await.unwrap();
    assert!(sealing::is_sealed(&stored[0].private_key));
    assert!(!format!("{:?}", stored[0]).contains(&stored[0].private_key));

    // Another instance with the same secret signs; one without it, or with another, refuses to
    // start instead of serving a token endpoint that cannot sign.
    let same = builder(&store, &clock)
        .sealing_key(SealingKey::from_secret(secret).unwrap())
        .load()
        .await
        .unwrap();
    assert_eq!(same.signing_kid(), signer.signing_kid());
    let none = builder(&store, &clock).load().await.unwrap_err();
    assert!(matches!(none, SigningKeyError::Unreadable { .. }), "{none}");
    let other = builder(&store, &clock)
        .sealing_key(SealingKey::from_secret(b"another secret of thirty-two bytes!").unwrap())
        .load()
        .await
        .unwrap_err();
    assert!(other.to_string().contains("does not open"), "{other}");
}

#[tokio::test]
async fn a_new_algorithm_is_published_ahead_then_signs() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    builder(&store, &clock).load().await.unwrap();
    let signer = builder(&store, &clock)
        .algorithm(SigningAlgorithm::EdDSA)
        .load()
        .await
        .unwrap();
    let token = signer.sign(&claims(&[], START, None)).unwrap();
    assert_eq!(
        decode_part(&token, 0)["alg"],
        "ES256",
        "the old key signs until the new one is known"
    );
    clock.set(START + HOUR);
    let token = signer.sign(&claims(&[], START + HOUR, None)).unwrap();
    assert_eq!(decode_part(&token, 0)["alg"], "EdDSA");
}

#[tokio::test]
async fn bad_schedules_are_refused() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    let error = builder(&store, &clock)
        .rotation_period(Duration::from_secs(60))
        .load()
        .await
        .unwrap_err();
    assert!(matches!(error, SigningKeyError::Config(_)));
    assert!(
        store.signing_keys().await.unwrap().is_empty(),
        "nothing stored"
    );
}

/// A record as someone with write access to the store but without the secret could write:
/// a fresh key of theirs, stored unsealed, or with a public JWK that is not its key's.
fn injected(generation: i64, activates_at: i64, public_jwk: Option<String>) -> SigningKeyRecord {
    let (private, pkcs8) = PrivateKey::generate(SigningAlgorithm::ES256).unwrap();
    let kid = private.thumbprint();
    let jwk = public_jwk.unwrap_or_else(|| {
        serde_json::Value::Object(private.public_jwk(SigningAlgorithm::ES256, &kid)).to_string()
    });
    SigningKeyRecord::new(
        generation,
        kid.clone(),
        "ES256".to_owned(),
        jwk,
        sealing::store(None, &kid, &pkcs8).unwrap(),
        activates_at,
        activates_at,
    )
}

fn published_kids(signer: &JwtAccessTokenSigner) -> Vec<String> {
    let key_set: Value = serde_json::from_str(&signer.key_set()).unwrap();
    key_set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|jwk| jwk["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn with_a_secret_an_unsealed_record_is_neither_published_nor_used() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    let signer = builder(&store, &clock)
        .sealing_key(SealingKey::from_secret(secret).unwrap())
        .load()
        .await
        .unwrap();
    let (_, ours) = signer.signing_kid().unwrap();
    let theirs = injected(2, START - 1, None);
    assert!(store.insert_signing_key(&theirs).await.unwrap());
    signer.refresh().await.unwrap();
    assert_eq!(
        published_kids(&signer),
        std::slice::from_ref(&ours),
        "never in the key set"
    );
    let token = signer.sign(&claims(&[], START, None)).unwrap();
    assert_eq!(decode_part(&token, 0)["kid"], ours.as_str(), "never signs");
}

#[tokio::test]
async fn the_published_key_is_the_stored_private_keys_own_and_a_false_kid_is_refused() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    // A record whose public JWK is someone else's key: the key set shows the private key's.
    let (other, _) = PrivateKey::generate(SigningAlgorithm::ES256).unwrap();
    let foreign_jwk =
        serde_json::Value::Object(other.public_jwk(SigningAlgorithm::ES256, "foreign")).to_string();
    let record = injected(1, START, Some(foreign_jwk));
    assert!(store.insert_signing_key(&record).await.unwrap());
    let signer = builder(&store, &clock).load().await.unwrap();
    let key_set: Value = serde_json::from_str(&signer.key_set()).unwrap();
    let published = &key_set["keys"][0];
    assert_eq!(published["kid"], record.kid.as_str());
    let stored: Value = serde_json::from_str(&record.public_jwk).unwrap();
    assert_ne!(
        published["x"], stored["x"],
        "derived, not read from the record"
    );
    let token = signer.sign(&claims(&[], START, None)).unwrap();
    assert!(accepted(&verifier_of(&signer, START), &token).await);

    // A newest record whose kid is not its key's thumbprint: refused, and loading fails
    // rather than signing with an older key beside it.
    let mut lying = injected(2, START, None);
    lying.kid = "not-the-thumbprint".to_owned();
    assert!(store.insert_signing_key(&lying).await.unwrap());
    let error = builder(&store, &clock).load().await.unwrap_err();
    assert!(error.to_string().contains("thumbprint"), "{error}");
}

#[tokio::test]
async fn setting_a_secret_replaces_unsealed_keys_with_a_sealed_one() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    let unsealed = builder(&store, &clock).load().await.unwrap();
    let (_, old) = unsealed.signing_kid().unwrap();
    let sealed = builder(&store, &clock)
        .sealing_key(SealingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap())
        .load()
        .await
        .unwrap();
    let (generation, new) = sealed.signing_kid().unwrap();
    assert_eq!(generation, 2);
    assert_ne!(new, old);
    assert_eq!(published_kids(&sealed), [new]);
    // The ignored unsealed key is kept (an instance without the secret may still sign with it)
    // until its last token has expired, then deleted like any retired key.
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(sealing::is_sealed(&keys[1].private_key));
    clock.set(START + HOUR + rotation::CLOCK_SLACK);
    sealed.refresh().await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(sealing::is_sealed(&keys[0].private_key));
}
