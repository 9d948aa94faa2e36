//! The refresh token grant (RFC 6749 §6).

use mcp_auth_core::{OAuthAuthorizationServerProvider, TokenError};
use mcp_auth_types::{
    OAuthClientInformationFull, OAuthToken, RefreshTokenSecret, TokenErrorCode, split_scopes,
};

use super::{check_resource, reject, required};
use crate::context::HandlerContext;
use crate::form::Params;

/// The one description for a refresh token that does not exist, was issued to another client,
/// or has expired.
pub(super) const INVALID_REFRESH_TOKEN: &str = "refresh token is invalid or expired";

/// Exchanges a refresh token. A requested `scope` may narrow the token's scopes but never widen
/// them (RFC 6749 §6); without one, the token's scopes are kept.
///
/// The narrowing check is a literal subset test on purpose, without the resource server's
/// [`ScopeImplication`](crate::scope::ScopeImplication): it decides what the authorization
/// server records, not whether a token suffices, and a hierarchy here would let a holder of
/// `mcp` mint a token literally scoped `mcp:admin` (see the `scope` module).
pub(super) async fn exchange<P: OAuthAuthorizationServerProvider>(
    provider: &P,
    ctx: &HandlerContext,
    client: &OAuthClientInformationFull,
    params: &Params,
) -> Result<OAuthToken, TokenError> {
    let raw = required(params, "refresh_token")?;
    let record = provider
        .load_refresh_token(client, &RefreshTokenSecret::new(raw))
        .await?;
    let Some(record) = record.filter(|record| {
        let token = record.as_ref();
        token.client_id == client.client_id
            && token
                .expires_at
                .is_none_or(|expires_at| expires_at > ctx.now())
    }) else {
        return Err(reject(TokenErrorCode::InvalidGrant, INVALID_REFRESH_TOKEN));
    };
    let token = record.as_ref();

    let requested = split_scopes(params.get("scope"));
    let scopes = if requested.is_empty() {
        token.scopes.clone()
    } else {
        if let Some(scope) = requested.iter().find(|s| !token.scopes.contains(s)) {
            return Err(reject(
                TokenErrorCode::InvalidScope,
                format!("cannot request scope {scope:?}, which the refresh token does not grant"),
            ));
        }
        requested
    };
    check_resource(params.get("resource"), token.resource.as_deref())?;
    provider
        .exchange_refresh_token(client, record, scopes)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::token::tests::{check_token, refresh_form};

    /// Requested scope, status, error and the scopes the provider is asked for.
    type Case<'a> = (Option<&'a str>, u16, Option<&'a str>, &'a [&'a str]);

    fn issue(env: &TestEnv, client: &str, resource: Option<&str>) -> String {
        env.provider
            .issue_tokens(client, &["read", "write"], resource)
            .1
    }

    #[tokio::test]
    async fn a_refresh_rotates_the_pair_and_keeps_scopes_and_subject() {
        let env = TestEnv::new();
        let (access, refresh) =
            env.provider
                .issue_tokens(PUBLIC_CLIENT_ID, &["read", "write"], Some(RESOURCE));
        let body = check_token(&env, &refresh_form(&refresh), None, 200, None).await;
        assert_eq!(body["scope"], "read write");
        let new_access = body["access_token"].as_str().unwrap();
        assert_ne!(new_access, access);
        assert_ne!(body["refresh_token"].as_str().unwrap(), refresh);
        let record = env.provider.access_token(new_access).unwrap();
        assert_eq!(record.subject.as_deref(), Some("test-user"));
        assert_eq!(record.resource.as_deref(), Some(RESOURCE));
        assert!(!env.provider.has_access_token(&access));
        // The old refresh token is gone.
        check_token(
            &env,
            &refresh_form(&refresh),
            None,
            400,
            Some("invalid_grant"),
        )
        .await;
    }

    #[tokio::test]
    async fn missing_foreign_and_expired_tokens_are_indistinguishable() {
        let env = TestEnv::new();
        let foreign = issue(&env, POST_CLIENT_ID, None);
        let expiring = issue(&env, PUBLIC_CLIENT_ID, None);
        env.clock.advance(TOKEN_LIFETIME);
        for token in ["no-such-token", foreign.as_str(), expiring.as_str()] {
            let body =
                check_token(&env, &refresh_form(token), None, 400, Some("invalid_grant")).await;
            assert_eq!(body["error_description"], INVALID_REFRESH_TOKEN, "{token}");
        }
        assert!(env.provider.has_refresh_token(&foreign));
    }

    #[tokio::test]
    async fn requested_scopes_must_be_a_subset() {
        #[rustfmt::skip]
        let cases: [Case<'_>; 6] = [
            (None, 200, None, &["read", "write"]),
            (Some("read"), 200, None, &["read"]),
            (Some("write read"), 200, None, &["write", "read"]),
            (Some("  "), 200, None, &["read", "write"]),
            (Some("read write invalid_scope"), 400, Some("invalid_scope"), &[]),
            (Some("profile"), 400, Some("invalid_scope"), &[]),
        ];
        for (scope, status, error, granted) in cases {
            let env = TestEnv::new();
            let refresh = issue(&env, PUBLIC_CLIENT_ID, None);
            let mut form = refresh_form(&refresh);
            if let Some(scope) = scope {
                form.push(("scope", scope));
            }
            let body = check_token(&env, &form, None, status, error).await;
            if status == 200 {
                let seen = env.provider.last_refresh_scopes.lock().unwrap().clone();
                assert_eq!(seen.unwrap(), granted, "{scope:?}");
            } else {
                let description = body["error_description"].as_str().unwrap();
                assert!(
                    description.contains("cannot request scope"),
                    "{description}"
                );
                assert!(env.provider.has_refresh_token(&refresh));
            }
        }
    }

    #[tokio::test]
    async fn the_resource_must_be_the_resource_of_the_token() {
        #[rustfmt::skip]
        let cases = [
            (Some(RESOURCE), None, 200),
            (Some(RESOURCE), Some(RESOURCE), 200),
            (Some(RESOURCE), Some("https://other.example.com/mcp"), 400),
            (None, Some(RESOURCE), 400),
        ];
        for (granted, requested, status) in cases {
            let env = TestEnv::new();
            let refresh = issue(&env, PUBLIC_CLIENT_ID, granted);
            let mut form = refresh_form(&refresh);
            if let Some(requested) = requested {
                form.push(("resource", requested));
            }
            let error = (status == 400).then_some("invalid_target");
            check_token(&env, &form, None, status, error).await;
        }
    }

    #[tokio::test]
    async fn a_refresh_token_is_required() {
        let env = TestEnv::new();
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC_CLIENT_ID),
        ];
        check_token(&env, &form, None, 400, Some("invalid_request")).await;
    }

    #[tokio::test]
    async fn provider_rejections_pass_through() {
        let env = TestEnv::new();
        let refresh = issue(&env, PUBLIC_CLIENT_ID, None);
        env.provider.reject_exchanges(Some((
            TokenErrorCode::InvalidScope,
            "The requested scope is invalid",
        )));
        let body = check_token(
            &env,
            &refresh_form(&refresh),
            None,
            400,
            Some("invalid_scope"),
        )
        .await;
        assert_eq!(body["error_description"], "The requested scope is invalid");
    }
}
