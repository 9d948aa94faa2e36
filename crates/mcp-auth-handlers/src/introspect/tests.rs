use mcp_auth_core::ProviderErrorKind;
use serde_json::json;

use super::*;
use crate::test_support::*;

const INTROSPECT_URI: &str = "https://auth.example.com/introspect";

async fn introspect(
    env: &TestEnv,
    form_pairs: &[(&str, &str)],
    auth: Option<&str>,
) -> Response<Bytes> {
    let handler = IntrospectionHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    let response = handler
        .handle(post_form(INTROSPECT_URI, &form(form_pairs), &headers))
        .await;
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    response
}

/// The post client's credentials and `token`.
fn as_post_client(token: &str) -> Vec<(&str, &str)> {
    vec![
        ("client_id", POST_CLIENT_ID),
        ("client_secret", POST_CLIENT_SECRET),
        ("token", token),
    ]
}

#[tokio::test]
async fn an_active_token_is_described_to_any_confidential_client() {
    let env = TestEnv::new();
    let (access, _) = env.provider.issue_tokens(
        PUBLIC_CLIENT_ID,
        &["read", "write"],
        Some("https://rs.example/mcp"),
    );
    // Issued to the public client; the post client (a resource server) asks, by secret in
    // the body and by Basic.
    let by_body = introspect(&env, &as_post_client(&access), None).await;
    let auth = basic_auth(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET);
    let by_basic = introspect(&env, &[("token", access.as_str())], Some(&auth)).await;
    for response in [by_body, by_basic] {
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(&response);
        assert_eq!(
            body,
            json!({
                "active": true, "scope": "read write", "client_id": PUBLIC_CLIENT_ID,
                "sub": "test-user", "aud": "https://rs.example/mcp",
                "exp": T0 + TOKEN_LIFETIME, "token_type": "Bearer",
            })
        );
    }
}

#[tokio::test]
async fn unknown_expired_revoked_and_refresh_tokens_are_exactly_inactive() {
    let env = TestEnv::new();
    let (access, refresh) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
    let (revoked, _) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
    let loaded = env
        .provider
        .load_access_token(&AccessTokenSecret::new(revoked.as_str()))
        .await
        .unwrap()
        .expect("issued");
    env.provider
        .revoke_token(mcp_auth_core::RevocableToken::Access(loaded))
        .await
        .unwrap();
    for token in ["made-up-token", refresh.as_str(), revoked.as_str()] {
        let response = introspect(&env, &as_post_client(token), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{token}");
        assert_eq!(body_json(&response), json!({"active": false}), "{token}");
    }
    // With the refresh-token hint too: only access tokens are introspected.
    let mut form = as_post_client(&refresh);
    form.push(("token_type_hint", "refresh_token"));
    assert_eq!(
        body_json(&introspect(&env, &form, None).await),
        json!({"active": false})
    );
    env.clock.advance(TOKEN_LIFETIME + 1);
    let response = introspect(&env, &as_post_client(&access), None).await;
    assert_eq!(body_json(&response), json!({"active": false}));
}

/// A form, an `Authorization` header, the status and the error.
type Refusal<'a> = (Vec<(&'a str, &'a str)>, Option<String>, u16, &'a str);

#[tokio::test]
async fn public_unauthenticated_and_malformed_callers_are_refused() {
    let env = TestEnv::new();
    let (access, _) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
    let cases: [Refusal; 5] = [
        // A public client proves nothing about itself.
        (
            vec![("client_id", PUBLIC_CLIENT_ID), ("token", &access)],
            None,
            401,
            "invalid_client",
        ),
        (vec![("token", &access)], None, 401, "invalid_client"),
        (
            vec![
                ("client_id", POST_CLIENT_ID),
                ("client_secret", "wrong"),
                ("token", &access),
            ],
            None,
            401,
            "invalid_client",
        ),
        (
            vec![("token", &access)],
            Some(basic_auth(BASIC_CLIENT_ID, "wrong")),
            401,
            "invalid_client",
        ),
        (
            vec![
                ("client_id", POST_CLIENT_ID),
                ("client_secret", POST_CLIENT_SECRET),
            ],
            None,
            400,
            "invalid_request",
        ),
    ];
    for (pairs, auth, status, error) in cases {
        let response = introspect(&env, &pairs, auth.as_deref()).await;
        assert_eq!(response.status().as_u16(), status, "{pairs:?}");
        assert_eq!(error_code(&response).as_deref(), Some(error), "{pairs:?}");
        assert!(!String::from_utf8_lossy(response.body()).contains("active"));
    }
}

#[tokio::test]
async fn a_private_key_jwt_client_introspects_with_its_assertion() {
    let env = TestEnv::new();
    let (access, _) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
    let form = [
        ("client_id", JWT_CLIENT_ID),
        (
            "client_assertion_type",
            mcp_auth_types::CLIENT_ASSERTION_TYPE_JWT_BEARER,
        ),
        ("client_assertion", VALID_CLIENT_ASSERTION),
        ("token", access.as_str()),
    ];
    let response = introspect(&env, &form, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response)["active"], true);
}

#[tokio::test]
async fn a_failing_store_is_temporarily_unavailable_never_inactive() {
    let env = TestEnv::new();
    let (access, _) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
    env.provider
        .fail_method("load_access_token", Some(ProviderErrorKind::Unavailable));
    let response = introspect(&env, &as_post_client(&access), None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        error_code(&response).as_deref(),
        Some("temporarily_unavailable")
    );
}

#[tokio::test]
async fn only_post_is_served_and_bodies_are_bounded() {
    let env = TestEnv::new();
    let handler = IntrospectionHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let get = handler
        .handle(request(http::Method::GET, INTROSPECT_URI, Bytes::new()))
        .await;
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let big = "x".repeat(handler.body_limit() + 1);
    let too_big = handler.handle(post_form(INTROSPECT_URI, &big, &[])).await;
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
