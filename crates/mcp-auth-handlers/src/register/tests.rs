use async_trait::async_trait;
use mcp_auth_core::{
    AuthSettings, AuthorizeError, ClientRegistrationOptions, ProviderError, ProviderErrorKind,
    RevocableToken, TokenError,
};
use mcp_auth_types::{
    AccessToken, AccessTokenSecret, AuthorizationCode, AuthorizationCodeSecret,
    AuthorizationParams, OAuthToken, RefreshToken, RefreshTokenSecret,
};
use serde_json::{Value, json};

use super::*;
use crate::test_support::{ISSUER, T0, TestEnv, body_json, header, request};
use mcp_auth_core::Capabilities;

/// The registration options of the Python SDK's `test_auth_integration.py` fixture.
fn python_options() -> ClientRegistrationOptions {
    ClientRegistrationOptions::enabled()
        .valid_scopes(["read", "write", "profile"])
        .default_scopes(["read", "write"])
}

fn env_with(options: ClientRegistrationOptions) -> TestEnv {
    env_with_settings(options, &[])
}

fn env_with_settings(options: ClientRegistrationOptions, signing_algs: &[&str]) -> TestEnv {
    TestEnv::with_capabilities(
        AuthSettings::builder(ISSUER)
            .client_registration(options)
            .build()
            .unwrap(),
        Capabilities::new()
            .client_credentials()
            .private_key_jwt(signing_algs.iter().copied()),
    )
}

async fn register(env: &TestEnv, body: &Value) -> Response<Bytes> {
    let handler = RegistrationHandler::new(env.provider.clone(), env.ctx.clone());
    handler
        .handle(request(Method::POST, "/register", body.to_string()))
        .await
}

/// The Python SDK's `registered_client` metadata.
fn base() -> Value {
    json!({
        "redirect_uris": ["https://client.example.com/callback"],
        "client_name": "Test Client",
        "grant_types": ["authorization_code", "refresh_token"],
    })
}

/// `base()` with members replaced (a `null` removes one).
fn with(changes: Value) -> Value {
    let mut body = base();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            body.as_object_mut().unwrap().remove(name);
        } else {
            body[name] = value.clone();
        }
    }
    body
}

const METADATA: &str = "invalid_client_metadata";

/// Runs a table of registrations under `options`, one case a line:
/// `<members changed in base()> => 201 <members expected in the response>` or
/// `<members changed in base()> => 400 <error code> <text in the description>`.
/// A changed member set to `null` is removed; an expected `null` must be absent. Lines
/// starting with `#` are comments.
async fn check_table(options: ClientRegistrationOptions, table: &str) {
    check_table_with(options, &[], table).await;
}

/// [`check_table`] with `private_key_jwt` enabled for `signing_algs` (off when empty).
async fn check_table_with(options: ClientRegistrationOptions, signing_algs: &[&str], table: &str) {
    for line in table.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (changes, expect) = line.split_once(" => ").expect("`changes => expect`");
        let body = with(serde_json::from_str(changes).expect("changes are JSON"));
        let env = env_with_settings(options.clone(), signing_algs);
        let response = register(&env, &body).await;
        let got = body_json(&response);
        let (status, expect) = expect.split_once(' ').expect("a status first");
        assert_eq!(response.status().as_str(), status, "{line} → {got}");
        if status == "201" {
            let members: Value = serde_json::from_str(expect).expect("members are JSON");
            for (name, value) in members.as_object().unwrap() {
                assert_eq!(&got[name], value, "{name}: {line} → {got}");
            }
        } else {
            let (code, text) = expect.split_once(' ').unwrap_or((expect, ""));
            assert_eq!(got["error"], code, "{line} → {got}");
            let description = got["error_description"].as_str().unwrap();
            assert!(description.contains(text), "{line} → {description}");
        }
    }
}

