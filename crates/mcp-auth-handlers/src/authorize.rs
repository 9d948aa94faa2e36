//! The authorization endpoint (RFC 6749 §3.1, §4.1.1), a port of the Python SDK's
//! `handlers/authorize.py`.
//!
//! A request is checked in two phases. Until the client and its redirect URI are known to be
//! good, errors are answered directly with a `400` JSON body, because redirecting to an
//! unverified URI would make the server an open redirector (RFC 6749 §4.1.2.1). After that,
//! errors go back to the client's redirect URI with `error`, `error_description`, `state` and
//! the RFC 9207 `iss` parameter. Every response carries `Cache-Control: no-store`.
//!
//! Parameters are bounded ([`crate::limits`]): at most 64 of them and none with a control
//! character (a direct `400 invalid_request`, whatever the client: such a request cannot be
//! trusted to name its redirect URI), `state` at most 4 KiB, `scope` at most 64 scope-tokens of
//! at most 128 bytes, `resource` at most 2 KiB, `code_challenge` 43 to 128 characters (RFC 7636
//! §4.2). Past the first check those follow RFC 6749 §4.1.2.1 like every other error: redirected
//! once the client and redirect URI are known to be valid, direct before.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, HeaderValue, LOCATION};
use http::{Method, Request, Response, StatusCode};
use mcp_auth_core::{AuthSettings, AuthorizeError, OAuthAuthorizationServerProvider};
use mcp_auth_types::{
    AuthorizationParams, AuthorizeErrorCode, GrantType, OAuthClientInformationFull, ResponseType,
    ServerErrorCode, check_resource_allowed, construct_redirect_uri, is_valid_pkce_string,
    limits::check_scope, resource_url_from_server_url,
};

use crate::context::HandlerContext;
use crate::form::{FormError, Params};
use crate::limits::{MAX_RESOURCE_BYTES, MAX_STATE_BYTES};
use crate::response;

/// Why an RFC 8707 `resource` parameter was refused; answered with `invalid_target`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidResource {
    /// Not an absolute URI (RFC 8707 §2).
    #[error("resource must be an absolute URI")]
    NotAbsolute,
    /// Has a fragment component (RFC 8707 §2: it "MUST NOT include a fragment component").
    #[error("resource must not include a fragment component")]
    Fragment,
    /// Not among the resources this server issues tokens for.
    #[error("resource is not served by this authorization server")]
    NotServed,
    /// Longer than [`MAX_RESOURCE_BYTES`].
    #[error("resource is longer than {} bytes", MAX_RESOURCE_BYTES)]
    TooLong,
}

/// Validates an RFC 8707 resource indicator and returns its canonical form: absolute, without a
/// fragment, at most [`MAX_RESOURCE_BYTES`] long, and — when the settings list resources —
/// under one of them.
pub fn validate_resource(raw: &str, settings: &AuthSettings) -> Result<String, InvalidResource> {
    if raw.len() > MAX_RESOURCE_BYTES {
        return Err(InvalidResource::TooLong);
    }
    if raw.contains('#') {
        return Err(InvalidResource::Fragment);
    }
    // The common case, every MCP client's token request: the resource exactly as this server
    // advertises it. The settings' resources are absolute http(s) URLs in canonical form (their
    // builder checks them), so such a resource is valid and canonical as it stands; three URL
    // parses were a tenth of a token request's CPU.
    if let Some(served) = settings.resources.iter().find(|served| *served == raw) {
        return Ok(served.clone());
    }
    if url::Url::parse(raw).is_err() {
        return Err(InvalidResource::NotAbsolute);
    }
    let canonical = resource_url_from_server_url(raw);
    if !settings.resources.is_empty()
        && !settings
            .resources
            .iter()
            .any(|served| check_resource_allowed(&canonical, served))
    {
        return Err(InvalidResource::NotServed);
    }
    Ok(canonical)
}

