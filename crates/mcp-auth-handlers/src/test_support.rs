//! Shared fixtures for the handler tests: an in-memory provider, registered clients of every
//! authentication method, a PKCE pair and a [`HandlerContext`] driven by a [`ManualClock`].
//!
//! The provider is deliberately naive where the Python SDK's test providers are: its `load_*`
//! methods return whatever is stored, expired or not, issued to any client. That way every
//! client, expiry and binding check the handlers make is exercised by the tests, instead of
//! being quietly done for them by the provider. Where the provider contract asks for atomicity
//! (single-use codes, refresh-token rotation), it is atomic, so concurrency tests mean something.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, Request, Response};
use mcp_auth_core::{AuthSettings, Capabilities, ManualClock, RevocationOptions};
use mcp_auth_types::{
    ClientSecret, CodeVerifier, GrantType, OAuthClientInformationFull, OAuthClientMetadata,
    TokenEndpointAuthMethod,
};

use crate::context::HandlerContext;

mod provider;

pub(crate) use provider::*;

/// The issuer every test context is configured with. No trailing slash, so a test can see that
/// `iss` is sent exactly as configured.
pub(crate) const ISSUER: &str = "https://auth.example.com";
/// The protected resource every test context serves.
pub(crate) const RESOURCE: &str = "https://mcp.example.com/mcp";
/// The start time of every [`ManualClock`] (2023-11-14).
pub(crate) const T0: i64 = 1_700_000_000;
/// The redirect URI the web clients register.
pub(crate) const REDIRECT_URI: &str = "https://client.example.com/callback";
/// The loopback redirect URI the native client registers (RFC 8252 §7.3).
pub(crate) const LOOPBACK_REDIRECT_URI: &str = "http://127.0.0.1:3000/callback";
/// The scopes every test client registers.
pub(crate) const CLIENT_SCOPE: &str = "read write profile";
/// Scopes an authorization gets when the request names none.
pub(crate) const DEFAULT_GRANTED: [&str; 2] = ["read", "write"];
/// Lifetime of issued codes.
pub(crate) const CODE_LIFETIME: i64 = 300;
/// Lifetime of issued access and refresh tokens.
pub(crate) const TOKEN_LIFETIME: i64 = 3600;

/// Public client (`token_endpoint_auth_method` = `none`).
pub(crate) const PUBLIC_CLIENT_ID: &str = "public-client";
/// Confidential client authenticating with `client_secret_post`.
pub(crate) const POST_CLIENT_ID: &str = "post-client";
/// Its secret.
pub(crate) const POST_CLIENT_SECRET: &str = "post-client-secret";
/// Confidential client authenticating with `client_secret_basic`. The id and the secret hold
/// characters that RFC 6749 §2.3.1 requires to be form-encoded inside the Basic credentials.
pub(crate) const BASIC_CLIENT_ID: &str = "basic:client@example";
/// Its secret.
pub(crate) const BASIC_CLIENT_SECRET: &str = "s3cr:t/+%&= é";
/// Native public client with a loopback redirect URI.
pub(crate) const LOOPBACK_CLIENT_ID: &str = "loopback-client";
/// Client registered with `private_key_jwt`.
pub(crate) const JWT_CLIENT_ID: &str = "jwt-client";

/// RFC 7636 Appendix B verifier.
pub(crate) const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// Its S256 challenge.
pub(crate) const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The only identity assertion the test provider accepts (standing in for ID-JAG validation).
pub(crate) const VALID_ASSERTION: &str = "valid-id-jag";

/// The only client assertion the test provider accepts (standing in for `private_key_jwt`
/// verification). Shaped like a JWT whose payload's `sub` is [`JWT_CLIENT_ID`], so that a
/// request without `client_id` finds the client.
pub(crate) const VALID_CLIENT_ASSERTION: &str =
    "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJqd3QtY2xpZW50In0.c2ln";

