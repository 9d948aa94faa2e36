//! ID-JAG exchanges per second beside raw verification of the same JWT, in one run:
//!
//! - `signature`: `jsonwebtoken`'s RS256 signature check alone (the baseline);
//! - `validate`: `IdJagValidator` — header, key lookup, signature and every claim rule;
//! - `exchange`: `StoreProvider::exchange_identity_assertion` on `MemoryStore` — validation,
//!   the `jti` replay record, scope and audience selection and token minting.
//!
//! Criterion prints each one's time per operation; their ratio is the cost of everything
//! around the signature. Run with `cargo bench -p mcp-auth-jwt`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mcp_auth_core::types::{
    Assertion, GrantType, IdentityAssertionParams, OAuthClientInformationFull, OAuthClientMetadata,
};
use mcp_auth_core::{
    IdentityAssertionValidator, MemoryStore, OAuthAuthorizationServerProvider, StoreProvider,
};
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_jwt::{ID_JAG_TYP, IdJagValidator, JwksSource, SigningAlgorithm};
use serde_json::json;

const AS: &str = "https://auth.example.com";
const IDP: &str = "https://idp.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const CLIENT: &str = "enterprise-client";

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn id_jag(key: &TestKey, jti: u64) -> String {
    let now = now();
    key.sign(
        Some(ID_JAG_TYP),
        &json!({
            "iss": IDP, "sub": "alice", "aud": AS, "client_id": CLIENT, "jti": format!("{jti}"),
            "iat": now, "exp": now + 3600, "resource": RESOURCE, "scope": "read write",
        }),
    )
}

fn validator(key: &TestKey) -> IdJagValidator {
    IdJagValidator::builder(AS)
        .resource(RESOURCE)
        .trusted_issuer(IDP, JwksSource::Inline(TestKey::jwks(&[key])))
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let key = TestKey::generate(SigningAlgorithm::RS256, "idp-1");
    let mut metadata = OAuthClientMetadata::new(vec![]);
    metadata.scope = Some("read write".into());
    metadata.grant_types = vec![GrantType::JwtBearer];
    let client = OAuthClientInformationFull::new(CLIENT, metadata);

    let token = id_jag(&key, 0);
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let decoding =
        jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(key.public_jwk()).unwrap())
            .unwrap();

    let mut group = c.benchmark_group("id_jag");
    group.throughput(Throughput::Elements(1));
    group.bench_function("signature", |b| {
        b.iter(|| {
            assert!(
                jsonwebtoken::crypto::verify(
                    signature,
                    signing_input.as_bytes(),
                    &decoding,
                    jsonwebtoken::Algorithm::RS256,
                )
                .unwrap()
            );
        });
    });

    let validator = validator(&key);
    let assertion = Assertion::new(token.clone());
    group.bench_function("validate", |b| {
        b.to_async(&runtime).iter(|| async {
            validator
                .validate_identity_assertion(&client, &assertion, now())
                .await
                .unwrap()
        });
    });

    let provider = StoreProvider::builder(MemoryStore::new(), AS)
        .identity_assertion_validator(Arc::new(validator))
        .build()
        .unwrap();
    let mut jti = 1;
    group.bench_function("exchange", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                jti += 1;
                IdentityAssertionParams::new(Assertion::new(id_jag(&key, jti)))
            },
            |params| async {
                provider
                    .exchange_identity_assertion(&client, params)
                    .await
                    .unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