/// Handles `GET` and `POST /authorize`.
pub struct AuthorizationHandler<P> {
    provider: Arc<P>,
    ctx: HandlerContext,
}

impl<P> Clone for AuthorizationHandler<P> {
    fn clone(&self) -> Self {
        Self {
            provider: Arc::clone(&self.provider),
            ctx: self.ctx.clone(),
        }
    }
}

/// A redirect URI that has been checked against the client's registration, and the state to
/// echo on it.
struct Target {
    redirect_uri: String,
    state: Option<String>,
}

/// An error to send back to the client's redirect URI.
type Redirected = (AuthorizeErrorCode, String);

impl<P: OAuthAuthorizationServerProvider> AuthorizationHandler<P> {
    /// A handler for the authorization endpoint.
    pub fn new(provider: Arc<P>, ctx: HandlerContext) -> Self {
        Self { provider, ctx }
    }

    /// The largest body this endpoint accepts ([`BodyLimits::form`](crate::context::BodyLimits)).
    pub fn body_limit(&self) -> usize {
        self.ctx.body_limits.form
    }

    /// Answers an authorization request: `302` to the provider's sign-in URL, `302` to the
    /// client with an error, or `400` when the client or redirect URI cannot be trusted.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let limit = self.body_limit();
        if request.body().len() > limit {
            return response::payload_too_large(limit);
        }
        let (raw, parsed) = match *request.method() {
            Method::GET => {
                let query = request.uri().query().unwrap_or("").as_bytes();
                (query, Params::parse(query))
            }
            Method::POST => {
                let body = request.body().as_ref();
                (body, Params::parse_form(request.headers(), body))
            }
            _ => return response::method_not_allowed("GET, POST"),
        };
        match parsed {
            Ok(params) => self.authorize(&params).await,
            Err(error @ FormError::Duplicate(_)) => self.refuse_repeated(raw, &error).await,
            Err(error) => direct(AuthorizeErrorCode::InvalidRequest, error.to_string()),
        }
    }

    async fn authorize(&self, params: &Params) -> Response<Bytes> {
        let (state, state_too_long) = bounded_state(params.get("state"));
        let (client, target) = match self
            .resolve(params.get("client_id"), params.get("redirect_uri"), state)
            .await
        {
            Ok(resolved) => resolved,
            Err(response) => return response,
        };
        // RFC 6749 §4.1.2.1: with the client and redirect URI valid, the error is redirected —
        // without the oversized `state`, which is neither stored nor echoed.
        if state_too_long {
            return self.redirect_error(
                &target,
                AuthorizeErrorCode::InvalidRequest,
                &format!("state is longer than {MAX_STATE_BYTES} bytes"),
            );
        }
        let authorization = match self.validate(&client, &target, params) {
            Ok(authorization) => authorization,
            Err((code, description)) => return self.redirect_error(&target, code, &description),
        };
        match self.provider.authorize(&client, authorization).await {
            Ok(url) => found(&url).unwrap_or_else(|| {
                tracing::error!(
                    "the provider's authorize returned a URL that is not a valid header"
                );
                direct(
                    AuthorizeErrorCode::ServerError,
                    "the authorization server failed".to_owned(),
                )
            }),
            Err(AuthorizeError::Rejected { code, description }) => self.redirect_error(
                &target,
                code,
                description.as_deref().unwrap_or(code.as_str()),
            ),
            Err(AuthorizeError::Provider(error)) => {
                tracing::error!(
                    error = %error,
                    cause = ?std::error::Error::source(&error).map(ToString::to_string),
                    "provider failure in authorize"
                );
                let (code, description) = match response::server_error_code(&error) {
                    ServerErrorCode::TemporarilyUnavailable => (
                        AuthorizeErrorCode::TemporarilyUnavailable,
                        "the authorization server is temporarily unavailable",
                    ),
                    _ => (
                        AuthorizeErrorCode::ServerError,
                        "the authorization server encountered an unexpected error",
                    ),
                };
                self.redirect_error(&target, code, description)
            }
            // `AuthorizeError` may grow variants; until this handler knows one, it is a failure.
            Err(other) => {
                tracing::error!(error = %other, "unexpected error from the provider's authorize");
                self.redirect_error(
                    &target,
                    AuthorizeErrorCode::ServerError,
                    "the authorization server encountered an unexpected error",
                )
            }
        }
    }

    /// Loads the client and checks the redirect URI. Every failure here is a direct response:
    /// RFC 6749 §4.1.2.1 forbids redirecting when the client or the redirect URI is invalid.
    async fn resolve(
        &self,
        client_id: Option<&str>,
        redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<(OAuthClientInformationFull, Target), Response<Bytes>> {
        let Some(client_id) = client_id else {
            return Err(direct(
                AuthorizeErrorCode::InvalidRequest,
                "client_id is required".to_owned(),
            ));
        };
        let client = match self.provider.get_client(client_id).await {
            Ok(Some(client)) => client,
            Ok(None) => {
                return Err(direct(
                    AuthorizeErrorCode::InvalidRequest,
                    "client_id does not name a registered client".to_owned(),
                ));
            }
            Err(error) => return Err(response::provider_failure(&error)),
        };
        // Exact string matching, with any port for loopback URIs (RFC 8252 §7.3).
        let redirect_uri = client
            .validate_redirect_uri(redirect_uri)
            .map_err(|error| direct(AuthorizeErrorCode::InvalidRequest, error.to_string()))?;
        let target = Target {
            redirect_uri,
            state: state.map(str::to_owned),
        };
        Ok((client, target))
    }

    /// The checks whose failures may be redirected to the client.
    fn validate(
        &self,
        client: &OAuthClientInformationFull,
        target: &Target,
        params: &Params,
    ) -> Result<AuthorizationParams, Redirected> {
        use AuthorizeErrorCode::{
            InvalidRequest, InvalidScope, InvalidTarget, UnauthorizedClient,
            UnsupportedResponseType,
        };
        let refuse = |code, description: &str| Err((code, description.to_owned()));
        match params.get("response_type") {
            None => return refuse(InvalidRequest, "response_type is required"),
            Some("code") => {}
            Some(_) => {
                return refuse(
                    UnsupportedResponseType,
                    "only response_type=code is supported",
                );
            }
        }
        // RFC 6749 §4.1.2.1: a client may only use the response and grant types it registered.
        if !client.metadata.response_types.contains(&ResponseType::Code)
            || !client.has_grant_type(&GrantType::AuthorizationCode)
        {
            return refuse(
                UnauthorizedClient,
                "the client is not registered for the authorization code flow",
            );
        }
        let Some(code_challenge) = params.get("code_challenge") else {
            return refuse(
                InvalidRequest,
                "code_challenge is required (PKCE, RFC 7636)",
            );
        };
        if !is_valid_pkce_string(code_challenge) {
            return refuse(
                InvalidRequest,
                "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.2)",
            );
        }
        // OAuth 2.1 §4.1.1 and the MCP authorization spec require S256. RFC 7636 §4.3 makes an
        // absent method mean `plain`, so an absent method is refused too; the Python SDK
        // defaults it to S256 instead.
        match params.get("code_challenge_method") {
            Some("S256") => {}
            None => {
                return refuse(
                    InvalidRequest,
                    "code_challenge_method is required and must be S256",
                );
            }
            Some(_) => return refuse(InvalidRequest, "code_challenge_method must be S256"),
        }
        if let Some(scope) = params.get("scope")
            && let Err(error) = check_scope("scope", scope)
        {
            return refuse(InvalidScope, &error.to_string());
        }
        let scopes = match client.validate_scope(params.get("scope")) {
            Ok(Some(scopes)) => Some(scopes),
            // RFC 6749 §3.3: without `scope`, a pre-defined default — the client's registered
            // scopes that are still valid, step-up scopes excepted (a client gets those by
            // asking). The Python SDK passes `None` on and leaves it to each provider; a token
            // without any scope would be useless to an MCP server.
            Ok(None) => {
                let default = self
                    .ctx
                    .settings
                    .client_registration_options
                    .default_request_scopes(&client.registered_scopes());
                (!default.is_empty()).then_some(default)
            }
            Err(error) => return refuse(InvalidScope, &error.to_string()),
        };
        // RFC 8707 §2: the resource the token will be used at. A request without one is bound
        // to this server's resource server (RFC 8707 §2 lets the server apply a default), so
        // that every token carries an audience the resource server can check; the Python SDK
        // leaves such tokens unbound.
        let resource = match params.get("resource") {
            None => self.ctx.settings.resource_server_url.clone(),
            Some(raw) => match validate_resource(raw, &self.ctx.settings) {
                Ok(canonical) => Some(canonical),
                Err(error) => return refuse(InvalidTarget, &error.to_string()),
            },
        };
        let mut authorization = AuthorizationParams::new(
            scopes,
            code_challenge,
            target.redirect_uri.clone(),
            params.contains("redirect_uri"),
        );
        authorization.state = target.state.clone();
        authorization.resource = resource;
        Ok(authorization)
    }

    /// A parameter was sent twice (RFC 6749 §3.1). When the client and redirect URI are
    /// themselves unambiguous and valid, the error is redirected; otherwise it is direct.
    async fn refuse_repeated(&self, raw: &[u8], error: &FormError) -> Response<Bytes> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw).into_owned().collect();
        let count = |name: &str| pairs.iter().filter(|(n, _)| n == name).count();
        let unique = |name: &str| {
            (count(name) == 1)
                .then(|| pairs.iter().find(|(n, _)| n == name))
                .flatten()
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty())
        };
        if count("client_id") > 1 || count("redirect_uri") > 1 {
            return direct(AuthorizeErrorCode::InvalidRequest, error.to_string());
        }
        let (state, _) = bounded_state(unique("state"));
        match self
            .resolve(unique("client_id"), unique("redirect_uri"), state)
            .await
        {
            Ok((_, target)) => self.redirect_error(
                &target,
                AuthorizeErrorCode::InvalidRequest,
                &error.to_string(),
            ),
            Err(response) => response,
        }
    }

    /// `302` to the client's redirect URI with the error, its state and the issuer (RFC 6749
    /// §4.1.2.1, RFC 9207 §2: `iss` exactly as the issuer identifier is configured).
    fn redirect_error(
        &self,
        target: &Target,
        code: AuthorizeErrorCode,
        description: &str,
    ) -> Response<Bytes> {
        let location = construct_redirect_uri(
            &target.redirect_uri,
            &[
                ("error", Some(code.as_str())),
                ("error_description", Some(description)),
                ("state", target.state.as_deref()),
                ("iss", Some(self.ctx.settings.issuer_url.as_str())),
            ],
        );
        found(&location).unwrap_or_else(|| direct(code, description.to_owned()))
    }
}

/// `state` when it is at most [`MAX_STATE_BYTES`] long, and whether it was longer.
fn bounded_state(state: Option<&str>) -> (Option<&str>, bool) {
    match state {
        Some(state) if state.len() > MAX_STATE_BYTES => (None, true),
        state => (state, false),
    }
}

/// `302 Found` to `location` with `Cache-Control: no-store`, or `None` when `location` cannot
/// be a header value.
fn found(location: &str) -> Option<Response<Bytes>> {
    let location = HeaderValue::from_str(location).ok()?;
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(LOCATION, location);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(response)
}

/// A direct JSON error (never a redirect), `no-store`.
fn direct(code: AuthorizeErrorCode, description: String) -> Response<Bytes> {
    response::oauth_error(code, Some(description))
}

#[cfg(test)]
mod tests;
