//! The introspection endpoint (RFC 7662): how a resource server that cannot read this
//! server's store learns whether an access token is active, and what it grants.
//!
//! - The caller is a confidential client, authenticated by the method it registered (secret,
//!   Basic, or `private_key_jwt`) exactly as at the token endpoint; a resource server
//!   registers as one. A public client (`none`) or an unauthenticated request gets 401
//!   `invalid_client` (RFC 7662 §2.1: the endpoint "MUST" require authorization, and a public
//!   client proves nothing). Any confidential client may introspect any access token: the
//!   answer names the token's audience (`aud`), which the resource server checks itself.
//! - Only access tokens are introspected. Refresh tokens are answered `{"active": false}`:
//!   only the client they were issued to ever holds them, and it has no reason to ask.
//!   `token_type_hint` is therefore read only as far as RFC 7662 §2.1 lets a server ignore it.
//! - Anything unknown, expired or revoked is exactly `{"active": false}`, so a caller learns
//!   nothing about why; an active token gets `active`, `scope`, `client_id`, `sub`, `aud`,
//!   `iss`, `exp`, `iat` and `token_type` ([`IntrospectionResponse::active`]).
//! - Every answer carries `Cache-Control: no-store` (RFC 7662 §4 leaves caching to the
//!   resource server, which must bound it by `exp`).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use mcp_auth_core::OAuthAuthorizationServerProvider;
use mcp_auth_types::{
    AccessTokenSecret, IntrospectionErrorCode, IntrospectionResponse, TokenEndpointAuthMethod,
};

use crate::client_auth::ClientAuthenticator;
use crate::context::HandlerContext;
use crate::response::{self, Caching};

/// Handles `POST /introspect`.
pub struct IntrospectionHandler<P> {
    /// The client authentication, which also holds the provider and the context.
    authenticator: ClientAuthenticator<P>,
}

impl<P> Clone for IntrospectionHandler<P> {
    fn clone(&self) -> Self {
        Self {
            authenticator: self.authenticator.clone(),
        }
    }
}

impl<P: OAuthAuthorizationServerProvider> IntrospectionHandler<P> {
    /// A handler for the introspection endpoint.
    pub fn new(provider: Arc<P>, ctx: HandlerContext) -> Self {
        Self {
            authenticator: ClientAuthenticator::new(provider, ctx),
        }
    }

    /// The largest body this endpoint accepts ([`BodyLimits::form`](crate::context::BodyLimits)).
    pub fn body_limit(&self) -> usize {
        self.authenticator.ctx().body_limits.form
    }

    /// Answers an introspection request (RFC 7662 §2): `200` with an
    /// [`IntrospectionResponse`], `400` for a malformed request, `401` `invalid_client` for a
    /// caller that is not an authenticated confidential client, `500`/`503` when the provider
    /// fails.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let (params, client) = match self
            .authenticator
            .authenticated_form(
                &request,
                IntrospectionErrorCode::InvalidRequest,
                IntrospectionErrorCode::InvalidClient,
            )
            .await
        {
            Ok(authenticated) => authenticated,
            Err(response) => return response,
        };
        if client.auth_method() == TokenEndpointAuthMethod::None {
            return response::oauth_error(
                IntrospectionErrorCode::InvalidClient,
                Some("public clients may not introspect tokens".to_owned()),
            );
        }
        let Some(token) = params.get("token") else {
            return response::oauth_error(
                IntrospectionErrorCode::InvalidRequest,
                Some("token is required".to_owned()),
            );
        };
        let loaded = match self
            .authenticator
            .provider()
            .load_access_token(&AccessTokenSecret::new(token))
            .await
        {
            Ok(loaded) => loaded,
            Err(error) => return response::provider_failure(&error),
        };
        let now = self.authenticator.ctx().now();
        let answer = match loaded {
            // The provider answers `None` for expired tokens; the expiry is checked here too,
            // so that a provider that does not cannot make an expired token active.
            Some(token)
                if token
                    .as_ref()
                    .expires_at
                    .is_none_or(|expires_at| expires_at > now) =>
            {
                IntrospectionResponse::active(token.as_ref())
            }
            _ => IntrospectionResponse::inactive(),
        };
        response::json(StatusCode::OK, &answer, Caching::NoStorePragma)
    }
}

#[cfg(test)]
mod tests;
