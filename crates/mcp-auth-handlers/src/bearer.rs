//! Bearer-token authentication of a protected resource (RFC 6750, RFC 9728 §5.1): the Python
//! SDK's `BearerAuthBackend` and `RequireAuthMiddleware` in one step, with the corrections the
//! RFCs and the MCP authorization specification ask for.
//!
//! Departures from the Python SDK:
//! - a request without bearer credentials gets a challenge without `error` (RFC 6750 §3.1);
//!   Python sends `error="invalid_token"`;
//! - a malformed `Authorization` header is `400 invalid_request` (RFC 6750 §3.1); Python treats it
//!   as a missing or unknown token;
//! - the token's audience is checked (MCP specification, "Token Handling": servers MUST validate
//!   that tokens were issued for them), by exact match of the normalised resource URL; Python
//!   accepts a token for any resource;
//! - every challenge carries `scope` with all the required scopes (MCP specification, "Scope
//!   Selection Strategy"); Python never sends `scope`, and its 403 names one missing scope;
//! - attribute values are quoted-strings with `"` and `\` escaped (RFC 9110 §5.6.4);
//! - a token expiring at the current second is expired (RFC 7519 §4.1.4: "on or after");
//! - a verifier failure is `503` without a challenge, instead of an exception.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use mcp_auth_core::{Clock, ConfigError, ProviderError, SystemClock, TokenVerifier};
use mcp_auth_types::{
    AccessToken, AccessTokenSecret, BearerErrorCode, ErrorBody, ServerErrorCode,
    build_resource_metadata_url, resource_matches, resource_url_from_server_url,
};

use crate::context::HandlerContext;
use crate::response::{self, Caching, Status as _};
use crate::scope::{ScopeImplication, union};

/// Authenticates requests to a protected resource with bearer tokens (RFC 6750 §2.1, header
/// only: the MCP specification forbids tokens in the query string, and this type never sees
/// the URI).
///
/// A token is accepted when the verifier knows it, it has not expired by the configured clock,
/// its audience is this resource, and it carries every required scope — a granted scope counts
/// for every scope it implies by the [`ScopeImplication`] (default: `mcp` implies `mcp:tools`).
///
/// The audience check: a token is accepted only when its `resource` is exactly this server's
/// resource URL, compared as URLs after normalisation ([`resource_matches`]: scheme and host
/// case, default port). A token for a path beneath it (`/mcp/sub` at `/mcp`) or above it (the
/// bare origin) is refused: another server on the same origin may be the one it was issued
/// for, and RFC 8707 resource indicators name one resource each. A token without a `resource` is refused by
/// default, because nothing shows that it was issued for this server (MCP specification, "Token
/// Handling"); [`accept_tokens_without_resource`](Self::accept_tokens_without_resource) admits
/// such tokens for authorization servers that do not bind tokens to resources.
#[derive(Debug)]
pub struct BearerAuth<V> {
    verifier: V,
    clock: Arc<dyn Clock>,
    audience: String,
    accept_unbound: bool,
    required_scopes: Vec<String>,
    implication: Arc<ScopeImplication>,
    challenge: Arc<Challenge>,
}

impl<V: Clone> Clone for BearerAuth<V> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            clock: Arc::clone(&self.clock),
            audience: self.audience.clone(),
            accept_unbound: self.accept_unbound,
            required_scopes: self.required_scopes.clone(),
            implication: Arc::clone(&self.implication),
            challenge: Arc::clone(&self.challenge),
        }
    }
}

/// What every challenge of one [`BearerAuth`] carries besides the error.
#[derive(Debug)]
struct Challenge {
    /// RFC 9728 §5.1 `resource_metadata`.
    resource_metadata: String,
    /// The required scopes, space-separated; empty when none are required.
    scope: String,
}

