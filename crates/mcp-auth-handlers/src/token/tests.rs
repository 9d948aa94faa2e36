//! Tests of the token endpoint as a whole, and the helpers the grant modules' tests share.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response};
use mcp_auth_core::ProviderErrorKind;
use mcp_auth_types::{GrantType, TokenErrorCode};

use super::TokenHandler;
use crate::test_support::*;

/// A form body as pairs.
type Form<'a> = &'a [(&'a str, &'a str)];

const TOKEN_URI: &str = "https://auth.example.com/token";

/// Posts `form` (and an optional `Authorization` value) to a token handler over `env`.
pub(super) async fn token(
    env: &TestEnv,
    form_pairs: &[(&str, &str)],
    auth: Option<&str>,
) -> Response<Bytes> {
    let handler = TokenHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    handler
        .handle(post_form(TOKEN_URI, &form(form_pairs), &headers))
        .await
}

/// Posts `form` and checks the status, the error code (`None`: a success) and the RFC 6749
/// §5.1 cache headers every token response carries; returns the JSON body.
pub(super) async fn check_token(
    env: &TestEnv,
    form_pairs: &[(&str, &str)],
    auth: Option<&str>,
    status: u16,
    error: Option<&str>,
) -> serde_json::Value {
    let response = token(env, form_pairs, auth).await;
    let body = body_json(&response);
    assert_eq!(response.status().as_u16(), status, "{form_pairs:?}: {body}");
    assert_eq!(
        error_code(&response).as_deref(),
        error,
        "{form_pairs:?}: {body}"
    );
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(header(&response, "pragma"), Some("no-cache"));
    body
}

/// Posts `form` of a metadata-document (URL) client and checks it is refused as
/// `unauthorized_client`, with a description naming the reason.
pub(super) async fn check_refused_to_url_client(env: &TestEnv, form_pairs: &[(&str, &str)]) {
    let body = check_token(env, form_pairs, None, 400, Some("unauthorized_client")).await;
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains("metadata document"), "{body}");
}

/// An authorization-code request of the public client for `code`.
pub(super) fn code_form(code: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("code", code),
        ("code_verifier", PKCE_VERIFIER),
        ("redirect_uri", REDIRECT_URI),
    ]
}

/// A refresh request of the public client for `token`.
pub(super) fn refresh_form(token: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("refresh_token", token),
    ]
}