/// A client assertion shaped like a JWT whose payload's `sub` is `subject`, with a junk
/// signature (the test provider accepts only [`VALID_CLIENT_ASSERTION`]).
pub(crate) fn client_assertion_for(subject: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let encode = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.c2ln",
        encode(serde_json::json!({"alg": "ES256"})),
        encode(serde_json::json!({ "sub": subject }))
    )
}

/// A PKCE verifier and its S256 challenge.
pub(crate) fn pkce() -> (CodeVerifier, String) {
    (CodeVerifier::new(PKCE_VERIFIER), PKCE_CHALLENGE.to_owned())
}

fn client(
    id: &str,
    method: TokenEndpointAuthMethod,
    secret: Option<&str>,
    redirect: &str,
) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec![redirect.to_owned()]);
    metadata.token_endpoint_auth_method = Some(method);
    metadata.scope = Some(CLIENT_SCOPE.to_owned());
    metadata.client_name = Some(format!("{id} (test)"));
    let mut client = OAuthClientInformationFull::new(id, metadata);
    client.client_secret = secret.map(ClientSecret::new);
    client.client_id_issued_at = Some(T0);
    client.client_secret_expires_at = secret.map(|_| 0);
    client
}

/// The registered public client.
pub(crate) fn public_client() -> OAuthClientInformationFull {
    client(
        PUBLIC_CLIENT_ID,
        TokenEndpointAuthMethod::None,
        None,
        REDIRECT_URI,
    )
}

/// The registered `client_secret_post` client.
pub(crate) fn post_client() -> OAuthClientInformationFull {
    client(
        POST_CLIENT_ID,
        TokenEndpointAuthMethod::ClientSecretPost,
        Some(POST_CLIENT_SECRET),
        REDIRECT_URI,
    )
}

/// The registered `client_secret_basic` client.
pub(crate) fn basic_client() -> OAuthClientInformationFull {
    client(
        BASIC_CLIENT_ID,
        TokenEndpointAuthMethod::ClientSecretBasic,
        Some(BASIC_CLIENT_SECRET),
        REDIRECT_URI,
    )
}

/// The registered native client with a loopback redirect URI.
pub(crate) fn loopback_client() -> OAuthClientInformationFull {
    client(
        LOOPBACK_CLIENT_ID,
        TokenEndpointAuthMethod::None,
        None,
        LOOPBACK_REDIRECT_URI,
    )
}

/// The registered `private_key_jwt` client.
pub(crate) fn jwt_client() -> OAuthClientInformationFull {
    client(
        JWT_CLIENT_ID,
        TokenEndpointAuthMethod::PrivateKeyJwt,
        None,
        REDIRECT_URI,
    )
}

/// An `Authorization: Basic` value for `id` and `secret`, each form-encoded first as RFC 6749
/// §2.3.1 requires.
pub(crate) fn basic_auth(id: &str, secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// A form body from pairs, form-encoded.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// A form `POST` to `uri` with `body` and extra `headers`.
pub(crate) fn post_form(uri: &str, body: &str, headers: &[(&str, &str)]) -> Request<Bytes> {
    let mut builder = Request::builder().method(Method::POST).uri(uri).header(
        http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    );
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Bytes::from(body.to_owned()))
        .expect("a valid test request")
}

/// A request with any method, URI and body.
pub(crate) fn request(method: Method, uri: &str, body: impl Into<Bytes>) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .expect("a valid test request")
}

/// The response body as JSON (`Null` for an empty body).
pub(crate) fn body_json(response: &Response<Bytes>) -> serde_json::Value {
    if response.body().is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(response.body()).expect("a JSON response body")
}

/// The `error` member of a JSON error body, or `None`.
pub(crate) fn error_code(response: &Response<Bytes>) -> Option<String> {
    body_json(response)
        .get("error")
        .and_then(|e| e.as_str())
        .map(str::to_owned)
}