impl<V: TokenVerifier> BearerAuth<V> {
    /// Authentication for the resource at `resource_server_url` (canonicalised per RFC 8707
    /// §2), advertising its RFC 9728 §3.1 metadata URL, requiring no scope, on the system clock.
    pub fn new(verifier: V, resource_server_url: &str) -> Self {
        let audience = resource_url_from_server_url(resource_server_url);
        let challenge = Challenge {
            resource_metadata: build_resource_metadata_url(&audience),
            scope: String::new(),
        };
        Self {
            verifier,
            clock: Arc::new(SystemClock),
            audience,
            accept_unbound: false,
            required_scopes: Vec::new(),
            implication: Arc::new(ScopeImplication::new()),
            challenge: Arc::new(challenge),
        }
    }

    /// Authentication configured from a handler context: its resource server URL, required
    /// scopes and clock. Fails when the settings name no resource server URL.
    pub fn from_context(verifier: V, ctx: &HandlerContext) -> Result<Self, ConfigError> {
        let resource = ctx
            .settings
            .resource_server_url
            .as_deref()
            .ok_or(ConfigError::Invalid(
                "bearer authentication needs resource_server_url",
            ))?;
        Ok(Self::new(verifier, resource)
            .required_scopes(ctx.settings.required_scopes.iter().cloned())
            .clock(Arc::clone(&ctx.clock)))
    }

