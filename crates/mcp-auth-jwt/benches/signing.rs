//! What a JWT access token costs the authorization server to sign, beside `jsonwebtoken`'s
//! `encode` of the same claims with the same ES256 key (the baseline), in one run:
//!
//! - `jsonwebtoken encode (ES256)`: header and claims serialised, the key parsed and the
//!   signature made by `jsonwebtoken` (which re-parses the PKCS#8 key on every call);
//! - `JwtAccessTokenSigner::sign (ALG)`: our signer, its header pre-encoded and its key
//!   parsed once, for ES256, EdDSA and RS256.
//!
//! Run with `cargo bench -p mcp-auth-jwt --bench signing`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_auth_core::{
    AccessTokenClaims, AccessTokenSigner, MemoryStore, SigningKeyStore, StorageError,
};
use mcp_auth_jwt::{JwtAccessTokenSigner, SigningAlgorithm};

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";

fn claims(scopes: &[String]) -> AccessTokenClaims<'_> {
    AccessTokenClaims {
        issuer: ISSUER,
        subject: "alice",
        audience: Some(RESOURCE),
        client_id: "app",
        scopes,
        issued_at: 1_900_000_000,
        expires_at: 1_900_003_600,
        jwt_id: "0b5e8c1e-8a61-4a5c-9d0e-3f2a7c9b1d44",
    }
}

/// The stored PKCS#8 key of the signer's only key (stored unsealed: `pkcs8:` + base64url).
async fn stored_pkcs8(store: &MemoryStore) -> Result<Vec<u8>, StorageError> {
    use base64::Engine as _;
    let keys = store.signing_keys().await?;
    let text = keys[0].private_key.strip_prefix("pkcs8:").unwrap();
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap())
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scopes = vec!["mcp:tools".to_owned()];
    let mut group = c.benchmark_group("access-token signing");
    for algorithm in [
        SigningAlgorithm::ES256,
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::RS256,
    ] {
        let store = Arc::new(MemoryStore::new());
        let signer = runtime
            .block_on(
                JwtAccessTokenSigner::builder(
                    Arc::clone(&store) as Arc<dyn SigningKeyStore>,
                    RESOURCE,
                )
                .algorithm(algorithm)
                .load(),
            )
            .unwrap();
        if algorithm == SigningAlgorithm::ES256 {
            let pkcs8 = runtime.block_on(stored_pkcs8(&store)).unwrap();
            let key = jsonwebtoken::EncodingKey::from_ec_der(&pkcs8);
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.typ = Some("at+jwt".to_owned());
            header.kid = Some("kid".to_owned());
            let body = serde_json::json!({
                "iss": ISSUER, "sub": "alice", "aud": RESOURCE, "client_id": "app",
                "scope": "mcp:tools", "iat": 1_900_000_000, "exp": 1_900_003_600,
                "jti": "0b5e8c1e-8a61-4a5c-9d0e-3f2a7c9b1d44",
            });
            group.bench_function("jsonwebtoken encode (ES256)", |b| {
                b.iter(|| jsonwebtoken::encode(&header, &body, &key).unwrap());
            });
        }
        group.bench_function(
            format!("JwtAccessTokenSigner::sign ({})", algorithm.as_str()),
            |b| {
                b.iter(|| signer.sign(&claims(&scopes)).unwrap());
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
