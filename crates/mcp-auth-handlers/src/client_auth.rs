//! Client authentication at the token and revocation endpoints (RFC 6749 §2.3), a port of the
//! Python SDK's `middleware/client_auth.py`.
//!
//! The client's registered `token_endpoint_auth_method` decides how it must authenticate:
//!
//! - `client_secret_basic`: `Authorization: Basic base64(form-encode(id) ":" form-encode(secret))`
//!   (RFC 6749 §2.3.1). `client_id` in the body is then optional; when present it must equal the
//!   Basic id. (The Python SDK always requires `client_id` in the body.)
//! - `client_secret_post`: `client_id` and `client_secret` in the form body.
//! - `none`: `client_id` only; a public client (RFC 6749 §2.1) that presents a secret is
//!   refused, since a credential the server cannot check is a sign of a misconfigured client.
//! - `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): `client_assertion_type` =
//!   `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a signed `client_assertion`
//!   in the body, checked by the provider's
//!   [`authenticate_client_assertion`](OAuthAuthorizationServerProvider::authenticate_client_assertion)
//!   with this server's issuer and token endpoint URL as the accepted audiences. `client_id`
//!   in the body is optional (RFC 7523 §3): without it the client is looked up by the
//!   assertion's `sub`, read before verification only to find the keys to verify it with.
//!
//! Every failure is `invalid_client` with status 401 and, when the client tried HTTP Basic, a
//! `WWW-Authenticate: Basic` challenge (RFC 6749 §5.2). A request using two methods at once is
//! `invalid_request` (RFC 6749 §2.3: the client "MUST NOT use more than one authentication
//! method in each request").

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, Response};
use mcp_auth_core::{ClientAssertionError, OAuthAuthorizationServerProvider, ProviderError};
use mcp_auth_types::{
    Assertion, CLIENT_ASSERTION_TYPE_JWT_BEARER, ClientSecret, OAuthClientInformationFull,
    RevocationErrorCode, TokenEndpointAuthMethod, TokenErrorCode, contains_control_character,
};
use serde::Serialize;

use crate::context::HandlerContext;
use crate::form::Params;
use crate::metadata::TOKEN_PATH;
use crate::response::{self, Status};

/// Why a client failed to authenticate. The `Display` text is the `error_description` sent to
/// the client; it never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidClientReason {
    /// Neither the body nor a Basic header named the client.
    #[error("client_id is required")]
    MissingClientId,
    /// No client is registered with the id.
    #[error("unknown client")]
    UnknownClient,
    /// The `Authorization: Basic` value is not base64 of `id:secret` in form encoding.
    #[error("invalid HTTP Basic credentials in the Authorization header")]
    MalformedBasic,
    /// The body's `client_id` differs from the Basic id.
    #[error("client_id in the body does not match the HTTP Basic client id")]
    ClientIdMismatch,
    /// The client authenticated differently from the method it registered.
    #[error(
        "client is registered for token_endpoint_auth_method {registered}; authenticate with it"
    )]
    MethodMismatch {
        /// The registered method, as sent on the wire.
        registered: String,
    },
    /// A secret-based client sent no secret.
    #[error("client_secret is required")]
    MissingSecret,
    /// The secret is wrong.
    #[error("invalid client_secret")]
    InvalidSecret,
    /// The secret's `client_secret_expires_at` has passed (RFC 7591 §3.2.1).
    #[error("client_secret has expired")]
    SecretExpired,
    /// The registered method is not implemented by this server.
    #[error("token_endpoint_auth_method {method} is not supported yet")]
    UnsupportedMethod {
        /// The method, as registered.
        method: String,
    },
    /// A `private_key_jwt` client sent no `client_assertion`.
    #[error("client_assertion and client_assertion_type are required")]
    MissingAssertion,
    /// `client_assertion_type` is absent or not the JWT bearer type (RFC 7523 §2.2).
    #[error("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer")]
    UnsupportedAssertionType,
    /// The client assertion breaks a rule of RFC 7523 §3.
    #[error("invalid client_assertion: {description}")]
    InvalidAssertion {
        /// The broken rule, as the provider named it; never the assertion.
        description: String,
    },
}