#[tokio::test]
async fn grant_types_are_checked_after_client_authentication() {
    let env = TestEnv::new();
    #[rustfmt::skip]
    let cases: [(Form<'_>, u16, &str); 7] = [
        // The Python SDK's "body within the limit is parsed": no client_id → invalid_client.
        (&[("grant_type", "authorization_code")], 401, "invalid_client"),
        (&[("client_id", PUBLIC_CLIENT_ID)], 400, "invalid_request"),
        (&[("client_id", PUBLIC_CLIENT_ID), ("grant_type", "password")], 400, "unsupported_grant_type"),
        (&[("client_id", PUBLIC_CLIENT_ID), ("grant_type", "client_credentials")], 400, "unsupported_grant_type"),
        (&[("client_id", PUBLIC_CLIENT_ID), ("grant_type", "urn:example:custom")], 400, "unsupported_grant_type"),
        (&[("client_id", PUBLIC_CLIENT_ID), ("grant_type", "AUTHORIZATION_CODE")], 400, "unsupported_grant_type"),
        (&[("client_id", "nobody"), ("grant_type", "password")], 401, "invalid_client"),
    ];
    for (form, status, error) in cases {
        check_token(&env, form, None, status, Some(error)).await;
    }
}

#[tokio::test]
async fn a_grant_type_the_client_did_not_register_is_unauthorized_client() {
    let env = TestEnv::new();
    set_grant_types(
        &env.provider,
        PUBLIC_CLIENT_ID,
        vec![GrantType::AuthorizationCode],
    );
    let (_, refresh) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
    let body = check_token(
        &env,
        &refresh_form(&refresh),
        None,
        400,
        Some("unauthorized_client"),
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("refresh_token")
    );
    assert!(env.provider.has_refresh_token(&refresh));
}

#[tokio::test]
async fn a_parameter_sent_twice_is_invalid_request() {
    let env = TestEnv::new();
    let code = env
        .provider
        .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, true, None);
    for name in [
        "code",
        "grant_type",
        "client_id",
        "code_verifier",
        "redirect_uri",
    ] {
        let mut form = code_form(&code);
        form.push((name, "again"));
        let body = check_token(&env, &form, None, 400, Some("invalid_request")).await;
        assert!(body["error_description"].as_str().unwrap().contains(name));
    }
    check_token(&env, &code_form(&code), None, 200, None).await;
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_invalid_request() {
    let env = TestEnv::new();
    let handler = TokenHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(TOKEN_URI)
        .header("content-type", "application/json")
        .body(Bytes::from_static(
            b"{\"grant_type\":\"authorization_code\"}",
        ))
        .unwrap();
    let response = handler.handle(request).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(&response).as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn confidential_clients_exchange_codes_with_their_registered_method() {
    let env = TestEnv::new();
    // client_secret_post.
    let code = env
        .provider
        .insert_code(POST_CLIENT_ID, REDIRECT_URI, true, None);
    let mut form = code_form(&code);
    form.retain(|(n, _)| *n != "client_id");
    form.extend([
        ("client_id", POST_CLIENT_ID),
        ("client_secret", POST_CLIENT_SECRET),
    ]);
    check_token(&env, &form, None, 200, None).await;
    // client_secret_basic with special characters, no client_id in the body.
    let code = env
        .provider
        .insert_code(BASIC_CLIENT_ID, REDIRECT_URI, true, None);
    let mut form = code_form(&code);
    form.retain(|(n, _)| *n != "client_id");
    let auth = basic_auth(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET);
    check_token(&env, &form, Some(&auth), 200, None).await;
}

#[tokio::test]
async fn client_authentication_failures_carry_a_basic_challenge_when_basic_was_tried() {
    let env = TestEnv::new();
    let code = env
        .provider
        .insert_code(BASIC_CLIENT_ID, REDIRECT_URI, true, None);
    let mut form = code_form(&code);
    form.retain(|(n, _)| *n != "client_id");
    let wrong = basic_auth(BASIC_CLIENT_ID, "wrong");
    let response = token(&env, &form, Some(&wrong)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(&response).as_deref(), Some("invalid_client"));
    assert_eq!(
        header(&response, "www-authenticate"),
        Some("Basic realm=\"https://auth.example.com\"")
    );
    // Without a Basic attempt there is no challenge.
    let mut form = code_form(&code);
    form.retain(|(n, _)| *n != "client_id");
    form.push(("client_id", POST_CLIENT_ID));
    form.push(("client_secret", "wrong"));
    let response = token(&env, &form, None).await;
    assert_eq!(response.status(), 401);
    assert!(header(&response, "www-authenticate").is_none());
    // The code survived both attempts.
    assert!(env.provider.has_code(&code));
}

#[tokio::test]
async fn provider_failures_are_server_errors_without_their_cause() {
    #[rustfmt::skip]
    let cases = [
        ("get_client", ProviderErrorKind::Unavailable, 503, "temporarily_unavailable"),
        ("load_authorization_code", ProviderErrorKind::Unavailable, 503, "temporarily_unavailable"),
        ("load_authorization_code", ProviderErrorKind::Internal, 500, "server_error"),
        ("exchange_authorization_code", ProviderErrorKind::Internal, 500, "server_error"),
    ];
    for (method, kind, status, error) in cases {
        let env = TestEnv::new();
        let code = env
            .provider
            .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, true, None);
        env.provider.fail_method(method, Some(kind));
        let response = token(&env, &code_form(&code), None).await;
        assert_eq!(response.status().as_u16(), status, "{method}");
        assert_eq!(error_code(&response).as_deref(), Some(error), "{method}");
        assert!(!String::from_utf8_lossy(response.body()).contains(FAILURE_CAUSE));
    }
    // Basic authentication reaches the provider's secret check.
    let env = TestEnv::new();
    env.provider.fail_method(
        "authenticate_client_secret",
        Some(ProviderErrorKind::Unavailable),
    );
    let auth = basic_auth(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET);
    let response = token(&env, &[("grant_type", "refresh_token")], Some(&auth)).await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn provider_rejections_keep_their_code_and_description() {
    let env = TestEnv::new();
    let code = env
        .provider
        .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, true, None);
    env.provider.reject_exchanges(Some((
        TokenErrorCode::InvalidGrant,
        "The authorization code is invalid",
    )));
    let body = check_token(&env, &code_form(&code), None, 400, Some("invalid_grant")).await;
    assert_eq!(
        body["error_description"],
        "The authorization code is invalid"
    );
}

#[tokio::test]
async fn the_full_code_flow_through_the_authorization_endpoint() {
    let env = TestEnv::new();
    let authorize =
        crate::authorize::AuthorizationHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let query = form(&[
        ("client_id", POST_CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("code_challenge", PKCE_CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "test_state"),
        ("resource", RESOURCE),
    ]);
    let uri = format!("https://auth.example.com/authorize?{query}");
    let response = authorize.handle(request(Method::GET, &uri, "")).await;
    assert_eq!(response.status(), 302);
    let params = location_params(&response);
    assert_eq!(params["state"], "test_state");
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", POST_CLIENT_ID),
        ("client_secret", POST_CLIENT_SECRET),
        ("code", params["code"].as_str()),
        ("code_verifier", PKCE_VERIFIER),
        ("redirect_uri", REDIRECT_URI),
        ("resource", RESOURCE),
    ];
    let body = check_token(&env, &form, None, 200, None).await;
    for member in ["access_token", "token_type", "refresh_token", "expires_in"] {
        assert!(body.get(member).is_some(), "{member}");
    }
    let access = env
        .provider
        .access_token(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(access.client_id, POST_CLIENT_ID);
    // The request named no scope: the authorization endpoint applied the RFC 6749 §3.3
    // default, the client's registered scopes (the Python SDK leaves it to the provider).
    assert_eq!(access.scopes, ["read", "write", "profile"]);
    assert_eq!(access.resource.as_deref(), Some(RESOURCE));
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", POST_CLIENT_ID),
        ("client_secret", POST_CLIENT_SECRET),
        ("refresh_token", body["refresh_token"].as_str().unwrap()),
        // Unknown parameters are ignored (RFC 6749 §3.2).
        ("redirect_uri", REDIRECT_URI),
    ];
    let refreshed = check_token(&env, &refresh, None, 200, None).await;
    assert_ne!(refreshed["access_token"], body["access_token"]);
    let record = env
        .provider
        .access_token(refreshed["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(record.subject.as_deref(), Some("test-user"));
    assert_eq!(record.resource.as_deref(), Some(RESOURCE));
}

#[tokio::test]
async fn methods_and_sizes_are_checked_first() {
    let env = TestEnv::new();
    let handler = TokenHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    for method in [Method::GET, Method::PUT, Method::OPTIONS, Method::HEAD] {
        let response = handler.handle(request(method, TOKEN_URI, "")).await;
        assert_eq!(response.status(), 405);
        assert_eq!(header(&response, "allow"), Some("POST"));
    }
    let small = TokenHandler::new(
        Arc::clone(&env.provider),
        env.ctx.clone().with_body_limit(16),
    );
    // The size is checked before the method, as the Python SDK does for every method.
    for method in [Method::POST, Method::OPTIONS] {
        let response = small
            .handle(request(method, TOKEN_URI, "x".repeat(17)))
            .await;
        assert_eq!(response.status(), 413);
    }
}

#[tokio::test]
async fn arbitrary_bytes_never_panic() {
    let env = TestEnv::new();
    let handler = TokenHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let bodies: [&[u8]; 5] = [
        b"\xff\xfe",
        b"%%%&&&===",
        b"grant_type=%FF&client_id=public-client",
        b"client_id=public-client&grant_type=authorization_code&code=%00&code_verifier=%FF",
        b"client_id=public-client&grant_type=refresh_token&refresh_token=\xff&scope=%20%20",
    ];
    for body in bodies {
        let response = handler
            .handle(request(
                Method::POST,
                TOKEN_URI,
                Bytes::copy_from_slice(body),
            ))
            .await;
        assert!(response.status().is_client_error(), "{body:?}");
    }
}

/// A form, an optional `Authorization` value, the expected status and error code.
type RefusalCase<'a> = (Vec<(&'a str, &'a str)>, Option<String>, u16, &'a str);

#[tokio::test]
async fn control_characters_and_oversized_values_are_refused_before_the_provider() {
    let env = TestEnv::new();
    env.provider.fail_with(Some(ProviderErrorKind::Internal));
    let nul_id = format!("{PUBLIC_CLIENT_ID}\u{0}");
    let long_scope = vec!["read"; 65].join(" ");
    let long_resource = format!("{RESOURCE}/{}", "x".repeat(2048));
    let nul_assertion = client_assertion_for("jwt-client\u{0}");
    let code = |extra: (&'static str, &'static str)| {
        let mut form = code_form("code");
        form.push(extra);
        form
    };
    #[rustfmt::skip]
    let cases: Vec<RefusalCase<'_>> = vec![
        (vec![("grant_type", "authorization_code"), ("client_id", &nul_id)], None, 400, "invalid_request"),
        (code(("state", "x\u{1}")), None, 400, "invalid_request"),
        (vec![("grant_type", "refresh_token"), ("refresh_token", "r\u{7f}")], None, 400, "invalid_request"),
        (vec![("grant_type", "client_credentials")], Some(basic_auth(&format!("{BASIC_CLIENT_ID}\u{0}"), BASIC_CLIENT_SECRET)), 400, "invalid_request"),
        (vec![("grant_type", "client_credentials")], Some(basic_auth(BASIC_CLIENT_ID, "secret\u{0}")), 400, "invalid_request"),
        (vec![("grant_type", "client_credentials"), ("client_assertion_type", mcp_auth_types::CLIENT_ASSERTION_TYPE_JWT_BEARER), ("client_assertion", &nul_assertion)], None, 400, "invalid_request"),
    ];
    for (form_pairs, auth, status, error) in cases {
        check_token(&env, &form_pairs, auth.as_deref(), status, Some(error)).await;
    }
    // Over the bounds, with a working provider: refused by the endpoint, not by the grant.
    let env = TestEnv::new();
    let code = env
        .provider
        .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, true, Some(RESOURCE));
    let mut form = code_form(&code);
    form.push(("scope", &long_scope));
    check_token(&env, &form, None, 400, Some("invalid_scope")).await;
    let mut form = code_form(&code);
    form.push(("resource", &long_resource));
    check_token(&env, &form, None, 400, Some("invalid_target")).await;
    assert!(
        env.provider.has_code(&code),
        "a refused request consumed the code"
    );
}

#[tokio::test]
async fn a_body_of_5000_distinct_names_is_invalid_request_and_bodies_over_64_kib_are_413() {
    let env = TestEnv::new();
    let handler = TokenHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    assert_eq!(handler.body_limit(), crate::limits::MAX_FORM_BODY_BYTES);
    let many: String = (0..5000).map(|i| format!("n{i:05}=&")).collect();
    let response = handler.handle(post_form(TOKEN_URI, &many, &[])).await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(error_code(&response).as_deref(), Some("invalid_request"));
    assert!(
        body_json(&response)["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("more than 64 parameters"))
    );
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "p".repeat(64 * 1024)
    );
    let response = handler.handle(post_form(TOKEN_URI, &big, &[])).await;
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(error_code(&response).as_deref(), Some("invalid_request"));
}