    /// Requires every one of `scopes` (replacing any earlier requirement).
    #[must_use]
    pub fn required_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self.challenge = Arc::new(Challenge {
            resource_metadata: self.challenge.resource_metadata.clone(),
            scope: self.required_scopes.join(" "),
        });
        self
    }

    /// Advertises `url` as `resource_metadata` instead of the RFC 9728 §3.1 default.
    #[must_use]
    pub fn resource_metadata_url(mut self, url: impl Into<String>) -> Self {
        self.challenge = Arc::new(Challenge {
            resource_metadata: url.into(),
            scope: self.challenge.scope.clone(),
        });
        self
    }

    /// Judges whether a granted scope is enough for a required one by `implication` instead
    /// of the default [`ScopeImplication::new`] (identity plus `a` ⇒ `a:b`).
    #[must_use]
    pub fn scope_implication(mut self, implication: ScopeImplication) -> Self {
        self.implication = Arc::new(implication);
        self
    }

    /// Reads expiry against `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether tokens without a `resource` are accepted (default `false`; see the type's
    /// documentation).
    #[must_use]
    pub fn accept_tokens_without_resource(mut self, accept: bool) -> Self {
        self.accept_unbound = accept;
        self
    }

    /// The canonical resource URL tokens must be issued for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The advertised protected resource metadata URL.
    pub fn resource_metadata(&self) -> &str {
        &self.challenge.resource_metadata
    }

    /// The scopes every request needs.
    pub fn scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// The rejection of a request that carried no credentials, for callers that find no
    /// authenticated token where one was expected.
    pub fn unauthenticated(&self) -> BearerRejection {
        self.reject(BearerRejectionKind::MissingToken)
    }

    /// Authenticates a request by its `Authorization` header. The header's value is never
    /// logged, and a rejection does not carry it.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<AccessToken, BearerRejection> {
        self.authenticate_for(headers, &[]).await
    }

    /// Authenticates a request for an operation that needs `extra` scopes besides the
    /// configured ones. Every challenge then names the union (configured first, then `extra`),
    /// so that a client which requests what the challenge names steps up in one round.
    pub async fn authenticate_for(
        &self,
        headers: &HeaderMap,
        extra: &[String],
    ) -> Result<AccessToken, BearerRejection> {
        let token = bearer_token(headers).map_err(|kind| self.reject_for(kind, extra))?;
        let verdict = self.verifier.verify_token(&token).await;
        self.admit(verdict, extra)
    }

    /// [`authenticate`](Self::authenticate) when the verifier can answer without waiting
    /// ([`TokenVerifier::verify_token_now`]): a token found in memory, or a request refused
    /// for its header alone. `None` means the caller must `authenticate` asynchronously.
    ///
    /// The bearer layer tries this first, so that the common request — a token the verifier
    /// holds in memory — is authenticated without a suspended future.
    pub fn authenticate_now(
        &self,
        headers: &HeaderMap,
    ) -> Option<Result<AccessToken, BearerRejection>> {
        let token = match bearer_token(headers) {
            Ok(token) => token,
            Err(kind) => return Some(Err(self.reject(kind))),
        };
        let verdict = self.verifier.verify_token_now(&token)?;
        Some(self.admit(verdict, &[]))
    }

    /// Judges the verifier's `verdict` on a request's token: found, unexpired, issued for this
    /// resource, and carrying the configured scopes and `extra`.
    fn admit(
        &self,
        verdict: Result<Option<AccessToken>, ProviderError>,
        extra: &[String],
    ) -> Result<AccessToken, BearerRejection> {
        let reject = |kind| self.reject_for(kind, extra);
        let record = match verdict {
            Ok(Some(record)) => record,
            Ok(None) => return Err(reject(BearerRejectionKind::InvalidToken)),
            Err(error) => return Err(reject(BearerRejectionKind::Verifier(error))),
        };
        if record
            .expires_at
            .is_some_and(|expires_at| expires_at <= self.clock.now())
        {
            return Err(reject(BearerRejectionKind::Expired));
        }
        let audience_ok = match record.resource.as_deref() {
            // The usual case, a token bound to exactly this resource as stored, compares equal
            // byte for byte and needs no URL parsing or allocation: `audience` is canonical and
            // providers store canonical resources. Only another spelling is parsed.
            Some(resource) => {
                resource == self.audience || resource_matches(resource, &self.audience)
            }
            None => self.accept_unbound,
        };
        if !audience_ok {
            tracing::debug!(client_id = %record.client_id, "bearer token issued for another resource");
            return Err(reject(BearerRejectionKind::WrongAudience));
        }
        self.authorize(&record, extra)?;
        Ok(record)
    }

    /// Checks that an already authenticated token carries (by the configured
    /// [`ScopeImplication`]) every configured scope and every one of `extra`. The `403
    /// insufficient_scope` challenge names the whole union, not only the missing scopes (MCP
    /// specification, "Scope Selection Strategy"); its description names the missing ones.
    pub fn authorize(&self, token: &AccessToken, extra: &[String]) -> Result<(), BearerRejection> {
        // Every protected request passes here: without extra scopes, judge the configured ones
        // in place rather than copying them.
        let needed: std::borrow::Cow<'_, [String]> = if extra.is_empty() {
            std::borrow::Cow::Borrowed(&self.required_scopes)
        } else {
            std::borrow::Cow::Owned(union(&self.required_scopes, extra))
        };
        let missing: Vec<String> = self
            .implication
            .missing(&token.scopes, &needed)
            .into_iter()
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self.reject_for(BearerRejectionKind::InsufficientScope { missing }, extra))
        }
    }

    fn reject(&self, kind: BearerRejectionKind) -> BearerRejection {
        BearerRejection {
            kind,
            challenge: Arc::clone(&self.challenge),
        }
    }

    /// A rejection whose challenge names the configured scopes and `extra`.
    fn reject_for(&self, kind: BearerRejectionKind, extra: &[String]) -> BearerRejection {
        let needed = union(&self.required_scopes, extra);
        if needed.len() == self.required_scopes.len() {
            return self.reject(kind);
        }
        BearerRejection {
            kind,
            challenge: Arc::new(Challenge {
                resource_metadata: self.challenge.resource_metadata.clone(),
                scope: needed.join(" "),
            }),
        }
    }
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1).
fn bearer_token(headers: &HeaderMap) -> Result<AccessTokenSecret, BearerRejectionKind> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(BearerRejectionKind::MissingToken);
    };
    if values.next().is_some() {
        return Err(BearerRejectionKind::Malformed(
            "more than one Authorization header",
        ));
    }
    // The common case in one pass over the bytes; anything else is judged in full.
    if let Some(token) = well_formed_bearer(value.as_bytes()) {
        return Ok(AccessTokenSecret::new(token));
    }
    exact_bearer(value)
}

