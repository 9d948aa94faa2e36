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
//! - `private_key_jwt` is accepted when the server verifies client assertions and the client
//!   gives its keys (`jwks` or `jwks_uri`, not both: RFC 7591 §2); such a client gets no secret;
//! - `client_credentials` is accepted only when the provider supports the grant and
//!   `allow_client_credentials` is set, only for confidential clients, and a client that uses only it needs no redirect URI;
//! - scopes must be RFC 6749 §3.3 scope-tokens, and a blank `scope` counts as absent;
//! - the configured `step_up_scopes` are added to every registered `scope` (RFC 7591 §3.2.1
//!   lets the server replace requested values), so that an MCP client can step up later;
//! - every member is bounded and no string may hold a control character
//!   ([`OAuthClientMetadata::check_limits`], the bounds of [`mcp_auth_types::limits`]); members
//!   the server does not know are dropped, never stored;
//! - the request body is limited ([`MAX_REGISTRATION_BODY_BYTES`](crate::limits::MAX_REGISTRATION_BODY_BYTES),
//!   `413`), and other methods than `POST` get `405`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use mcp_auth_core::{
    AuthSettings, Capabilities, OAuthAuthorizationServerProvider, RegistrationError, secrets,
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

    /// The largest body this endpoint accepts
    /// ([`BodyLimits::registration`](crate::context::BodyLimits)).
    pub fn body_limit(&self) -> usize {
        self.ctx.body_limits.registration
    }

    /// Answers a registration request: `201 Created` with the client information, including
    /// the client secret this one time, and `Cache-Control: no-store` (RFC 7591 §3.2.1).
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        if request.method() != Method::POST {
            return response::method_not_allowed("POST");
        }
        let body = request.into_body();
        let limit = self.body_limit();
        if body.len() > limit {
            return response::payload_too_large(limit);
        }
        let metadata = match parse(&body) {
            Ok(metadata) => metadata,
            Err(error) => {
                return refuse(metadata_error(format!("invalid client metadata: {error}")));
            }
        };
        let metadata = match validate(metadata, &self.ctx.settings, &self.ctx.capabilities) {
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

    /// A fresh client id, and for a client that authenticates with a shared secret a 256-bit
    /// secret with its expiry. A `private_key_jwt` client proves itself with its own key and
    /// gets no secret.
    fn issue_credentials(&self, metadata: OAuthClientMetadata) -> OAuthClientInformationFull {
        let confidential = metadata
            .token_endpoint_auth_method
            .as_ref()
            .is_some_and(TokenEndpointAuthMethod::uses_shared_secret);
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
    settings: &AuthSettings,
    capabilities: &Capabilities,
) -> Result<OAuthClientMetadata, Refusal> {
    let options = &settings.client_registration_options;
    // Bounds and control characters first: nothing unbounded is looked at further, and nothing
    // with a control character reaches the store (PostgreSQL refuses NUL in text).
    metadata
        .check_limits()
        .map_err(|error| (error.code(), error.to_string()))?;
    // A client that uses only the client credentials grant never sees a redirect.
    let credentials_only = !metadata.grant_types.is_empty()
        && metadata
            .grant_types
            .iter()
            .all(|grant| *grant == GrantType::ClientCredentials);
    if !credentials_only {
        check_redirect_uris(metadata.redirect_uris.as_deref())?;
    }
    // RFC 7591 §2: `jwks_uri` and `jwks` "MUST NOT both be present".
    if metadata.jwks.is_some() && metadata.jwks_uri.is_some() {
        return Err(metadata_error("jwks and jwks_uri must not both be present"));
    }

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
        // Without a verifier the server would reject every token request of such a client;
        // refuse before minting unusable credentials.
        TokenEndpointAuthMethod::PrivateKeyJwt
            if !capabilities.supports_auth_method(&TokenEndpointAuthMethod::PrivateKeyJwt) =>
        {
            return Err(metadata_error(
                "token_endpoint_auth_method 'private_key_jwt' is not supported",
            ));
        }
        TokenEndpointAuthMethod::PrivateKeyJwt => check_client_keys(&metadata)?,
        other => {
            return Err(metadata_error(format!(
                "token_endpoint_auth_method '{}' is not supported",
                other.as_str()
            )));
        }
    }

    let requested = split_scopes(metadata.scope.as_deref());
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
    // `default_scopes` when none was asked for; RFC 7591 §3.2.1 lets the server widen the
    // requested `scope`, and the step-up scopes are registered for every client so that a later
    // 403 `insufficient_scope` can be answered by authorizing again, without a new
    // registration (see `step_up_scopes`).
    metadata.scope = options.client_scope(metadata.scope.as_deref());

    if metadata.grant_types.contains(&GrantType::ClientCredentials) {
        if !capabilities.supports_grant(&GrantType::ClientCredentials) {
            return Err(metadata_error(
                "grant_types must not include 'client_credentials'; this server does not \
                 support the client credentials grant",
            ));
        }
        if !options.allow_client_credentials {
            return Err(metadata_error(
                "grant_types must not include 'client_credentials'; the client credentials \
                 grant requires a pre-registered client",
            ));
        }
        // RFC 6749 §4.4: confidential clients only.
        if metadata.token_endpoint_auth_method == Some(TokenEndpointAuthMethod::None) {
            return Err(metadata_error(
                "the client_credentials grant requires a confidential client",
            ));
        }
        if credentials_only {
            // No authorization endpoint, so no response type (RFC 7591 §2.1).
            metadata.response_types = Vec::new();
            return Ok(metadata);
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

/// A `private_key_jwt` client must give the keys its assertions are verified with: a `jwks`
/// object with a `keys` array, or an https `jwks_uri` (fetched by the server, so never plain
/// http).
fn check_client_keys(metadata: &OAuthClientMetadata) -> Result<(), Refusal> {
    match (&metadata.jwks, &metadata.jwks_uri) {
        (Some(jwks), _) => {
            if jwks.get("keys").is_some_and(serde_json::Value::is_array) {
                Ok(())
            } else {
                Err(metadata_error(
                    "jwks must be a JSON Web Key Set with a keys array",
                ))
            }
        }
        (None, Some(uri)) => {
            if uri
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
            {
                Ok(())
            } else {
                Err(metadata_error("jwks_uri must be an https URL"))
            }
        }
        (None, None) => Err(metadata_error(
            "token_endpoint_auth_method 'private_key_jwt' requires jwks or jwks_uri",
        )),
    }
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
