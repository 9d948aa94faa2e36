//! The client credentials grant (RFC 6749 §4.4), for machine-to-machine MCP clients (MCP
//! client-credentials extension). Served only when the provider's capabilities include it; the
//! token handler checks that, and that the client registered for the grant, before calling
//! here. Never for a Client ID Metadata Document client, whatever its document lists.

use mcp_auth_core::{OAuthAuthorizationServerProvider, TokenError, is_metadata_document_client_id};
use mcp_auth_types::{OAuthClientInformationFull, OAuthToken, TokenErrorCode};

use super::reject;
use crate::authorize::validate_resource;
use crate::context::HandlerContext;
use crate::form::Params;

/// Checks the request and asks the provider for a token whose subject is the client itself.
pub(super) async fn exchange<P: OAuthAuthorizationServerProvider>(
    provider: &P,
    ctx: &HandlerContext,
    client: &OAuthClientInformationFull,
    params: &Params,
) -> Result<OAuthToken, TokenError> {
    // Anyone who can publish a JSON file is a metadata-document client: a token without a
    // user for such a client would be a token for a stranger. The resolver refuses documents
    // listing this grant; this check holds even if a resolver (or a cache) lets one through.
    if is_metadata_document_client_id(&client.client_id) {
        return Err(reject(
            TokenErrorCode::UnauthorizedClient,
            "the client_credentials grant is not available to a metadata document (URL) client",
        ));
    }
    // RFC 6749 §4.4: "The client credentials grant type MUST only be used by confidential
    // clients." The client did authenticate, so this is `unauthorized_client`.
    if !client.is_confidential() {
        return Err(reject(
            TokenErrorCode::UnauthorizedClient,
            "the client_credentials grant requires a confidential client",
        ));
    }
    // RFC 6749 §3.3: scopes beyond the client's registration are `invalid_scope`; none asked
    // means the client's registered scopes.
    let scopes = client
        .validate_scope(params.get("scope"))
        .map_err(|error| reject(TokenErrorCode::InvalidScope, error.to_string()))?
        .filter(|scopes| !scopes.is_empty());
    // RFC 8707 §2, as at the authorization endpoint: a named resource must be served; none
    // binds the token to this server's resource server, so it always has an audience.
    let resource = match params.get("resource") {
        None => ctx.settings.resource_server_url.clone(),
        Some(raw) => Some(
            validate_resource(raw, &ctx.settings)
                .map_err(|error| reject(TokenErrorCode::InvalidTarget, error.to_string()))?,
        ),
    };
    provider
        .exchange_client_credentials(client, scopes, resource)
        .await
}

#[cfg(test)]
mod tests {
    use mcp_auth_core::{AuthSettings, Capabilities};
    use mcp_auth_types::GrantType;

    use crate::test_support::*;
    use crate::token::tests::{check_refused_to_url_client, check_token};

    /// A client id in the metadata-document namespace (an https URL).
    const URL_CLIENT_ID: &str = "https://app.example/client.json";

    /// A form body.
    type Form<'a> = Vec<(&'a str, &'a str)>;
    /// Extra form fields, granted scopes, audience.
    type Success<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

    fn env(enabled: bool) -> TestEnv {
        let settings = AuthSettings::builder(ISSUER)
            .resource_server_url(RESOURCE)
            .build()
            .unwrap();
        let capabilities = if enabled {
            Capabilities::new().client_credentials()
        } else {
            Capabilities::new()
        };
        let env = TestEnv::with_capabilities(settings, capabilities);
        for id in [POST_CLIENT_ID, PUBLIC_CLIENT_ID, BASIC_CLIENT_ID] {
            set_grant_types(&env.provider, id, vec![GrantType::ClientCredentials]);
        }
        env
    }

    fn credentials_form<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", POST_CLIENT_ID),
            ("client_secret", POST_CLIENT_SECRET),
        ];
        form.extend_from_slice(extra);
        form
    }

    #[tokio::test]
    async fn a_confidential_client_gets_a_token_of_its_own() {
        // (extra form fields, granted scopes, audience)
        #[rustfmt::skip]
        let cases: [Success<'_>; 3] = [
            (&[], &["read", "write", "profile"], RESOURCE),
            (&[("scope", "read")], &["read"], RESOURCE),
            (&[("resource", "HTTPS://MCP.example.com/mcp")], &["read", "write", "profile"], RESOURCE),
        ];
        for (extra, scopes, resource) in cases {
            let env = env(true);
            let body = check_token(&env, &credentials_form(extra), None, 200, None).await;
            assert!(body.get("refresh_token").is_none(), "{extra:?}");
            let record = env
                .provider
                .access_token(body["access_token"].as_str().unwrap())
                .unwrap();
            assert_eq!(record.scopes, scopes, "{extra:?}");
            assert_eq!(record.subject.as_deref(), Some(POST_CLIENT_ID));
            assert_eq!(record.resource.as_deref(), Some(resource));
        }
    }

    #[tokio::test]
    async fn refusals() {
        let public = [
            ("grant_type", "client_credentials"),
            ("client_id", PUBLIC_CLIENT_ID),
        ];
        #[rustfmt::skip]
        let cases: Vec<(bool, Form<'_>, u16, &str)> = vec![
            (false, credentials_form(&[]), 400, "unsupported_grant_type"),
            (true, public.to_vec(), 400, "unauthorized_client"),
            (true, credentials_form(&[("scope", "read admin")]), 400, "invalid_scope"),
            (true, credentials_form(&[("resource", "https://other.example.com/x")]), 400, "invalid_target"),
            (true, vec![("grant_type", "client_credentials"), ("client_id", POST_CLIENT_ID), ("client_secret", "wrong")], 401, "invalid_client"),
        ];
        for (enabled, form, status, error) in cases {
            let env = env(enabled);
            check_token(&env, &form, None, status, Some(error)).await;
        }
        // A client not registered for the grant is `unauthorized_client`.
        let env = env(true);
        set_grant_types(
            &env.provider,
            POST_CLIENT_ID,
            vec![GrantType::AuthorizationCode],
        );
        check_token(
            &env,
            &credentials_form(&[]),
            None,
            400,
            Some("unauthorized_client"),
        )
        .await;
    }

    #[tokio::test]
    async fn a_url_client_is_refused_whatever_its_grant_list_says() {
        let env = env(true);
        for client_id in [URL_CLIENT_ID, "HTTPS://app.example/client.json"] {
            // A confidential URL client registered for the grant: no resolver would produce
            // it, which is the point — the endpoint does not rely on the resolver.
            let mut url_client = post_client();
            url_client.client_id = client_id.to_owned();
            url_client.metadata.grant_types = vec![GrantType::ClientCredentials];
            env.provider.add_client(url_client);
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", POST_CLIENT_SECRET),
            ];
            check_refused_to_url_client(&env, &form).await;
        }
        // The same client under a non-URL id gets its token.
        check_token(&env, &credentials_form(&[]), None, 200, None).await;
    }

    #[tokio::test]
    async fn a_basic_client_may_use_the_grant() {
        let env = env(true);
        let auth = basic_auth(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET);
        let form = [("grant_type", "client_credentials"), ("scope", "read")];
        let body = check_token(&env, &form, Some(&auth), 200, None).await;
        assert_eq!(body["scope"], "read");
    }
}