/// The token of one `Authorization` value, or why there is none (RFC 6750 §2.1).
fn exact_bearer(value: &HeaderValue) -> Result<AccessTokenSecret, BearerRejectionKind> {
    let Ok(value) = value.to_str() else {
        return Err(BearerRejectionKind::Malformed(
            "the Authorization header is not visible ASCII",
        ));
    };
    let value = value.trim_matches([' ', '\t']);
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // RFC 9110 §11.1: the scheme is case-insensitive. Credentials of another scheme count as
    // none (RFC 6750 §3.1: "an unsupported authentication method").
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(BearerRejectionKind::MissingToken);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(BearerRejectionKind::Malformed("the bearer token is empty"));
    }
    if !is_b64token(token) {
        return Err(BearerRejectionKind::Malformed(
            "the bearer token is not a single b64token",
        ));
    }
    Ok(AccessTokenSecret::new(token))
}

/// The token of `Bearer <b64token>` (spaces and tabs around it, any case of the scheme, one
/// or more spaces after it), or `None` for anything else, which [`bearer_token`] then judges
/// in full. It accepts exactly what that would accept, reading each byte once: the b64token
/// alphabet is visible ASCII, so no separate pass has to check the header's text.
fn well_formed_bearer(value: &[u8]) -> Option<&str> {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_blank(b))?;
    let end = value.iter().rposition(|b| !is_blank(b))? + 1;
    let value = &value[start..end];
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"Bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = &rest[rest.iter().position(|b| *b != b' ')?..];
    let body_end = token.iter().rposition(|b| *b != b'=')? + 1;
    if !is_b64token_body(&token[..body_end]) {
        return None;
    }
    std::str::from_utf8(token).ok()
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && is_b64token_body(body.as_bytes())
}

/// Whether every byte of `body` may stand in a b64token's body (everything but its trailing
/// `=`s).
///
/// A JWT access token is ~450 bytes, and this check runs on every protected request. A table
/// lookup per byte, or range tests that stop at the first bad byte, cost a sixth of a cached
/// JWT's whole trip through the bearer layer. Here each 32-byte block is judged without a
/// branch, so the compiler tests a block with a few vector instructions; only the verdict of
/// a whole block can end the loop early.
fn is_b64token_body(body: &[u8]) -> bool {
    let (blocks, tail) = body.as_chunks::<32>();
    blocks
        .iter()
        .all(|block| block.iter().fold(true, |ok, b| ok & is_b64token_byte(*b)))
        && tail.iter().all(|b| is_b64token_byte(*b))
}

/// `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`, as comparisons without a branch.
const fn is_b64token_byte(b: u8) -> bool {
    // `| 0x20` folds `A-Z` onto `a-z` and moves no other byte into `a-z`.
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    // `-`, `.`, `/` and `0-9` are one run, 0x2D..=0x39.
    let digit_or_dash_dot_slash = b.wrapping_sub(b'-') < 13;
    letter | digit_or_dash_dot_slash | (b == b'_') | (b == b'~') | (b == b'+')
}