#[tokio::test]
async fn registration_cases() {
    check_table(
        python_options(),
        r#"
# Python: test_client_registration.
{"grant_types": null, "client_uri": "https://client.example.com"} => 201 {"client_name": "Test Client", "redirect_uris": ["https://client.example.com/callback"], "client_uri": "https://client.example.com", "token_endpoint_auth_method": "client_secret_post"}
# Python: test_client_registration_missing_required_fields and _empty_redirect_uris.
{"redirect_uris": null} => 400 invalid_client_metadata redirect_uris
{"redirect_uris": []} => 400 invalid_client_metadata redirect_uris
# Python: test_client_registration_invalid_uri answers invalid_client_metadata; RFC 7591 §3.2.2
# has a code for exactly this.
{"redirect_uris": ["not-a-valid-uri"]} => 400 invalid_redirect_uri not-a-valid-uri
{"redirect_uris": ["https://ok.example/cb", "/relative"]} => 400 invalid_redirect_uri /relative
# Python registers it (test_a_non_loopback_http_redirect_uri_is_accepted_at_registration); the
# MCP specification requires https or loopback.
{"redirect_uris": ["http://evil.example/callback"]} => 400 invalid_redirect_uri https
{"redirect_uris": ["https://client.example.com/cb#frag"]} => 400 invalid_redirect_uri fragment
{"redirect_uris": ["javascript:alert(1)"]} => 400 invalid_redirect_uri javascript
{"redirect_uris": ["http://127.0.0.1:3000/cb", "http://localhost/cb", "http://[::1]:9/cb"]} => 201 {"redirect_uris": ["http://127.0.0.1:3000/cb", "http://localhost/cb", "http://[::1]:9/cb"]}
{"redirect_uris": ["com.example.app:/callback"]} => 201 {"redirect_uris": ["com.example.app:/callback"]}
# Python: test_client_registration_disallowed_scopes and the as_handlers bad scope.
{"scope": "read write profile admin"} => 400 invalid_client_metadata Requested scopes are not valid: admin
{"scope": "forbidden"} => 400 invalid_client_metadata Requested scopes are not valid: forbidden
{"scope": "read \"x\""} => 400 invalid_client_metadata scope-token
{"scope": "read write"} => 201 {"scope": "read write"}
# Python: test_client_registration_default_scopes; a blank scope counts as absent.
{} => 201 {"scope": "read write"}
{"scope": "  "} => 201 {"scope": "read write"}
# Python: test_client_registration_with_authorization_code_only and _missing_authorization_code.
{"grant_types": ["authorization_code"]} => 201 {"grant_types": ["authorization_code"]}
{"grant_types": ["refresh_token"]} => 400 invalid_client_metadata grant_types must include 'authorization_code'
{"grant_types": []} => 400 invalid_client_metadata grant_types must include 'authorization_code'
{"grant_types": null} => 201 {"grant_types": ["authorization_code", "refresh_token"]}
# Python: test_client_registration_with_additional_grant_type.
{"grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"]} => 201 {"client_name": "Test Client"}
# SEP-990: the identity-assertion grant is not for self-registered clients.
{"grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"]} => 400 invalid_client_metadata must not include 'urn:ietf:params:oauth:grant-type:jwt-bearer'
# Python: test_client_registration_with_additional_response_types, _response_types_without_code
# and _default_response_types.
{"response_types": ["code", "none"]} => 201 {"response_types": ["code", "none"]}
{"response_types": ["token", "none", "nonsense-string"]} => 400 invalid_client_metadata response_types must include 'code'
{} => 201 {"response_types": ["code"]}
# Python: test_none_auth_method_public_client.
{"token_endpoint_auth_method": "none"} => 201 {"token_endpoint_auth_method": "none", "client_secret": null, "client_secret_expires_at": null}
{"token_endpoint_auth_method": "client_secret_basic"} => 201 {"token_endpoint_auth_method": "client_secret_basic", "client_secret_expires_at": 0}
# Python: the as_handlers private_key_jwt case.
{"token_endpoint_auth_method": "private_key_jwt"} => 400 invalid_client_metadata token_endpoint_auth_method 'private_key_jwt' is not supported
{"token_endpoint_auth_method": "tls_client_auth"} => 400 invalid_client_metadata 'tls_client_auth' is not supported
# Python: test_registration_response_echoes_the_registered_application_type.
{"application_type": "web"} => 201 {"application_type": "web", "client_secret_expires_at": 0}
{"application_type": "native"} => 201 {"application_type": "native", "client_secret_expires_at": 0}
# RFC 7591 §2: unknown members are ignored; "" placeholders read as absent.
{"x_extension": {"a": 1}, "logo_uri": ""} => 201 {"x_extension": null, "logo_uri": null}
# Malformed members.
{"redirect_uris": "https://client.example.com/callback"} => 400 invalid_client_metadata invalid client metadata
{"grant_types": [1]} => 400 invalid_client_metadata invalid client metadata
{"token_endpoint_auth_method": 3} => 400 invalid_client_metadata invalid client metadata
"#,
    )
    .await;
}

