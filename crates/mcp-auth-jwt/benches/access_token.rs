//! A resource server's check of a JWT access token (RFC 9068), beside the bare signature check
//! of the same token, in one run:
//!
//! - `signature (ES256)`: `jsonwebtoken`'s ES256 signature check alone (the baseline);
//! - `verify, uncached`: `JwtAccessTokenVerifier::verify_token` with its cache off — parsing,
//!   every claim rule, the key lookup and the signature on the verification pool;
//! - `verify, cached`: `verify_token_now` for a token verified before (a hash and a lookup).
//!
//! Issue 16's goal: uncached at most 1.2× the bare signature. Run with
//! `cargo bench -p mcp-auth-jwt --features test-util --bench access_token`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcp_auth_core::TokenVerifier;
use mcp_auth_core::types::AccessTokenSecret;
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_jwt::{JwksSource, JwtAccessTokenVerifier, SigningAlgorithm};
use serde_json::json;

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn verifier(key: &TestKey, capacity: usize) -> JwtAccessTokenVerifier {
    JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
        .jwks(JwksSource::Inline(TestKey::jwks(&[key])))
        .cache_capacity(capacity)
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let key = TestKey::generate(SigningAlgorithm::ES256, "as-1");
    let now = now();
    let token = key.sign(
        Some("at+jwt"),
        &json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "app",
            "scope": "mcp:tools", "iat": now, "exp": now + 3600, "jti": "bench",
        }),
    );
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let decoding =
        jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(key.public_jwk()).unwrap())
            .unwrap();
    let secret = AccessTokenSecret::new(token.clone());

    let mut group = c.benchmark_group("access_token");
    group.throughput(Throughput::Elements(1));
    group.bench_function("signature (ES256)", |b| {
        b.iter(|| {
            assert!(
                jsonwebtoken::crypto::verify(
                    signature,
                    signing_input.as_bytes(),
                    &decoding,
                    jsonwebtoken::Algorithm::ES256,
                )
                .unwrap()
            );
        });
    });
    let uncached = verifier(&key, 0);
    group.bench_function("verify, uncached", |b| {
        b.to_async(&runtime)
            .iter(|| async { uncached.verify_token(&secret).await.unwrap().unwrap() });
    });
    let cached = verifier(&key, 1000);
    runtime
        .block_on(cached.verify_token(&secret))
        .unwrap()
        .unwrap();
    group.bench_function("verify, cached", |b| {
        b.iter(|| cached.verify_token_now(&secret).unwrap().unwrap().unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
