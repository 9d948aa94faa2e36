//! The revocation endpoint (RFC 7009), a port of the Python SDK's `handlers/revoke.py`.
//!
//! The client authenticates exactly as at the token endpoint ([`ClientAuthenticator`]), so
//! public clients (`none`) and `client_secret_basic` clients can revoke their tokens; the Python
//! SDK's request model demands a `client_secret` form field, which shuts both out.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, HeaderValue, PRAGMA};
use http::{Request, Response, StatusCode};
use mcp_auth_core::{OAuthAuthorizationServerProvider, ProviderError, RevocableToken};
use mcp_auth_types::{
    AccessTokenSecret, OAuthClientInformationFull, RefreshTokenSecret, RevocationErrorCode,
};

use crate::client_auth::ClientAuthenticator;
use crate::context::HandlerContext;
use crate::response;

/// Handles `POST /revoke`.
pub struct RevocationHandler<P> {
    /// The client authentication, which also holds the provider and the context.
    authenticator: ClientAuthenticator<P>,
}

impl<P> Clone for RevocationHandler<P> {
    fn clone(&self) -> Self {
        Self {
            authenticator: self.authenticator.clone(),
        }
    }
}

impl<P: OAuthAuthorizationServerProvider> RevocationHandler<P> {
    /// A handler for the revocation endpoint.
    pub fn new(provider: Arc<P>, ctx: HandlerContext) -> Self {
        Self {
            authenticator: ClientAuthenticator::new(provider, ctx),
        }
    }

    /// The largest body this endpoint accepts ([`BodyLimits::form`](crate::context::BodyLimits)).
    pub fn body_limit(&self) -> usize {
        self.authenticator.ctx().body_limits.form
    }

    /// Answers a revocation request (RFC 7009 §2.1): `200` with an empty body whether or not
    /// the token was known (RFC 7009 §2.2: an invalid token is no error, and the client cannot
    /// act on the difference anyway), `400`/`401` for a malformed or unauthenticated request,
    /// `500`/`503` when the provider fails.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let (params, client) = match self
            .authenticator
            .authenticated_form(
                &request,
                RevocationErrorCode::InvalidRequest,
                RevocationErrorCode::InvalidClient,
            )
            .await
        {
            Ok(authenticated) => authenticated,
            Err(response) => return response,
        };
        let Some(token) = params.get("token") else {
            return response::oauth_error(
                RevocationErrorCode::InvalidRequest,
                Some("token is required".to_owned()),
            );
        };
        match self
            .revoke(&client, token, params.get("token_type_hint"))
            .await
        {
            Ok(()) => revoked(),
            Err(error) => response::provider_failure(&error),
        }
    }

    /// Looks the token up as an access token and then as a refresh token — the other way round
    /// when the hint says `refresh_token` — and revokes it if it belongs to `client` (RFC 7009
    /// §2.1: the server "first validates the client credentials ... and then verifies whether
    /// the token was issued to the client making the revocation request").
    ///
    /// An unknown `token_type_hint` is ignored rather than refused: RFC 7009 §2.1 lets the
    /// server search across all token types, and `unsupported_token_type` is for types the
    /// server cannot revoke, not for hints it does not know. (The Python SDK answers
    /// `invalid_request`.)
    async fn revoke(
        &self,
        client: &OAuthClientInformationFull,
        token: &str,
        hint: Option<&str>,
    ) -> Result<(), ProviderError> {
        let refresh_first = hint == Some("refresh_token");
        let found = if refresh_first {
            match self.find_refresh(client, token).await? {
                Some(found) => Some(found),
                None => self.find_access(token).await?,
            }
        } else {
            match self.find_access(token).await? {
                Some(found) => Some(found),
                None => self.find_refresh(client, token).await?,
            }
        };
        let Some((owner, token)) = found else {
            return Ok(());
        };
        // Another client's token is left alone, and the answer is the same 200, so that a
        // client cannot probe for other clients' tokens.
        if owner == client.client_id {
            self.authenticator.provider().revoke_token(token).await?;
        }
        Ok(())
    }

    async fn find_access(&self, token: &str) -> Result<Option<Found<P>>, ProviderError> {
        Ok(self
            .authenticator
            .provider()
            .load_access_token(&AccessTokenSecret::new(token))
            .await?
            .map(|record| {
                let owner = record.as_ref().client_id.clone();
                (owner, RevocableToken::Access(record))
            }))
    }

    async fn find_refresh(
        &self,
        client: &OAuthClientInformationFull,
        token: &str,
    ) -> Result<Option<Found<P>>, ProviderError> {
        Ok(self
            .authenticator
            .provider()
            .load_refresh_token(client, &RefreshTokenSecret::new(token))
            .await?
            .map(|record| {
                let owner = record.as_ref().client_id.clone();
                (owner, RevocableToken::Refresh(record))
            }))
    }
}

/// A token found for revocation, with the client it was issued to.
type Found<P> = (
    String,
    RevocableToken<
        <P as OAuthAuthorizationServerProvider>::AccessToken,
        <P as OAuthAuthorizationServerProvider>::RefreshToken,
    >,
);

/// `200` with an empty body, as the Python SDK answers (RFC 7009 §2.2: "The content of the
/// response body is ignored by the client"), not to be cached.
fn revoked() -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests;