#[tokio::test]
async fn private_key_jwt_is_registrable_with_keys_when_the_server_verifies_assertions() {
    check_table_with(
        python_options(),
        &["RS256", "ES256"],
        r#"
{"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}} => 201 {"token_endpoint_auth_method": "private_key_jwt", "client_secret": null, "client_secret_expires_at": null, "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}}
{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://client.example.com/jwks.json"} => 201 {"jwks_uri": "https://client.example.com/jwks.json", "client_secret": null}
{"token_endpoint_auth_method": "private_key_jwt"} => 400 invalid_client_metadata requires jwks or jwks_uri
{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://client.example.com/jwks.json"} => 400 invalid_client_metadata jwks_uri must be an https URL
{"token_endpoint_auth_method": "private_key_jwt", "jwks": {"kty": "EC"}} => 400 invalid_client_metadata keys array
{"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}, "jwks_uri": "https://client.example.com/jwks.json"} => 400 invalid_client_metadata must not both be present
{"token_endpoint_auth_method": "client_secret_post"} => 201 {"client_secret_expires_at": 0}
"#,
    )
    .await;
}

#[tokio::test]
async fn client_credentials_is_registrable_only_when_allowed() {
    let refused = r#"
{"grant_types": ["client_credentials"], "redirect_uris": null} => 400 invalid_client_metadata must not include 'client_credentials'
{"grant_types": ["authorization_code", "client_credentials"]} => 400 invalid_client_metadata must not include 'client_credentials'
"#;
    check_table(python_options(), refused).await;
    check_table(
        python_options().allow_client_credentials(true),
        r#"
{"grant_types": ["client_credentials"], "redirect_uris": null} => 201 {"grant_types": ["client_credentials"], "redirect_uris": null, "response_types": [], "client_secret_expires_at": 0}
{"grant_types": ["authorization_code", "client_credentials"]} => 201 {"grant_types": ["authorization_code", "client_credentials"], "response_types": ["code"]}
{"grant_types": ["client_credentials"], "redirect_uris": null, "token_endpoint_auth_method": "none"} => 400 invalid_client_metadata requires a confidential client
{"grant_types": ["client_credentials", "refresh_token"], "redirect_uris": null} => 400 invalid_client_metadata redirect_uris
"#,
    )
    .await;
}

#[tokio::test]
async fn step_up_scopes_are_added_to_every_registered_scope() {
    let open = ClientRegistrationOptions::enabled;
    // An MCP client registers with its first challenge's scope; the step-up scopes are added
    // so that it may later authorize for them without registering again.
    check_table(
        open()
            .valid_scopes(["mcp", "mcp:admin", "other"])
            .default_scopes(["mcp"])
            .step_up_scopes(["mcp:admin"]),
        r#"
{"scope": "mcp"} => 201 {"scope": "mcp mcp:admin"}
{"scope": "mcp:admin mcp"} => 201 {"scope": "mcp:admin mcp"}
{"scope": "other"} => 201 {"scope": "other mcp:admin"}
{} => 201 {"scope": "mcp mcp:admin"}
{"scope": "mcp nope"} => 400 invalid_client_metadata Requested scopes are not valid: nope
"#,
    )
    .await;
    check_table(
        open().step_up_scopes(["up"]),
        r#"{} => 201 {"scope": "up"}"#,
    )
    .await;
}

#[tokio::test]
async fn option_dependent_cases() {
    let open = ClientRegistrationOptions::enabled;
    check_table(
        open(),
        r#"
{"scope": "anything goes"} => 201 {"scope": "anything goes"}
{} => 201 {"scope": null}
"#,
    )
    .await;
    check_table(
        open().default_scopes(["mcp"]),
        r#"{} => 201 {"scope": "mcp"}"#,
    )
    .await;
    check_table(
        open().allow_public_clients(false),
        r#"
{"token_endpoint_auth_method": "none"} => 400 invalid_client_metadata public clients
{} => 201 {"token_endpoint_auth_method": "client_secret_post"}
"#,
    )
    .await;
    check_table(
        open().client_secret_expiry_seconds(3600),
        r#"
{} => 201 {"client_secret_expires_at": 1700003600, "client_id_issued_at": 1700000000}
{"token_endpoint_auth_method": "none"} => 201 {"client_secret_expires_at": null, "client_id_issued_at": 1700000000}
"#,
    )
    .await;
    check_table(
        open().client_secret_expiry_seconds(u64::MAX),
        r#"{} => 201 {"client_secret_expires_at": 9223372036854775807}"#,
    )
    .await;
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_invalid_client_metadata() {
    let env = env_with(python_options());
    let handler = RegistrationHandler::new(env.provider.clone(), env.ctx.clone());
    let bodies: [&[u8]; 9] = [
        b"",
        b"{",
        b"[]",
        b"[[\"https://client.example.com/callback\"]]",
        b"null",
        b"\"text\"",
        b"\xff\xfe",
        b"redirect_uris=https://x",
        b"{\"redirect_uris\": [\"https://a.example/cb\"]} trailing",
    ];
    for body in bodies {
        let response = handler
            .handle(request(Method::POST, "/register", Bytes::from_static(body)))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(&response)["error"], METADATA);
    }
}

#[test]
fn the_table_clock_is_the_fixture_clock() {
    // The expiry table above spells out T0 and T0 + 3600.
    assert_eq!(T0, 1_700_000_000);
}

#[tokio::test]
async fn credentials_are_fresh_and_stored_with_the_provider() {
    let env = env_with(python_options());
    let first = body_json(&register(&env, &base()).await);
    let second = body_json(&register(&env, &base()).await);
    let id = first["client_id"].as_str().unwrap();
    let secret = first["client_secret"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_ne!(id, second["client_id"].as_str().unwrap());
    assert_ne!(secret, second["client_secret"].as_str().unwrap());
    assert_eq!(first["client_id_issued_at"], T0);

    let stored = env.provider.get_client(id).await.unwrap().unwrap();
    assert_eq!(stored.metadata.scope.as_deref(), Some("read write"));
    assert_eq!(
        stored
            .client_secret
            .as_ref()
            .map(ClientSecret::expose_secret),
        Some(secret)
    );
    assert_eq!(
        stored.metadata.token_endpoint_auth_method,
        Some(TokenEndpointAuthMethod::ClientSecretPost)
    );
}

#[tokio::test]
async fn the_response_is_201_json_and_not_cached() {
    let env = env_with(python_options());
    let response = register(&env, &base()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn refused_metadata_never_reaches_the_provider() {
    // A failing provider would turn any call into a 5xx; the refusal stays a 400.
    let env = env_with(python_options());
    env.provider.fail_with(Some(ProviderErrorKind::Internal));
    let response = register(&env, &with(json!({"grant_types": ["refresh_token"]}))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn transport_level_refusals() {
    let env = env_with(python_options());
    let handler = RegistrationHandler::new(env.provider.clone(), env.ctx.clone());
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
        let response = handler
            .handle(request(method, "/register", base().to_string()))
            .await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&response, "allow"), Some("POST"));
    }
    let small = RegistrationHandler::new(env.provider.clone(), env.ctx.clone().with_body_limit(16));
    let response = small
        .handle(request(Method::POST, "/register", base().to_string()))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn provider_failures_are_generic() {
    let env = env_with(python_options());
    for (kind, status) in [
        (
            ProviderErrorKind::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            ProviderErrorKind::Internal,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ] {
        env.provider.fail_with(Some(kind));
        let response = register(&env, &base()).await;
        assert_eq!(response.status(), status);
        assert!(!String::from_utf8_lossy(response.body()).contains("hunter2"));
        assert!(body_json(&response).get("client_secret").is_none());
    }
}

/// A provider that refuses every registration with a policy error.
#[derive(Debug)]
struct Refusing;

#[async_trait]
impl OAuthAuthorizationServerProvider for Refusing {
    type AuthorizationCode = AuthorizationCode;
    type RefreshToken = RefreshToken;
    type AccessToken = AccessToken;

    async fn get_client(
        &self,
        _: &str,
    ) -> Result<Option<OAuthClientInformationFull>, ProviderError> {
        Ok(None)
    }
    async fn register_client(
        &self,
        _: OAuthClientInformationFull,
    ) -> Result<(), RegistrationError> {
        Err(RegistrationError::new(
            RegistrationErrorCode::InvalidRedirectUri,
            "redirect host not allowed by policy",
        ))
    }
    async fn authorize(
        &self,
        _: &OAuthClientInformationFull,
        _: AuthorizationParams,
    ) -> Result<String, AuthorizeError> {
        unreachable!("registration never authorizes")
    }
    async fn load_authorization_code(
        &self,
        _: &OAuthClientInformationFull,
        _: &AuthorizationCodeSecret,
    ) -> Result<Option<AuthorizationCode>, ProviderError> {
        Ok(None)
    }
    async fn exchange_authorization_code(
        &self,
        _: &OAuthClientInformationFull,
        _: AuthorizationCode,
    ) -> Result<OAuthToken, TokenError> {
        unreachable!("registration never exchanges codes")
    }
    async fn load_refresh_token(
        &self,
        _: &OAuthClientInformationFull,
        _: &RefreshTokenSecret,
    ) -> Result<Option<RefreshToken>, ProviderError> {
        Ok(None)
    }
    async fn exchange_refresh_token(
        &self,
        _: &OAuthClientInformationFull,
        _: RefreshToken,
        _: Vec<String>,
    ) -> Result<OAuthToken, TokenError> {
        unreachable!("registration never refreshes")
    }
    async fn load_access_token(
        &self,
        _: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        Ok(None)
    }
    async fn revoke_token(
        &self,
        _: RevocableToken<AccessToken, RefreshToken>,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[tokio::test]
async fn provider_rejections_reach_the_client_with_their_code() {
    let env = env_with(python_options());
    let handler = RegistrationHandler::new(Arc::new(Refusing), env.ctx.clone());
    let response = handler
        .handle(request(Method::POST, "/register", base().to_string()))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_json(&response),
        json!({"error": "invalid_redirect_uri", "error_description": "redirect host not allowed by policy"})
    );
}

#[test]
fn scope_tokens() {
    let cases = [
        ("read", true),
        ("mcp:tools", true),
        ("a!#[]~", true),
        ("", false),
        ("a\"b", false),
        ("a\\b", false),
        ("a b", false),
        ("caf\u{e9}", false),
        ("tab\t", false),
    ];
    for (scope, expected) in cases {
        assert_eq!(is_scope_token(scope), expected, "{scope:?}");
    }
}

mod limits;
