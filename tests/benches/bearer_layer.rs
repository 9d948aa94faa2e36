//! The bearer layer's own CPU cost, without sockets: criterion timings of one request through
//! `RequireBearerLayer` around a trivial service, beside the trivial service alone, and of
//! `BearerAuth::authenticate` by itself — on `StoreProvider<MemoryStore>`, with and without the
//! provider's access-token cache, and for another issuer's ES256 JWT access token answered
//! from `JwtAccessTokenVerifier`'s cache. This isolates what `cargo xtask bench` (`bearer.rs`)
//! measures through the whole HTTP stack. Run with `cargo bench -p mcp-auth-tests --bench
//! bearer_layer`. On 2026-12-05 the JWT request took 600–626 ns through the layer (775–846 ns
//! before that day's changes to its path), a `MemoryStore` one 483–528 ns, the bare service
//! 194–207 ns (`mcp-auth-axum`'s README has the runs and the changes).

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response, header::AUTHORIZATION};
use mcp_auth_axum::{McpAuth, McpResource};
use mcp_auth_core::{AuthSettings, MemoryStore, StoreProvider, TokenStore};
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_jwt::{JwksSource, JwtAccessTokenVerifier, SigningAlgorithm};
use tower::{Layer, Service, ServiceExt, service_fn};

const ISSUER: &str = "http://127.0.0.1:8080";
const RESOURCE: &str = "http://127.0.0.1:8080/hello";
const SCOPE: &str = "mcp:tools";

async fn hello(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::from("hello")))
}

/// A provider holding one live token, and that token's `Authorization` value.
async fn provider(cache_ttl: u64) -> (StoreProvider<MemoryStore>, HeaderValue) {
    let provider = StoreProvider::builder(MemoryStore::new(), ISSUER)
        .access_token_cache_ttl(cache_ttl)
        .build()
        .expect("provider");
    let (raw, record) = mcp_auth_tests::bench::access_token(ISSUER, RESOURCE, SCOPE);
    assert!(
        provider
            .storage()
            .issue_tokens(&record, None)
            .await
            .unwrap()
    );
    let header = HeaderValue::from_str(&format!("Bearer {raw}")).unwrap();
    (provider, header)
}

fn request(authorization: &HeaderValue) -> Request<Body> {
    Request::builder()
        .uri("/hello")
        .header(AUTHORIZATION, authorization.clone())
        .body(Body::empty())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("bearer_layer");
    for (name, cache_ttl) in [("memory", 0), ("memory + token cache", 60)] {
        let (provider, authorization) = runtime.block_on(provider(cache_ttl));
        let settings = AuthSettings::builder(ISSUER)
            .resource_server_url(RESOURCE)
            .required_scopes([SCOPE])
            .build()
            .expect("settings");
        let auth = McpAuth::builder(Arc::new(provider))
            .settings(settings)
            .build()
            .expect("auth");
        let layer = auth.require_bearer().expect("resource configured");
        let bare = service_fn(hello);
        let protected = layer.layer(service_fn(hello));
        let response = runtime.block_on(protected.clone().oneshot(request(&authorization)));
        assert_eq!(response.unwrap().status(), 200, "the token is accepted");

        if cache_ttl == 0 {
            group.bench_function("request without the layer", |b| {
                b.to_async(&runtime).iter(|| {
                    let mut service = bare;
                    let request = request(&authorization);
                    async move { service.call(request).await.unwrap() }
                });
            });
        }
        group.bench_function(format!("request through the layer ({name})"), |b| {
            b.to_async(&runtime).iter(|| {
                let service = protected.clone();
                let request = request(&authorization);
                async move { service.oneshot(request).await.unwrap() }
            });
        });
    }

    // A JWT access token of another issuer (RFC 9068) through `McpResource`, verified once
    // and then answered from the verifier's cache, as every request of a client after its
    // first.
    let key = TestKey::generate(SigningAlgorithm::ES256, "as-1");
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let jwt = key.sign(
        Some("at+jwt"),
        &serde_json::json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "app",
            "scope": SCOPE, "iat": now, "exp": now + 3600,
        }),
    );
    let verifier = JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
        .jwks(JwksSource::Inline(TestKey::jwks(&[&key])))
        .build()
        .expect("verifier");
    let resource = McpResource::builder(RESOURCE, Arc::new(verifier))
        .authorization_server(ISSUER)
        .required_scopes([SCOPE])
        .build()
        .expect("resource");
    let protected = resource.require_bearer().layer(service_fn(hello));
    let authorization = HeaderValue::from_str(&format!("Bearer {jwt}")).unwrap();
    let response = runtime.block_on(protected.clone().oneshot(request(&authorization)));
    assert_eq!(response.unwrap().status(), 200, "the JWT is accepted");
    group.bench_function("request through the layer (JWT, verified before)", |b| {
        b.to_async(&runtime).iter(|| {
            let service = protected.clone();
            let request = request(&authorization);
            async move { service.oneshot(request).await.unwrap() }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
