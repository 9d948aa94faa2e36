//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5-4.6).

use mcp_auth_core::{OAuthAuthorizationServerProvider, TokenError};
use mcp_auth_types::{
    AuthorizationCodeSecret, CodeVerifier, OAuthClientInformationFull, OAuthToken, TokenErrorCode,
    is_valid_pkce_string, verify_s256,
};

use super::{check_resource, reject, required};
use crate::context::HandlerContext;
use crate::form::Params;

/// The one description for a code that does not exist, was issued to another client, or has
/// expired, so that a client learns nothing about codes that are not its own.
pub(super) const INVALID_CODE: &str = "authorization code is invalid or expired";

/// Exchanges an authorization code: `code` and `code_verifier` are required, `redirect_uri`
/// when the authorization request named one.
pub(super) async fn exchange<P: OAuthAuthorizationServerProvider>(
    provider: &P,
    ctx: &HandlerContext,
    client: &OAuthClientInformationFull,
    params: &Params,
) -> Result<OAuthToken, TokenError> {
    let code = required(params, "code")?;
    let verifier = required(params, "code_verifier")?;
    // RFC 7636 §4.1 syntax. A malformed verifier is a malformed request (RFC 6749 §5.2
    // `invalid_request`); the Python SDK hashes it anyway and answers `invalid_grant`.
    if !is_valid_pkce_string(verifier) {
        return Err(reject(
            TokenErrorCode::InvalidRequest,
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)",
        ));
    }

    let record = provider
        .load_authorization_code(client, &AuthorizationCodeSecret::new(code))
        .await?;
    // The provider should not return another client's or an expired code, but the handler
    // does not rely on it (RFC 6749 §4.1.3, §10.5).
    let Some(record) = record.filter(|record| {
        let code = record.as_ref();
        code.client_id == client.client_id && code.expires_at > ctx.now()
    }) else {
        return Err(reject(TokenErrorCode::InvalidGrant, INVALID_CODE));
    };
    let code = record.as_ref();

    // RFC 6749 §4.1.3: `redirect_uri` is required when the authorization request included it,
    // and must then be identical. A URI sent although the authorization request relied on the
    // single registered one must still be that URI. Strings are compared exactly; a mismatch
    // is `invalid_grant` (RFC 6749 §5.2), where the Python SDK answers `invalid_request`.
    match params.get("redirect_uri") {
        None if code.redirect_uri_provided_explicitly => {
            return Err(reject(
                TokenErrorCode::InvalidRequest,
                "redirect_uri is required because the authorization request included it",
            ));
        }
        Some(uri) if uri != code.redirect_uri => {
            return Err(reject(
                TokenErrorCode::InvalidGrant,
                "redirect_uri does not match the one of the authorization request",
            ));
        }
        _ => {}
    }

    // RFC 7636 §4.6, compared in constant time.
    if !verify_s256(&CodeVerifier::new(verifier), &code.code_challenge) {
        return Err(reject(
            TokenErrorCode::InvalidGrant,
            "incorrect code_verifier",
        ));
    }
    check_resource(params.get("resource"), code.resource.as_deref())?;
    provider.exchange_authorization_code(client, record).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::test_support::*;
    use crate::token::TokenHandler;
    use crate::token::tests::{check_token, code_form};

    /// Stores a code for the public client (explicit redirect URI, no resource).
    fn code(env: &TestEnv) -> String {
        env.provider
            .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, true, None)
    }

    #[tokio::test]
    async fn a_valid_code_is_exchanged_once() {
        let env = TestEnv::new();
        let code = code(&env);
        let body = check_token(&env, &code_form(&code), None, 200, None).await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "read write");
        let access = body["access_token"].as_str().unwrap();
        let record = env.provider.access_token(access).unwrap();
        assert_eq!(record.client_id, PUBLIC_CLIENT_ID);
        assert_eq!(record.subject.as_deref(), Some("test-user"));
        assert!(!env.provider.has_code(&code));
        let body = check_token(&env, &code_form(&code), None, 400, Some("invalid_grant")).await;
        assert_eq!(body["error_description"], INVALID_CODE);
    }

    #[tokio::test]
    async fn missing_foreign_and_expired_codes_are_indistinguishable() {
        let env = TestEnv::new();
        let foreign = env
            .provider
            .insert_code(POST_CLIENT_ID, REDIRECT_URI, true, None);
        let expiring = code(&env);
        env.clock.advance(CODE_LIFETIME);
        for code in ["no-such-code", foreign.as_str(), expiring.as_str()] {
            let body = check_token(&env, &code_form(code), None, 400, Some("invalid_grant")).await;
            assert_eq!(body["error_description"], INVALID_CODE, "{code}");
        }
        // The foreign code was not consumed by the failed attempt.
        assert!(env.provider.has_code(&foreign));
    }

    #[tokio::test]
    async fn a_code_is_valid_until_its_expiry() {
        let env = TestEnv::new();
        let code = code(&env);
        env.clock.advance(CODE_LIFETIME - 1);
        check_token(&env, &code_form(&code), None, 200, None).await;
    }

    #[tokio::test]
    async fn request_checks() {
        let short = "a".repeat(42);
        let wrong = "b".repeat(43);
        #[rustfmt::skip]
        let cases: [(&str, Option<&str>, u16, &str); 11] = [
            ("code", None, 400, "invalid_request"),
            ("code_verifier", None, 400, "invalid_request"),
            ("code_verifier", Some(&short), 400, "invalid_request"),
            ("code_verifier", Some("incorrect_code_verifier"), 400, "invalid_request"),
            ("code_verifier", Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+"), 400, "invalid_request"),
            ("code_verifier", Some(&wrong), 400, "invalid_grant"),
            ("redirect_uri", None, 400, "invalid_request"),
            ("redirect_uri", Some("https://client.example.com/other-callback"), 400, "invalid_grant"),
            ("redirect_uri", Some("https://client.example.com/callback/"), 400, "invalid_grant"),
            ("resource", Some(RESOURCE), 400, "invalid_target"),
            ("grant_type", None, 400, "invalid_request"),
        ];
        for (name, value, status, error) in cases {
            let env = TestEnv::new();
            let code = code(&env);
            let mut form = code_form(&code);
            form.retain(|(n, _)| *n != name);
            if let Some(value) = value {
                form.push((name, value));
            }
            check_token(&env, &form, None, status, Some(error)).await;
            // A refused request leaves the code redeemable.
            check_token(&env, &code_form(&code), None, 200, None).await;
        }
    }

    #[tokio::test]
    async fn the_description_of_a_wrong_verifier_is_the_python_one() {
        let env = TestEnv::new();
        let code = code(&env);
        let mut form = code_form(&code);
        let wrong = "0".repeat(64);
        form.retain(|(n, _)| *n != "code_verifier");
        form.push(("code_verifier", &wrong));
        let body = check_token(&env, &form, None, 400, Some("invalid_grant")).await;
        assert_eq!(body["error_description"], "incorrect code_verifier");
    }

    #[tokio::test]
    async fn an_implicit_redirect_uri_may_be_omitted_or_repeated_exactly() {
        for (sent, status) in [
            (None, 200),
            (Some(REDIRECT_URI), 200),
            (Some("https://client.example.com/other"), 400),
        ] {
            let env = TestEnv::new();
            let code = env
                .provider
                .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, false, None);
            let mut form = code_form(&code);
            form.retain(|(n, _)| *n != "redirect_uri");
            if let Some(sent) = sent {
                form.push(("redirect_uri", sent));
            }
            let error = (status == 400).then_some("invalid_grant");
            check_token(&env, &form, None, status, error).await;
        }
    }

    #[tokio::test]
    async fn the_resource_must_be_the_resource_of_the_code() {
        #[rustfmt::skip]
        let cases = [
            (Some(RESOURCE), None, 200),
            (Some(RESOURCE), Some(RESOURCE), 200),
            (Some(RESOURCE), Some("HTTPS://MCP.EXAMPLE.COM/mcp"), 200),
            (Some(RESOURCE), Some("https://mcp.example.com/mcp#f"), 400),
            (Some(RESOURCE), Some("https://other.example.com/mcp"), 400),
            (Some(RESOURCE), Some("https://mcp.example.com/mcp/tools"), 400),
            (None, Some(RESOURCE), 400),
        ];
        for (granted, requested, status) in cases {
            let env = TestEnv::new();
            let code = env
                .provider
                .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, true, granted);
            let mut form = code_form(&code);
            if let Some(requested) = requested {
                form.push(("resource", requested));
            }
            let error = (status == 400).then_some("invalid_target");
            let body = check_token(&env, &form, None, status, error).await;
            if status == 200 {
                let access = body["access_token"].as_str().unwrap();
                let record = env.provider.access_token(access).unwrap();
                assert_eq!(record.resource.as_deref(), granted);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn code_is_single_use_under_concurrent_redemption() {
        let env = TestEnv::new();
        let handler = TokenHandler::new(Arc::clone(&env.provider), env.ctx.clone());
        for _ in 0..20 {
            let code = code(&env);
            let body = form(&code_form(&code));
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let handler = handler.clone();
                    let body = body.clone();
                    tokio::spawn(async move {
                        handler
                            .handle(post_form("https://auth.example.com/token", &body, &[]))
                            .await
                    })
                })
                .collect();
            let mut ok = 0;
            for task in tasks {
                let response = task.await.unwrap();
                match response.status().as_u16() {
                    200 => ok += 1,
                    400 => assert_eq!(error_code(&response).as_deref(), Some("invalid_grant")),
                    other => panic!("unexpected status {other}"),
                }
            }
            assert_eq!(ok, 1);
        }
    }

    #[tokio::test]
    async fn provider_rejections_and_failures_pass_through() {
        let env = TestEnv::new();
        let code = code(&env);
        env.provider
            .fail_with(Some(mcp_auth_core::ProviderErrorKind::Unavailable));
        let response = crate::token::tests::token(&env, &code_form(&code), None).await;
        assert_eq!(response.status(), 503);
        assert!(!String::from_utf8_lossy(response.body()).contains(FAILURE_CAUSE));
        env.provider.fail_with(None);
        check_token(&env, &code_form(&code), None, 200, None).await;
    }
}