/// A header as a string, or `None`.
pub(crate) fn header<'a>(response: &'a Response<Bytes>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The query parameters of the `Location` header.
pub(crate) fn location_params(response: &Response<Bytes>) -> HashMap<String, String> {
    let location = header(response, "location").expect("a Location header");
    let query = location.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// Default test settings: the test issuer and resource, revocation enabled.
pub(crate) fn settings() -> AuthSettings {
    AuthSettings::builder(ISSUER)
        .resource_server_url(RESOURCE)
        .revocation(RevocationOptions::enabled())
        .build()
        .expect("valid test settings")
}

/// A provider, a clock and a handler context that share the clock.
#[derive(Debug, Clone)]
pub(crate) struct TestEnv {
    /// The in-memory provider, with every test client registered.
    pub(crate) provider: Arc<TestProvider>,
    /// The clock of both the provider and the context.
    pub(crate) clock: Arc<ManualClock>,
    /// The handler context.
    pub(crate) ctx: HandlerContext,
}

impl TestEnv {
    /// The default environment ([`settings`]).
    pub(crate) fn new() -> Self {
        Self::with_settings(settings())
    }

    /// An environment with custom settings and the capabilities every provider has, plus
    /// `private_key_jwt` (the test provider verifies [`VALID_CLIENT_ASSERTION`]).
    pub(crate) fn with_settings(settings: AuthSettings) -> Self {
        Self::with_capabilities(settings, Capabilities::new().private_key_jwt(["ES256"]))
    }

    /// An environment with custom settings whose provider states `capabilities` (the test
    /// provider implements every optional grant and method; the capabilities say which ones
    /// the handlers offer).
    pub(crate) fn with_capabilities(settings: AuthSettings, capabilities: Capabilities) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let provider = Arc::new(TestProvider::new(Arc::clone(&clock)));
        for client in [
            public_client(),
            post_client(),
            basic_client(),
            loopback_client(),
            jwt_client(),
        ] {
            provider.add_client(client);
        }
        let ctx = HandlerContext::new(settings, capabilities).with_clock(clock.clone());
        Self {
            provider,
            clock,
            ctx,
        }
    }
}

/// The grant types a client registered, for tests that narrow them.
pub(crate) fn set_grant_types(provider: &TestProvider, id: &str, grants: Vec<GrantType>) {
    provider.update_client(id, |client| client.metadata.grant_types = grants);
}

#[cfg(test)]
mod tests {
    use mcp_auth_core::OAuthAuthorizationServerProvider;
    use mcp_auth_types::AuthorizationCodeSecret;

    use super::*;

    #[test]
    fn the_valid_client_assertion_names_the_jwt_client() {
        assert_eq!(client_assertion_for(JWT_CLIENT_ID), VALID_CLIENT_ASSERTION);
    }

    #[test]
    fn pkce_pair_matches() {
        let (verifier, challenge) = pkce();
        assert!(mcp_auth_types::verify_s256(&verifier, &challenge));
    }

    #[test]
    fn basic_auth_form_encodes_both_halves() {
        let value = basic_auth("a b", "c:d");
        let decoded = STANDARD.decode(value.trim_start_matches("Basic ")).unwrap();
        assert_eq!(decoded, b"a+b:c%3Ad");
    }

    #[tokio::test]
    async fn codes_are_single_use_in_the_provider() {
        let env = TestEnv::new();
        let code = env
            .provider
            .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, true, None);
        let record = env
            .provider
            .load_authorization_code(&public_client(), &AuthorizationCodeSecret::new(&code))
            .await
            .unwrap()
            .unwrap();
        let first = env
            .provider
            .exchange_authorization_code(&public_client(), record.clone())
            .await;
        let second = env
            .provider
            .exchange_authorization_code(&public_client(), record)
            .await;
        assert!(first.is_ok());
        assert!(second.is_err());
    }
}