/// A failed client authentication. Knows its wire form for both endpoints that authenticate
/// clients: [`token_response`](Self::token_response) and
/// [`revocation_response`](Self::revocation_response).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthError {
    /// Authentication failed: `401 invalid_client` (RFC 6749 §5.2).
    #[error("client authentication failed: {reason}")]
    InvalidClient {
        /// What went wrong; sent as `error_description`.
        reason: InvalidClientReason,
        /// Whether the client tried HTTP Basic, so the response must carry a `Basic` challenge.
        basic_attempted: bool,
    },
    /// The request used more than one authentication method (RFC 6749 §2.3):
    /// `400 invalid_request`.
    #[error("the request uses more than one client authentication method")]
    MultipleMethods,
    /// The HTTP Basic credentials, or the `sub` of a client assertion used to find the client,
    /// hold a control character ([`contains_control_character`]): a malformed request,
    /// `400 invalid_request`, refused before any lookup. (Form parameters never get here: they
    /// are refused when parsed.)
    #[error("the client credentials contain a control character")]
    ControlCharacter,
    /// The provider failed; the client gets a generic server error.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl ClientAuthError {
    fn invalid(reason: InvalidClientReason, basic_attempted: bool) -> Self {
        Self::InvalidClient {
            reason,
            basic_attempted,
        }
    }

    /// The token endpoint's response (RFC 6749 §5.2). `realm` names the protection space of
    /// the `Basic` challenge; the handlers pass the issuer.
    pub fn token_response(&self, realm: &str) -> Response<Bytes> {
        self.response(
            TokenErrorCode::InvalidClient,
            TokenErrorCode::InvalidRequest,
            realm,
        )
    }

    /// The revocation endpoint's response (RFC 7009 §2.2.1 reuses RFC 6749 §5.2). The Python
    /// SDK answers `unauthorized_client` here; RFC 6749 §5.2 makes a failed authentication
    /// `invalid_client`.
    pub fn revocation_response(&self, realm: &str) -> Response<Bytes> {
        self.response(
            RevocationErrorCode::InvalidClient,
            RevocationErrorCode::InvalidRequest,
            realm,
        )
    }

    fn response<C: Serialize + Status + Copy>(
        &self,
        invalid_client: C,
        invalid_request: C,
        realm: &str,
    ) -> Response<Bytes> {
        match self {
            Self::InvalidClient {
                reason,
                basic_attempted,
            } => {
                tracing::debug!(%reason, "client authentication failed");
                let mut response = response::oauth_error(invalid_client, Some(reason.to_string()));
                if *basic_attempted {
                    response
                        .headers_mut()
                        .insert(WWW_AUTHENTICATE, basic_challenge(realm));
                }
                response
            }
            Self::MultipleMethods | Self::ControlCharacter => {
                response::oauth_error(invalid_request, Some(self.to_string()))
            }
            Self::Provider(error) => response::provider_failure(error),
        }
    }
}

/// `Basic realm="<realm>"`, with the realm escaped as an RFC 9110 §5.6.4 quoted string.
fn basic_challenge(realm: &str) -> HeaderValue {
    let escaped = realm.replace('\\', "\\\\").replace('"', "\\\"");
    HeaderValue::from_str(&format!("Basic realm=\"{escaped}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"oauth\""))
}

/// Credentials from an `Authorization: Basic` header.
struct BasicCredentials {
    client_id: String,
    secret: ClientSecret,
}

/// Reads the Basic credentials: `None` when the request has no Basic header, `Some(Err)` when
/// it has a malformed one. The auth scheme is case-insensitive (RFC 9110 §11.1).
fn basic_credentials(headers: &HeaderMap) -> Option<Result<BasicCredentials, ()>> {
    let value = headers.get(AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        // Not visible ASCII: cannot be a Basic credential of ours, but the client clearly tried
        // to authenticate with the header.
        return Some(Err(()));
    };
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some(decode_basic(token.trim()))
}

fn decode_basic(token: &str) -> Result<BasicCredentials, ()> {
    let decoded = STANDARD.decode(token).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    let client_id = form_decode(id)?;
    if client_id.is_empty() {
        return Err(());
    }
    Ok(BasicCredentials {
        client_id,
        secret: ClientSecret::new(form_decode(secret)?),
    })
}

/// Undoes the `application/x-www-form-urlencoded` encoding RFC 6749 §2.3.1 applies to both
/// halves of the Basic credentials: `+` is a space and `%XX` an octet. (The Python SDK uses
/// `unquote`, which leaves `+` alone.)
/// The `sub` of a client assertion, read without verifying anything, to find which client's keys
/// verify it (RFC 7523 §3: `sub` is the client id). Whatever it says is checked afterwards.
fn unverified_assertion_subject(assertion: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("sub")?
        .as_str()
        .filter(|sub| !sub.is_empty())
        .map(str::to_owned)
}

