//! The RFC 7523 jwt-bearer grant carrying a SEP-990 Identity Assertion JWT Authorization Grant
//! (ID-JAG). Served only when the provider's capabilities include it; the token handler checks that
//! before calling here. Never for a Client ID Metadata Document client, whatever its document
//! lists.

use mcp_auth_core::{OAuthAuthorizationServerProvider, TokenError, is_metadata_document_client_id};
use mcp_auth_types::{
    Assertion, IdentityAssertionParams, OAuthClientInformationFull, OAuthToken, TokenErrorCode,
    split_scopes,
};

use super::{reject, required};
use crate::authorize::validate_resource;
use crate::context::HandlerContext;
use crate::form::Params;

/// Hands a jwt-bearer request to the provider, which validates the assertion (RFC 7523 §3,
/// SEP-990 §5.1).
pub(super) async fn exchange<P: OAuthAuthorizationServerProvider>(
    provider: &P,
    ctx: &HandlerContext,
    client: &OAuthClientInformationFull,
    params: &Params,
) -> Result<OAuthToken, TokenError> {
    // SEP-990 has the identity provider issue ID-JAGs to clients it knows; a metadata-document
    // client is anyone who can publish a JSON file. The resolver refuses documents listing
    // this grant; this check holds even if a resolver (or a cache) lets one through.
    if is_metadata_document_client_id(&client.client_id) {
        return Err(reject(
            TokenErrorCode::UnauthorizedClient,
            "the jwt-bearer grant is not available to a metadata document (URL) client",
        ));
    }
    // SEP-990 §5.1: only confidential clients may present an ID-JAG. The client did
    // authenticate, so this is `unauthorized_client`, not `invalid_client` (RFC 6749 §5.2).
    if !client.is_confidential() {
        return Err(reject(
            TokenErrorCode::UnauthorizedClient,
            "the jwt-bearer grant requires a confidential client",
        ));
    }
    let assertion = required(params, "assertion")?;
    let scopes = Some(split_scopes(params.get("scope"))).filter(|scopes| !scopes.is_empty());
    // RFC 8707: the client's resource is checked like at the authorization endpoint; the
    // provider must still restrict the token to the ID-JAG's own `resource` claim.
    let resource = params
        .get("resource")
        .map(|raw| validate_resource(raw, &ctx.settings))
        .transpose()
        .map_err(|error| reject(TokenErrorCode::InvalidTarget, error.to_string()))?;
    let mut request = IdentityAssertionParams::new(Assertion::new(assertion));
    request.scopes = scopes;
    request.resource = resource;
    provider.exchange_identity_assertion(client, request).await
}

#[cfg(test)]
mod tests {
    use mcp_auth_core::{AuthSettings, Capabilities};
    use mcp_auth_types::{GrantType, JWT_BEARER_GRANT_TYPE};

    use crate::test_support::*;
    use crate::token::tests::{check_refused_to_url_client, check_token};

    /// An environment with the grant enabled and the post and public clients registered for it.
    fn env(enabled: bool) -> TestEnv {
        let settings = AuthSettings::builder(ISSUER)
            .resource_server_url(RESOURCE)
            .build()
            .unwrap();
        let capabilities = if enabled {
            Capabilities::new().identity_assertion()
        } else {
            Capabilities::new()
        };
        let env = TestEnv::with_capabilities(settings, capabilities);
        for id in [POST_CLIENT_ID, PUBLIC_CLIENT_ID] {
            set_grant_types(&env.provider, id, vec![GrantType::JwtBearer]);
        }
        env
    }