/// Why a request to a protected resource was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerRejectionKind {
    /// No bearer credentials (none at all, or another scheme's).
    #[error("no bearer token was presented")]
    MissingToken,
    /// The `Authorization` header is malformed.
    #[error("malformed bearer credentials: {0}")]
    Malformed(&'static str),
    /// The verifier does not know the token (or it was revoked).
    #[error("the access token is unknown or revoked")]
    InvalidToken,
    /// The token has expired.
    #[error("the access token has expired")]
    Expired,
    /// The token was issued for another resource, or for none.
    #[error("the access token was not issued for this resource")]
    WrongAudience,
    /// The token lacks required scopes.
    #[error("the access token lacks required scopes")]
    InsufficientScope {
        /// The required scopes the token lacks.
        missing: Vec<String>,
    },
    /// The verifier could not decide.
    #[error("the token verifier failed")]
    Verifier(#[source] ProviderError),
}

/// A refused request, able to render its RFC 6750 §3 / RFC 9728 §5.1 response.
#[derive(Debug)]
pub struct BearerRejection {
    kind: BearerRejectionKind,
    challenge: Arc<Challenge>,
}

impl std::fmt::Display for BearerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for BearerRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

impl BearerRejection {
    /// Why the request was refused.
    pub fn kind(&self) -> &BearerRejectionKind {
        &self.kind
    }

    /// The RFC 6750 §3.1 error code of the challenge; `None` when no credentials were sent
    /// and when the verifier failed.
    pub fn error_code(&self) -> Option<BearerErrorCode> {
        match self.kind {
            BearerRejectionKind::MissingToken | BearerRejectionKind::Verifier(_) => None,
            BearerRejectionKind::Malformed(_) => Some(BearerErrorCode::InvalidRequest),
            BearerRejectionKind::InvalidToken
            | BearerRejectionKind::Expired
            | BearerRejectionKind::WrongAudience => Some(BearerErrorCode::InvalidToken),
            BearerRejectionKind::InsufficientScope { .. } => {
                Some(BearerErrorCode::InsufficientScope)
            }
        }
    }

    /// The status of the response: 400, 401 or 403 (RFC 6750 §3.1), or 503 when the verifier
    /// failed.
    pub fn status(&self) -> StatusCode {
        match (&self.kind, self.error_code()) {
            (BearerRejectionKind::Verifier(_), _) => StatusCode::SERVICE_UNAVAILABLE,
            (_, Some(code)) => code.status(),
            (_, None) => StatusCode::UNAUTHORIZED,
        }
    }

    /// The description for the client developer.
    fn description(&self) -> String {
        match &self.kind {
            // The Python SDK's wording, kept for clients that show it.
            BearerRejectionKind::MissingToken => "Authentication required".to_owned(),
            BearerRejectionKind::Malformed(reason) => (*reason).to_owned(),
            BearerRejectionKind::InsufficientScope { missing } => {
                let noun = if missing.len() == 1 {
                    "scope"
                } else {
                    "scopes"
                };
                format!("Required {noun}: {}", missing.join(" "))
            }
            other => other.to_string(),
        }
    }

    /// The `WWW-Authenticate` value: `Bearer` with `error` and `error_description` (unless no
    /// credentials were sent, RFC 6750 §3.1), `scope` when scopes are required, and
    /// `resource_metadata` (RFC 9728 §5.1). `None` for a verifier failure, which gets no
    /// challenge.
    pub fn www_authenticate(&self) -> Option<String> {
        if matches!(self.kind, BearerRejectionKind::Verifier(_)) {
            return None;
        }
        let mut params = Vec::with_capacity(4);
        if let Some(code) = self.error_code() {
            params.push(auth_param("error", code.as_str()));
            params.push(auth_param("error_description", &self.description()));
        }
        if !self.challenge.scope.is_empty() {
            params.push(auth_param("scope", &self.challenge.scope));
        }
        params.push(auth_param(
            "resource_metadata",
            &self.challenge.resource_metadata,
        ));
        Some(format!("Bearer {}", params.join(", ")))
    }

    /// The response: the challenge in `WWW-Authenticate` and, as the Python SDK sends, a JSON
    /// body with `error` and `error_description` (`invalid_token` when no credentials were
    /// sent; the header alone follows RFC 6750 §3.1 there). A verifier failure is a `503
    /// temporarily_unavailable` whose cause goes to the log only.
    pub fn into_response(self) -> Response<Bytes> {
        let Some(challenge) = self.www_authenticate() else {
            if let BearerRejectionKind::Verifier(error) = &self.kind {
                tracing::error!(error = %mcp_auth_core::ErrorChain(error), "token verifier failure");
            }
            let mut response = response::oauth_error(ServerErrorCode::TemporarilyUnavailable, None);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        };
        let code = self.error_code().unwrap_or(BearerErrorCode::InvalidToken);
        let body = ErrorBody::new(code, Some(self.description()));
        let mut response = response::json(self.status(), &body, Caching::NoStore);
        let value = HeaderValue::from_str(&challenge)
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
        response
    }
}

/// `name="value"` with the value as an RFC 9110 §5.6.4 quoted-string: `"` and `\` escaped,
/// control characters (which a quoted-string cannot hold) dropped.
fn auth_param(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 3);
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