fn form_decode(part: &str) -> Result<String, ()> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ())
}

/// Authenticates clients at the token, revocation and introspection endpoints, and holds what
/// those endpoints share: the provider and the handler context.
pub struct ClientAuthenticator<P> {
    provider: Arc<P>,
    ctx: HandlerContext,
}

impl<P> Clone for ClientAuthenticator<P> {
    fn clone(&self) -> Self {
        Self {
            provider: Arc::clone(&self.provider),
            ctx: self.ctx.clone(),
        }
    }
}

impl<P: OAuthAuthorizationServerProvider> ClientAuthenticator<P> {
    /// An authenticator looking clients up through `provider`.
    pub fn new(provider: Arc<P>, ctx: HandlerContext) -> Self {
        Self { provider, ctx }
    }

    /// The provider.
    pub fn provider(&self) -> &Arc<P> {
        &self.provider
    }

    /// The handler context.
    pub fn ctx(&self) -> &HandlerContext {
        &self.ctx
    }

    /// The preamble of the endpoints that authenticate their client (token, revocation): the
    /// body limit, `POST` only, the form, and client authentication. `Err` is the response to
    /// send, each failure in the endpoint's own vocabulary: `invalid_request` and
    /// `invalid_client` are its codes for a malformed request and a failed authentication.
    pub(crate) async fn authenticated_form<C: Serialize + Status + Copy>(
        &self,
        request: &Request<Bytes>,
        invalid_request: C,
        invalid_client: C,
    ) -> Result<(Params, OAuthClientInformationFull), Response<Bytes>> {
        let limit = self.ctx.body_limits.form;
        if request.body().len() > limit {
            return Err(response::payload_too_large(limit));
        }
        if request.method() != Method::POST {
            return Err(response::method_not_allowed("POST"));
        }
        let params = Params::parse_form(request.headers(), request.body())
            .map_err(|error| response::oauth_error(invalid_request, Some(error.to_string())))?;
        let client = self
            .authenticate(request.headers(), &params)
            .await
            .map_err(|error| {
                error.response(
                    invalid_client,
                    invalid_request,
                    self.ctx.settings.issuer_url.as_str(),
                )
            })?;
        Ok((params, client))
    }

    /// Authenticates the client of a request from its headers and its parsed form body, and
    /// returns the client's registration.
    ///
    /// Secrets are checked through the provider's
    /// [`authenticate_client_secret`](OAuthAuthorizationServerProvider::authenticate_client_secret),
    /// which compares in constant time; the secret is checked before its expiry, so that only
    /// the holder of a secret learns that it has expired.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<OAuthClientInformationFull, ClientAuthError> {
        let basic = basic_credentials(headers);
        let basic_attempted = basic.is_some();
        let fail = |reason| ClientAuthError::invalid(reason, basic_attempted);
        let basic = match basic {
            Some(Ok(credentials))
                if contains_control_character(&credentials.client_id)
                    || contains_control_character(credentials.secret.expose_secret()) =>
            {
                return Err(ClientAuthError::ControlCharacter);
            }
            Some(Ok(credentials)) => Some(credentials),
            Some(Err(())) => return Err(fail(InvalidClientReason::MalformedBasic)),
            None => None,
        };
        let body_secret = params.get("client_secret");
        let assertion = params.get("client_assertion");
        let assertion_attempted = assertion.is_some() || params.contains("client_assertion_type");
        let methods = [basic.is_some(), body_secret.is_some(), assertion_attempted];
        if methods.into_iter().filter(|used| *used).count() > 1 {
            return Err(ClientAuthError::MultipleMethods);
        }
        let assertion_subject = assertion.and_then(unverified_assertion_subject);
        let client_id = match (&basic, params.get("client_id")) {
            (Some(basic), Some(body_id)) if basic.client_id != body_id => {
                return Err(fail(InvalidClientReason::ClientIdMismatch));
            }
            (Some(basic), _) => basic.client_id.as_str(),
            (None, Some(body_id)) => body_id,
            (None, None) => match assertion_subject.as_deref() {
                Some(subject) if contains_control_character(subject) => {
                    return Err(ClientAuthError::ControlCharacter);
                }
                Some(subject) => subject,
                None => return Err(fail(InvalidClientReason::MissingClientId)),
            },
        };
        let Some(client) = self.provider.get_client(client_id).await? else {
            return Err(fail(InvalidClientReason::UnknownClient));
        };