    /// Grant enabled, form, status, error, and whether the provider is reached.
    type Case<'a> = (bool, Vec<(&'a str, &'a str)>, u16, &'a str, bool);

    fn assertion_form<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut form = vec![
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("client_id", POST_CLIENT_ID),
            ("client_secret", POST_CLIENT_SECRET),
            ("assertion", VALID_ASSERTION),
        ];
        for (name, value) in extra {
            form.retain(|(n, _)| n != name);
            form.push((name, value));
        }
        form
    }

    #[tokio::test]
    async fn a_valid_assertion_is_exchanged() {
        let env = env(true);
        let form = assertion_form(&[
            ("scope", "read"),
            ("resource", "HTTPS://MCP.example.com/mcp"),
        ]);
        let body = check_token(&env, &form, None, 200, None).await;
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("issued_token_type").is_none());
        assert!(body.get("refresh_token").is_none());
        let record = env
            .provider
            .access_token(body["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(record.scopes, ["read"]);
        assert_eq!(record.subject.as_deref(), Some("enterprise-user"));
        let seen = env.provider.last_assertion.lock().unwrap().clone().unwrap();
        assert_eq!(seen.assertion.expose_secret(), VALID_ASSERTION);
        assert_eq!(seen.scopes, Some(vec!["read".to_owned()]));
        assert_eq!(seen.resource.as_deref(), Some(RESOURCE));
    }

    #[tokio::test]
    async fn without_scope_or_resource_the_provider_gets_none() {
        let env = env(true);
        check_token(&env, &assertion_form(&[]), None, 200, None).await;
        let seen = env.provider.last_assertion.lock().unwrap().clone().unwrap();
        assert_eq!(seen.scopes, None);
        assert_eq!(seen.resource, None);
    }

    #[tokio::test]
    async fn refusals() {
        let public = [
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("client_id", PUBLIC_CLIENT_ID),
            ("assertion", VALID_ASSERTION),
        ];
        let no_assertion = [
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("client_id", POST_CLIENT_ID),
            ("client_secret", POST_CLIENT_SECRET),
        ];
        let no_secret = [
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("client_id", POST_CLIENT_ID),
            ("assertion", VALID_ASSERTION),
        ];
        #[rustfmt::skip]
        let cases: Vec<Case<'_>> = vec![
            // (enabled, form, status, error, reaches the provider)
            (true, assertion_form(&[("assertion", "forged")]), 400, "invalid_grant", true),
            (false, assertion_form(&[]), 400, "unsupported_grant_type", false),
            (true, public.to_vec(), 400, "unauthorized_client", false),
            (true, no_assertion.to_vec(), 400, "invalid_request", false),
            (true, no_secret.to_vec(), 401, "invalid_client", false),
            (true, assertion_form(&[("resource", "https://other.example.com/x")]), 400, "invalid_target", false),
            (true, assertion_form(&[("resource", "https://mcp.example.com/mcp#f")]), 400, "invalid_target", false),
        ];
        for (enabled, form, status, error, reaches) in cases {
            let env = env(enabled);
            let body = check_token(&env, &form, None, status, Some(error)).await;
            let seen = env.provider.last_assertion.lock().unwrap().is_some();
            assert_eq!(seen, reaches, "{form:?}: {body}");
        }
    }

    #[tokio::test]
    async fn the_provider_description_is_passed_through() {
        let env = env(true);
        let body = check_token(
            &env,
            &assertion_form(&[("assertion", "forged")]),
            None,
            400,
            Some("invalid_grant"),
        )
        .await;
        assert_eq!(
            body["error_description"],
            "the identity assertion is not valid"
        );
    }

    #[tokio::test]
    async fn a_client_not_registered_for_the_grant_is_unauthorized() {
        // The Python SDK answers `unsupported_grant_type`; RFC 6749 §5.2 says
        // `unauthorized_client` for a grant the server supports but the client may not use.
        let env = env(true);
        set_grant_types(
            &env.provider,
            POST_CLIENT_ID,
            vec![GrantType::AuthorizationCode],
        );
        check_token(
            &env,
            &assertion_form(&[]),
            None,
            400,
            Some("unauthorized_client"),
        )
        .await;
        assert!(env.provider.last_assertion.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn a_url_client_is_refused_before_the_provider_whatever_its_grant_list_says() {
        let env = env(true);
        for client_id in ["https://app.example/client.json", "Https://app.example/c"] {
            // A confidential URL client registered for the grant: no resolver would produce
            // it, which is the point — the endpoint does not rely on the resolver.
            let mut client = post_client();
            client.client_id = client_id.to_owned();
            client.metadata.grant_types = vec![GrantType::JwtBearer];
            env.provider.add_client(client);
            let form = assertion_form(&[("client_id", client_id)]);
            check_refused_to_url_client(&env, &form).await;
            assert!(env.provider.last_assertion.lock().unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn a_basic_client_may_present_an_assertion() {
        let env = env(true);
        set_grant_types(&env.provider, BASIC_CLIENT_ID, vec![GrantType::JwtBearer]);
        let auth = basic_auth(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET);
        let form = [
            ("grant_type", JWT_BEARER_GRANT_TYPE),
            ("assertion", VALID_ASSERTION),
        ];
        check_token(&env, &form, Some(&auth), 200, None).await;
    }
}
