//! The token endpoint (RFC 6749 §3.2, §5), a port of the Python SDK's `handlers/token.py`.
//!
//! A request is parsed (a parameter sent twice is `invalid_request`, RFC 6749 §3.2), its client
//! authenticated ([`ClientAuthenticator`]), its grant type checked against the server and the
//! client, and the grant handled by one submodule per grant type: `authorization_code`
//! (RFC 6749 §4.1.3), `refresh_token` (RFC 6749 §6), `identity_assertion` (RFC 7523
//! jwt-bearer carrying a SEP-990 ID-JAG) and `client_credentials` (RFC 6749 §4.4).
//!
//! Every response, success or error, carries `Cache-Control: no-store` and `Pragma: no-cache`
//! (RFC 6749 §5.1).

mod authorization_code;
mod client_credentials;
mod identity_assertion;
mod refresh_token;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use mcp_auth_core::{OAuthAuthorizationServerProvider, ProviderError, TokenError};
use mcp_auth_types::{
    GrantType, OAuthClientInformationFull, OAuthToken, TokenErrorCode, limits::check_scope,
    resource_url_from_server_url,
};

use crate::authorize::InvalidResource;
use crate::client_auth::ClientAuthenticator;
use crate::context::HandlerContext;
use crate::form::Params;
use crate::limits::MAX_RESOURCE_BYTES;
use crate::response::{self, Caching};

/// Handles `POST /token`.
pub struct TokenHandler<P> {
    /// The client authentication, which also holds the provider and the context.
    authenticator: ClientAuthenticator<P>,
}

impl<P> Clone for TokenHandler<P> {
    fn clone(&self) -> Self {
        Self {
            authenticator: self.authenticator.clone(),
        }
    }
}

impl<P: OAuthAuthorizationServerProvider> TokenHandler<P> {
    /// A handler for the token endpoint.
    pub fn new(provider: Arc<P>, ctx: HandlerContext) -> Self {
        Self {
            authenticator: ClientAuthenticator::new(provider, ctx),
        }
    }

    /// The largest body this endpoint accepts ([`BodyLimits::form`](crate::context::BodyLimits)).
    pub fn body_limit(&self) -> usize {
        self.authenticator.ctx().body_limits.form
    }

    /// Answers a token request: `200` with an [`OAuthToken`], `400`/`401` with an RFC 6749 §5.2
    /// error, or `500`/`503` when the provider fails.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let (params, client) = match self
            .authenticator
            .authenticated_form(
                &request,
                TokenErrorCode::InvalidRequest,
                TokenErrorCode::InvalidClient,
            )
            .await
        {
            Ok(authenticated) => authenticated,
            Err(response) => return response,
        };
        match self.grant(&client, &params).await {
            Ok(token) => response::json(StatusCode::OK, &token, Caching::NoStorePragma),
            Err(TokenError::Rejected { code, description }) => {
                response::oauth_error(code, description)
            }
            Err(TokenError::Provider(error)) => response::provider_failure(&error),
            // `TokenError` may grow variants; until this handler knows one, it is a failure.
            Err(other) => response::provider_failure(&ProviderError::internal(other.to_string())),
        }
    }

    /// Checks the grant type and hands the request to its grant.
    async fn grant(
        &self,
        client: &OAuthClientInformationFull,
        params: &Params,
    ) -> Result<OAuthToken, TokenError> {
        let Some(raw) = params.get("grant_type") else {
            return Err(TokenError::new(
                TokenErrorCode::InvalidRequest,
                "grant_type is required",
            ));
        };
        let grant = GrantType::parse(raw);
        // RFC 6749 §5.2: a grant type the server does not support is `unsupported_grant_type`
        // (the Python SDK's request model answers `invalid_request`). The provider's
        // capabilities are the one statement of what is supported; metadata reads them too.
        if !self.authenticator.ctx().capabilities.supports_grant(&grant) {
            return Err(unsupported(raw));
        }
        // RFC 6749 §5.2: a client not authorized to use a grant type is `unauthorized_client`
        // (the Python SDK answers `unsupported_grant_type`).
        if !client.has_grant_type(&grant) {
            return Err(TokenError::new(
                TokenErrorCode::UnauthorizedClient,
                format!("the client is not registered for grant_type {raw:?}"),
            ));
        }
        // Bounds shared by every grant, before any of them looks at the values.
        if let Some(scope) = params.get("scope")
            && let Err(error) = check_scope("scope", scope)
        {
            return Err(reject(TokenErrorCode::InvalidScope, error.to_string()));
        }
        if params
            .get("resource")
            .is_some_and(|resource| resource.len() > MAX_RESOURCE_BYTES)
        {
            return Err(reject(
                TokenErrorCode::InvalidTarget,
                InvalidResource::TooLong.to_string(),
            ));
        }
        let provider = self.authenticator.provider().as_ref();
        match grant {
            GrantType::AuthorizationCode => {
                authorization_code::exchange(provider, self.authenticator.ctx(), client, params)
                    .await
            }
            GrantType::RefreshToken => {
                refresh_token::exchange(provider, self.authenticator.ctx(), client, params).await
            }
            GrantType::ClientCredentials => {
                client_credentials::exchange(provider, self.authenticator.ctx(), client, params)
                    .await
            }
            GrantType::JwtBearer => {
                identity_assertion::exchange(provider, self.authenticator.ctx(), client, params)
                    .await
            }
            // A provider that lists a grant this endpoint has no arm for (an extension grant)
            // cannot be served by it: refused, never sent to another grant's handler.
            _ => Err(unsupported(raw)),
        }
    }
}

/// `unsupported_grant_type` for the grant type `raw`.
fn unsupported(raw: &str) -> TokenError {
    TokenError::new(
        TokenErrorCode::UnsupportedGrantType,
        format!("grant_type {raw:?} is not supported by this authorization server"),
    )
}

/// A rejection with a description.
fn reject(code: TokenErrorCode, description: impl Into<String>) -> TokenError {
    TokenError::new(code, description)
}

/// A required parameter, or `invalid_request`.
fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, TokenError> {
    params.get(name).ok_or_else(|| {
        reject(
            TokenErrorCode::InvalidRequest,
            format!("{name} is required"),
        )
    })
}

/// RFC 8707 §2.2: a `resource` named in the token request must be the resource of the grant
/// (compared in canonical form); a grant without a resource admits none. Anything else is
/// `invalid_target`, so that a client cannot move a grant to another audience.
fn check_resource(requested: Option<&str>, granted: Option<&str>) -> Result<(), TokenError> {
    let Some(requested) = requested else {
        return Ok(());
    };
    let matches = !requested.contains('#')
        && granted.is_some_and(|granted| {
            resource_url_from_server_url(requested) == resource_url_from_server_url(granted)
        });
    if matches {
        Ok(())
    } else {
        Err(reject(
            TokenErrorCode::InvalidTarget,
            "resource does not match the resource of the grant",
        ))
    }
}

#[cfg(test)]
mod tests;