        let method = client.auth_method();
        let mismatch = || {
            fail(InvalidClientReason::MethodMismatch {
                registered: method.as_str().to_owned(),
            })
        };
        if assertion_attempted && method != TokenEndpointAuthMethod::PrivateKeyJwt {
            return Err(mismatch());
        }
        let secret = match &method {
            TokenEndpointAuthMethod::PrivateKeyJwt => {
                if basic_attempted || body_secret.is_some() {
                    return Err(mismatch());
                }
                // A client registered for a method the provider does not verify (a client file
                // written for another deployment) fails closed here, before any assertion
                // is parsed.
                if !self
                    .ctx
                    .capabilities
                    .supports_auth_method(&TokenEndpointAuthMethod::PrivateKeyJwt)
                {
                    return Err(fail(InvalidClientReason::InvalidAssertion {
                        description: "private_key_jwt is not supported by this server".to_owned(),
                    }));
                }
                return self
                    .authenticate_assertion(client, params, assertion)
                    .await
                    .map_err(|error| match error {
                        AssertionFailure::Reason(reason) => fail(reason),
                        AssertionFailure::Provider(error) => ClientAuthError::Provider(error),
                    });
            }
            TokenEndpointAuthMethod::None => {
                if basic_attempted || body_secret.is_some() {
                    return Err(mismatch());
                }
                return Ok(client);
            }
            TokenEndpointAuthMethod::ClientSecretBasic => match basic {
                Some(credentials) => credentials.secret,
                None => return Err(mismatch()),
            },
            TokenEndpointAuthMethod::ClientSecretPost => {
                if basic_attempted {
                    return Err(mismatch());
                }
                match body_secret {
                    Some(secret) => ClientSecret::new(secret),
                    None => return Err(fail(InvalidClientReason::MissingSecret)),
                }
            }
            other => {
                return Err(fail(InvalidClientReason::UnsupportedMethod {
                    method: other.as_str().to_owned(),
                }));
            }
        };
        // A confidential method with no secret to verify must never pass.
        if secret.expose_secret().is_empty() {
            return Err(fail(InvalidClientReason::MissingSecret));
        }
        if !self
            .provider
            .authenticate_client_secret(&client, &secret)
            .await?
        {
            return Err(fail(InvalidClientReason::InvalidSecret));
        }
        if client
            .client_secret_expires_at
            .is_some_and(|expires_at| expires_at != 0 && expires_at < self.ctx.now())
        {
            return Err(fail(InvalidClientReason::SecretExpired));
        }
        Ok(client)
    }

    /// `private_key_jwt`: the assertion must be of the JWT bearer type, and the provider must
    /// accept it for one of this server's audiences: its issuer identifier or its token
    /// endpoint URL (RFC 7523 §3 item 3). The revocation endpoint accepts the same audiences,
    /// as the client authenticates there exactly as at the token endpoint.
    async fn authenticate_assertion(
        &self,
        client: OAuthClientInformationFull,
        params: &Params,
        assertion: Option<&str>,
    ) -> Result<OAuthClientInformationFull, AssertionFailure> {
        let Some(assertion) = assertion else {
            return Err(AssertionFailure::Reason(
                InvalidClientReason::MissingAssertion,
            ));
        };
        if params.get("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE_JWT_BEARER) {
            return Err(AssertionFailure::Reason(
                InvalidClientReason::UnsupportedAssertionType,
            ));
        }
        let issuer = &self.ctx.settings.issuer_url;
        let audiences = [issuer.as_str().to_owned(), issuer.endpoint(TOKEN_PATH)];
        match self
            .provider
            .authenticate_client_assertion(&client, &Assertion::new(assertion), &audiences)
            .await
        {
            Ok(()) => Ok(client),
            Err(ClientAssertionError::Rejected { description }) => Err(AssertionFailure::Reason(
                InvalidClientReason::InvalidAssertion { description },
            )),
            Err(ClientAssertionError::Provider(error)) => Err(AssertionFailure::Provider(error)),
            // `ClientAssertionError` may grow variants; until this handler knows one, it is a
            // failure of the provider.
            Err(other) => Err(AssertionFailure::Provider(ProviderError::internal(
                other.to_string(),
            ))),
        }
    }
}

/// Why a client assertion did not authenticate its client.
enum AssertionFailure {
    Reason(InvalidClientReason),
    Provider(ProviderError),
}

#[cfg(test)]
mod tests;
