//! The JWK Set of the keys that sign this server's access tokens (RFC 7517 §5), served at
//! [`JWKS_PATH`] and advertised as `jwks_uri` (RFC 8414 §2) when the provider signs its tokens.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use mcp_auth_core::OAuthAuthorizationServerProvider;

use crate::response::{self, Caching};

/// Where the key set is served, relative to the issuer.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Serves the provider's current key set to `GET` and `HEAD`, with
/// `Cache-Control: public, max-age=300`: keys rotate, and a new key is published an hour before
/// it signs, so a resource server's cached copy is never stale when it matters.
#[derive(Debug)]
pub struct KeySetHandler<P> {
    provider: Arc<P>,
}

impl<P: OAuthAuthorizationServerProvider> KeySetHandler<P> {
    /// A handler serving `provider`'s [`access_token_key_set`](OAuthAuthorizationServerProvider::access_token_key_set).
    pub fn new(provider: Arc<P>) -> Self {
        Self { provider }
    }

    /// Answers a request for the key set; 404 when the provider signs no tokens.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => return response::method_not_allowed("GET, HEAD"),
        };
        let Some(key_set) = self.provider.access_token_key_set() else {
            return response::raw_json(
                StatusCode::NOT_FOUND,
                Bytes::from_static(br#"{"error":"not_found"}"#),
                Caching::NoStore,
            );
        };
        let body = if head {
            Bytes::new()
        } else {
            Bytes::from(key_set.as_bytes().to_vec())
        };
        response::raw_json(StatusCode::OK, body, Caching::PublicFiveMinutes)
    }
}

#[cfg(test)]
mod tests {
    use mcp_auth_core::{
        AccessTokenClaims, AccessTokenSigner, MemoryStore, ProviderError, StoreProvider,
    };

    use super::*;

    struct FixedKeys;

    impl AccessTokenSigner for FixedKeys {
        fn sign(&self, _: &AccessTokenClaims<'_>) -> Result<String, ProviderError> {
            Err(ProviderError::unavailable("not in this test"))
        }
        fn key_set(&self) -> Arc<str> {
            Arc::from(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"k1"}]}"#)
        }
    }

    fn request(method: Method) -> Request<Bytes> {
        Request::builder()
            .method(method)
            .uri(JWKS_PATH)
            .body(Bytes::new())
            .unwrap()
    }

    fn provider(signed: bool) -> Arc<StoreProvider<MemoryStore>> {
        let mut builder = StoreProvider::builder(MemoryStore::new(), "https://as.example");
        if signed {
            builder = builder.access_token_signer(Arc::new(FixedKeys));
        }
        Arc::new(builder.build().unwrap())
    }

    #[tokio::test]
    async fn the_key_set_is_served_briefly_cacheable_to_get_and_head_only() {
        let handler = KeySetHandler::new(provider(true));
        let response = handler.handle(request(Method::GET)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "public, max-age=300");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["keys"][0]["kid"], "k1");
        let head = handler.handle(request(Method::HEAD)).await;
        assert_eq!(head.status(), StatusCode::OK);
        assert!(head.body().is_empty());
        let post = handler.handle(request(Method::POST)).await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn a_provider_with_opaque_tokens_has_no_key_set() {
        let response = KeySetHandler::new(provider(false))
            .handle(request(Method::GET))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
}
