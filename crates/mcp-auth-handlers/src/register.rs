//! The dynamic client registration endpoint (RFC 7591 §3): the Python SDK's
//! `RegistrationHandler`.
//!
//! Whether the endpoint exists is decided where it is mounted: a router serves it only when
//! `client_registration_options.enabled`. The handler itself always registers.
//!
//! Departures from the Python SDK:
//! - each redirect URI must be `https`, loopback `http` or a private-use scheme, without fragment
//!   (MCP specification, "Communication Security"; RFC 6749 §3.1.2); an unacceptable URI is
//!   `invalid_redirect_uri` (RFC 7591 §3.2.2), where Python answers `invalid_client_metadata`
//!   and registers `http://evil.example/callback`;
//! - a public client (`none`) may register only when `allow_public_clients` is set;
//! - scopes must be RFC 6749 §3.3 scope-tokens, and a blank `scope` counts as absent;
//! - the request body is limited (`413`), and other methods than `POST` get `405`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use mcp_auth_core::{
    ClientRegistrationOptions, OAuthAuthorizationServerProvider, RegistrationError, secrets,
};
use mcp_auth_types::{
    ClientSecret, GrantType, OAuthClientInformationFull, OAuthClientMetadata,
    RegistrationErrorCode, ResponseType, ServerErrorCode, TokenEndpointAuthMethod,
    check_registrable_redirect_uri, split_scopes,
};

use crate::context::HandlerContext;
use crate::response::{self, Caching};

/// Registers clients (RFC 7591 §3.1) and answers with their credentials (§3.2.1).
#[derive(Debug)]
pub struct RegistrationHandler<P> {
    provider: Arc<P>,
    ctx: HandlerContext,
}

impl<P> Clone for RegistrationHandler<P> {
    fn clone(&self) -> Self {
        Self {
            provider: Arc::clone(&self.provider),
            ctx: self.ctx.clone(),
        }
    }
}

/// A refusal: the RFC 7591 §3.2.2 code and a description for the client developer.
type Refusal = (RegistrationErrorCode, String);

fn metadata_error(description: impl Into<String>) -> Refusal {
    (
        RegistrationErrorCode::InvalidClientMetadata,
        description.into(),
    )
}

impl<P: OAuthAuthorizationServerProvider> RegistrationHandler<P> {
    /// A handler registering clients with `provider` under `ctx`'s registration options.
    pub fn new(provider: Arc<P>, ctx: HandlerContext) -> Self {
        Self { provider, ctx }
    }

    /// Answers a registration request: `201 Created` with the client information, including
    /// the client secret this one time, and `Cache-Control: no-store` (RFC 7591 §3.2.1).
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        if request.method() != Method::POST {
            return response::method_not_allowed("POST");
        }
        let body = request.into_body();
        if body.len() > self.ctx.body_limit {
            return response::payload_too_large(self.ctx.body_limit);
        }
        let metadata = match parse(&body) {
            Ok(metadata) => metadata,
            Err(error) => {
                return refuse(metadata_error(format!("invalid client metadata: {error}")));
            }
        };
        let options = &self.ctx.settings.client_registration_options;
        let metadata = match validate(metadata, options) {
            Ok(metadata) => metadata,
            Err(refusal) => return refuse(refusal),
        };
        let client = self.issue_credentials(metadata);
        match self.provider.register_client(client.clone()).await {
            Ok(()) => response::json(StatusCode::CREATED, &client, Caching::NoStore),
            Err(RegistrationError::Rejected { code, description }) => {
                response::oauth_error(code, description)
            }
            Err(RegistrationError::Provider(error)) => response::provider_failure(&error),
            Err(other) => {
                tracing::error!(error = %other, "unexpected registration error");
                response::oauth_error(ServerErrorCode::ServerError, None)
            }
        }
    }

    /// A fresh client id, and for a confidential client a 256-bit secret with its expiry.
    fn issue_credentials(&self, metadata: OAuthClientMetadata) -> OAuthClientInformationFull {
        let confidential =
            metadata.token_endpoint_auth_method != Some(TokenEndpointAuthMethod::None);
        let now = self.ctx.now();
        let mut client = OAuthClientInformationFull::new(secrets::random_id(), metadata);
        client.client_id_issued_at = Some(now);
        if confidential {
            client.client_secret = Some(ClientSecret::new(secrets::random_secret()));
            // RFC 7591 §3.2.1: REQUIRED when a secret is issued; 0 means it never expires.
            let lifetime = self
                .ctx
                .settings
                .client_registration_options
                .client_secret_expiry_seconds;
            client.client_secret_expires_at = Some(lifetime.map_or(0, |seconds| {
                now.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX))
            }));
        }
        client
    }
}

