use std::sync::atomic::Ordering;

use mcp_auth_core::ProviderErrorKind;

use super::*;
use crate::test_support::*;
use http::Method;

const REVOKE_URI: &str = "https://auth.example.com/revoke";

/// A form body, an `Authorization` header, the status and the error code.
type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a str>, u16, &'a str);

async fn revoke(env: &TestEnv, form_pairs: &[(&str, &str)], auth: Option<&str>) -> Response<Bytes> {
    let handler = RevocationHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    handler
        .handle(post_form(REVOKE_URI, &form(form_pairs), &headers))
        .await
}

/// Posts `form` and checks the status, the error code (`None`: the empty `200`) and
/// `Cache-Control: no-store`.
async fn check_revoke(
    env: &TestEnv,
    form_pairs: &[(&str, &str)],
    auth: Option<&str>,
    status: u16,
    error: Option<&str>,
) {
    let response = revoke(env, form_pairs, auth).await;
    assert_eq!(response.status().as_u16(), status, "{form_pairs:?}");
    assert_eq!(error_code(&response).as_deref(), error, "{form_pairs:?}");
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    if status == 200 {
        assert!(response.body().is_empty());
    }
}

fn revocations(env: &TestEnv) -> usize {
    env.provider.revocations.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_public_client_revokes_its_access_token_and_the_pair_goes() {
    let env = TestEnv::new();
    let (access, refresh) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
    let form = [("client_id", PUBLIC_CLIENT_ID), ("token", access.as_str())];
    check_revoke(&env, &form, None, 200, None).await;
    assert!(!env.provider.has_access_token(&access));
    assert!(!env.provider.has_refresh_token(&refresh));
    // Revoking again is still a 200.
    check_revoke(&env, &form, None, 200, None).await;
    assert_eq!(revocations(&env), 1);
}

#[tokio::test]
async fn every_client_authentication_method_can_revoke() {
    let env = TestEnv::new();
    let (post_access, _) = env.provider.issue_tokens(POST_CLIENT_ID, &["read"], None);
    let form = [
        ("client_id", POST_CLIENT_ID),
        ("client_secret", POST_CLIENT_SECRET),
        ("token", post_access.as_str()),
    ];
    check_revoke(&env, &form, None, 200, None).await;
    assert!(!env.provider.has_access_token(&post_access));
    // Basic, without client_id or client_secret in the body.
    let (_, basic_refresh) = env.provider.issue_tokens(BASIC_CLIENT_ID, &["read"], None);
    let auth = basic_auth(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET);
    let form = [("token", basic_refresh.as_str())];
    check_revoke(&env, &form, Some(&auth), 200, None).await;
    assert!(!env.provider.has_refresh_token(&basic_refresh));
}

#[tokio::test]
async fn refresh_tokens_are_found_with_or_without_the_hint() {
    // `asdf` is the Python SDK's "malformed" hint, which it refuses with invalid_request; RFC
    // 7009 §2.1 lets the server ignore a hint and search every token type, which we do.
    for hint in [
        None,
        Some("refresh_token"),
        Some("access_token"),
        Some("asdf"),
    ] {
        let env = TestEnv::new();
        let (access, refresh) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
        let mut form = vec![("client_id", PUBLIC_CLIENT_ID), ("token", refresh.as_str())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        check_revoke(&env, &form, None, 200, None).await;
        assert!(!env.provider.has_refresh_token(&refresh), "{hint:?}");
        assert!(!env.provider.has_access_token(&access), "{hint:?}");
    }
}

#[tokio::test]
async fn the_hint_decides_which_lookup_comes_first() {
    // With access-token lookups failing, a refresh token is still revoked when the hint sends
    // the search to refresh tokens first, and the failure surfaces otherwise.
    #[rustfmt::skip]
    let cases = [
        (Some("refresh_token"), 200),
        (None, 500),
        (Some("access_token"), 500),
    ];
    for (hint, status) in cases {
        let env = TestEnv::new();
        let (_, refresh) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
        env.provider
            .fail_method("load_access_token", Some(ProviderErrorKind::Internal));
        let mut form = vec![("client_id", PUBLIC_CLIENT_ID), ("token", refresh.as_str())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        let response = revoke(&env, &form, None).await;
        assert_eq!(response.status().as_u16(), status, "{hint:?}");
    }
}

#[tokio::test]
async fn unknown_and_foreign_tokens_get_the_same_200_and_are_left_alone() {
    let env = TestEnv::new();
    let (foreign_access, foreign_refresh) =
        env.provider.issue_tokens(POST_CLIENT_ID, &["read"], None);
    for token in [
        "invalid_token",
        foreign_access.as_str(),
        foreign_refresh.as_str(),
    ] {
        let form = [("client_id", PUBLIC_CLIENT_ID), ("token", token)];
        check_revoke(&env, &form, None, 200, None).await;
    }
    assert_eq!(revocations(&env), 0);
    assert!(env.provider.has_access_token(&foreign_access));
    assert!(env.provider.has_refresh_token(&foreign_refresh));
}

#[tokio::test]
async fn malformed_and_unauthenticated_requests_are_refused() {
    let env = TestEnv::new();
    let (access, _) = env.provider.issue_tokens(POST_CLIENT_ID, &["read"], None);
    let wrong_basic = basic_auth(BASIC_CLIENT_ID, "wrong");
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        (vec![("client_id", PUBLIC_CLIENT_ID)], None, 400, "invalid_request"),
        (vec![("client_id", PUBLIC_CLIENT_ID), ("token", "a"), ("token", "b")], None, 400, "invalid_request"),
        (vec![("token", access.as_str())], None, 401, "invalid_client"),
        (vec![("client_id", POST_CLIENT_ID), ("token", access.as_str())], None, 401, "invalid_client"),
        (vec![("client_id", POST_CLIENT_ID), ("client_secret", "wrong"), ("token", access.as_str())], None, 401, "invalid_client"),
        (vec![("token", access.as_str())], Some(&wrong_basic), 401, "invalid_client"),
        (vec![("client_secret", BASIC_CLIENT_SECRET), ("token", access.as_str())], Some(&wrong_basic), 400, "invalid_request"),
    ];
    for (form, auth, status, error) in cases {
        check_revoke(&env, &form, auth, status, Some(error)).await;
    }
    assert!(env.provider.has_access_token(&access));
}

#[tokio::test]
async fn a_failed_basic_authentication_carries_a_challenge() {
    let env = TestEnv::new();
    let auth = basic_auth(BASIC_CLIENT_ID, "wrong");
    let response = revoke(&env, &[("token", "t")], Some(&auth)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, "www-authenticate"),
        Some("Basic realm=\"https://auth.example.com\"")
    );
}

#[tokio::test]
async fn provider_failures_are_server_errors_without_their_cause() {
    for (method, status) in [
        ("get_client", 503),
        ("load_access_token", 503),
        ("revoke_token", 503),
    ] {
        let env = TestEnv::new();
        let (access, _) = env.provider.issue_tokens(PUBLIC_CLIENT_ID, &["read"], None);
        env.provider
            .fail_method(method, Some(ProviderErrorKind::Unavailable));
        let form = [("client_id", PUBLIC_CLIENT_ID), ("token", access.as_str())];
        let response = revoke(&env, &form, None).await;
        assert_eq!(response.status().as_u16(), status, "{method}");
        assert_eq!(
            error_code(&response).as_deref(),
            Some("temporarily_unavailable")
        );
        assert!(!String::from_utf8_lossy(response.body()).contains(FAILURE_CAUSE));
    }
}

#[tokio::test]
async fn methods_and_sizes_are_checked_first() {
    let env = TestEnv::new();
    let handler = RevocationHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    for method in [Method::GET, Method::DELETE, Method::OPTIONS] {
        let response = handler.handle(request(method, REVOKE_URI, "")).await;
        assert_eq!(response.status(), 405);
        assert_eq!(header(&response, "allow"), Some("POST"));
    }
    let small = RevocationHandler::new(
        Arc::clone(&env.provider),
        env.ctx.clone().with_body_limit(4),
    );
    let response = small
        .handle(request(Method::OPTIONS, REVOKE_URI, "token=abc"))
        .await;
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn the_whole_lifecycle_ends_in_revocation() {
    let env = TestEnv::new();
    let authorize =
        crate::authorize::AuthorizationHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let token = crate::token::TokenHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let query = form(&[
        ("client_id", POST_CLIENT_ID),
        ("response_type", "code"),
        ("code_challenge", PKCE_CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "test_state"),
    ]);
    let response = authorize
        .handle(request(Method::GET, &format!("{REVOKE_URI}?{query}"), ""))
        .await;
    let code = location_params(&response)["code"].clone();
    // The authorization request relied on the single registered URI, so the token request may
    // omit it.
    let exchange = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", POST_CLIENT_ID),
        ("client_secret", POST_CLIENT_SECRET),
        ("code", &code),
        ("code_verifier", PKCE_VERIFIER),
    ]);
    let response = token.handle(post_form(REVOKE_URI, &exchange, &[])).await;
    assert_eq!(response.status(), 200);
    let tokens = body_json(&response);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form_pairs = [
        ("client_id", POST_CLIENT_ID),
        ("client_secret", POST_CLIENT_SECRET),
        ("token", access),
    ];
    check_revoke(&env, &form_pairs, None, 200, None).await;
    assert!(env.provider.access_token(access).is_none());
    // The refresh token of the pair went with it.
    let refresh_form = form(&[
        ("grant_type", "refresh_token"),
        ("client_id", POST_CLIENT_ID),
        ("client_secret", POST_CLIENT_SECRET),
        ("refresh_token", refresh),
    ]);
    let response = token
        .handle(post_form(REVOKE_URI, &refresh_form, &[]))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(&response).as_deref(), Some("invalid_grant"));
}

#[tokio::test]
async fn arbitrary_bytes_never_panic() {
    let env = TestEnv::new();
    let handler = RevocationHandler::new(Arc::clone(&env.provider), env.ctx.clone());
    let bodies: [&[u8]; 4] = [
        b"\xff\xfe",
        b"token=%FF&client_id=public-client",
        b"client_id=public-client&token=\x00&token_type_hint=%00",
        b"&&&",
    ];
    for body in bodies {
        let response = handler
            .handle(request(
                Method::POST,
                REVOKE_URI,
                Bytes::copy_from_slice(body),
            ))
            .await;
        assert!(response.status().as_u16() < 500, "{body:?}");
    }
}