/// The request body as client metadata. RFC 7591 §3.1 has clients send a JSON object; like the
/// Python SDK the body is parsed as JSON whatever its declared content type. Only an object is
/// accepted: serde would otherwise read a JSON array positionally into the struct's fields.
fn parse(body: &[u8]) -> Result<OAuthClientMetadata, serde_json::Error> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)?;
    serde_json::from_value(serde_json::Value::Object(object))
}

fn refuse((code, description): Refusal) -> Response<Bytes> {
    response::oauth_error(code, Some(description))
}

/// Checks requested metadata against RFC 7591, the MCP specification and the server's options,
/// filling in the server's defaults.
fn validate(
    mut metadata: OAuthClientMetadata,
    options: &ClientRegistrationOptions,
) -> Result<OAuthClientMetadata, Refusal> {
    check_redirect_uris(metadata.redirect_uris.as_deref())?;

    // The Python SDK's default: a client that names no method gets a secret for the body.
    let method = metadata
        .token_endpoint_auth_method
        .get_or_insert(TokenEndpointAuthMethod::ClientSecretPost);
    match method {
        TokenEndpointAuthMethod::ClientSecretPost | TokenEndpointAuthMethod::ClientSecretBasic => {}
        TokenEndpointAuthMethod::None if options.allow_public_clients => {}
        TokenEndpointAuthMethod::None => {
            return Err(metadata_error(
                "public clients (token_endpoint_auth_method 'none') may not register",
            ));
        }
        // The server holds no key of the client to verify its assertions, so it would reject
        // every token request of such a client; refuse before minting unusable credentials.
        TokenEndpointAuthMethod::PrivateKeyJwt => {
            return Err(metadata_error(
                "token_endpoint_auth_method 'private_key_jwt' is not supported",
            ));
        }
        other => {
            return Err(metadata_error(format!(
                "token_endpoint_auth_method '{}' is not supported",
                other.as_str()
            )));
        }
    }

    let requested = split_scopes(metadata.scope.as_deref());
    if requested.is_empty() {
        metadata.scope = options.default_scopes.as_ref().map(|s| s.join(" "));
    } else {
        if let Some(bad) = requested.iter().find(|s| !is_scope_token(s)) {
            return Err(metadata_error(format!(
                "scope {bad:?} is not a valid scope-token (RFC 6749 §3.3)"
            )));
        }
        if let Some(valid) = &options.valid_scopes {
            let invalid: Vec<&str> = requested
                .iter()
                .filter(|s| !valid.contains(s))
                .map(String::as_str)
                .collect();
            if !invalid.is_empty() {
                return Err(metadata_error(format!(
                    "Requested scopes are not valid: {}",
                    invalid.join(", ")
                )));
            }
        }
    }

    if !metadata.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(metadata_error(
            "grant_types must include 'authorization_code'",
        ));
    }
    // SEP-990 §5.1: the identity-assertion grant is for confidential clients provisioned out of
    // band; a self-registered client must not reach it.
    if metadata.grant_types.contains(&GrantType::JwtBearer) {
        return Err(metadata_error(format!(
            "grant_types must not include '{}'; the identity-assertion grant requires a \
             pre-registered client",
            GrantType::JwtBearer.as_str()
        )));
    }
    // The MCP specification requires the authorization code flow.
    if !metadata.response_types.contains(&ResponseType::Code) {
        return Err(metadata_error(
            "response_types must include 'code' for authorization_code grant",
        ));
    }
    Ok(metadata)
}

fn check_redirect_uris(uris: Option<&[String]>) -> Result<(), Refusal> {
    let uris = match uris {
        Some(uris) if !uris.is_empty() => uris,
        // Redirect URIs are required for the authorization code flow (RFC 7591 §2).
        _ => return Err(metadata_error("redirect_uris must list at least one URI")),
    };
    for uri in uris {
        if let Err(rejection) = check_registrable_redirect_uri(uri) {
            return Err((
                RegistrationErrorCode::InvalidRedirectUri,
                format!("redirect URI {uri:?}: {rejection}"),
            ));
        }
    }
    Ok(())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
mod tests;
