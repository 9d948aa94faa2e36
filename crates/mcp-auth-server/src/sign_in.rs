//! The sign-in and consent page at `<issuer>/sign-in`.
//!
//! `/authorize` stores the validated request and redirects here with `request_id`. The page
//! shows who is asking (client name, redirect host, scopes) and one form; approving with a
//! valid user name and password issues the code, denying sends `access_denied`. Both answer
//! with a 302 to the client's redirect URI, carrying `state` and `iss` (RFC 9207).
//!
//! - HTML is rendered by minijinja with auto-escaping (`.html` templates), no JavaScript.
//! - CSRF: double submit, bound to the pending request. GET sets a token in an `HttpOnly`,
//!   `SameSite=Strict` cookie (named `__Host-…` on https, so no sibling host can plant it) and
//!   puts the same token in a hidden input; the token is a random value and a hash of it with
//!   the request id, so a token issued for one sign-in is refused for another. POST compares
//!   cookie and input in constant time and answers 403 on a mismatch.
//! - Guessing: each pending sign-in accepts [`Limits::sign_in_attempts_per_request`] password
//!   attempts, after which it is burned (`access_denied` to the client); attempts are also
//!   budgeted per user name and per client address (429 with `Retry-After`, no password
//!   check), and password checks run a bounded number at a time (503 with `Retry-After` when
//!   none frees up).
//!
//! [`Limits::sign_in_attempts_per_request`]: crate::limits::Limits::sign_in_attempts_per_request
//! - `Content-Security-Policy` forbids framing (`frame-ancestors 'none'`, plus
//!   `X-Frame-Options: DENY` for old browsers), scripts and every other fetch; `form-action`
//!   allows this origin and the client's redirect origin, because browsers apply it to the
//!   redirect that follows the form submission too.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, body::Body};
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY,
    RETRY_AFTER, SET_COOKIE, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use mcp_auth_core::secrets::{constant_time_eq, random_secret};
use mcp_auth_core::{ErrorChain, audit};
use mcp_auth_core::{PendingAuthorization, StoreProvider, is_metadata_document_client_id};
use minijinja::{Environment, context};
use serde::Deserialize;
use url::{Host, Url};

mod federation;

pub(crate) use federation::Federation;
pub use federation::{OIDC_COOKIE, SECURE_OIDC_COOKIE};

use crate::limits::Limits;
use crate::store::DynStorage;
use crate::throttle::{Throttle, client_key};
use crate::users::{Users, VerifyError};
use mcp_auth_core::secrets::SecretHash;

/// The provider the server runs.
pub(crate) type Provider = StoreProvider<DynStorage>;

/// The CSRF cookie's name on http (local development).
pub const CSRF_COOKIE: &str = "mcp_auth_csrf";

/// The CSRF cookie's name on https: the `__Host-` prefix makes browsers accept it only with
/// `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot set or overwrite it.
pub const SECURE_CSRF_COOKIE: &str = "__Host-mcp_auth_csrf";

/// Longest user name and password a sign-in form may carry: argon2 hashes whatever it is
/// given, and budgets are keyed by user name.
const MAX_USERNAME_BYTES: usize = 256;
const MAX_PASSWORD_BYTES: usize = 1024;

const SIGN_IN_TEMPLATE: &str = "sign_in.html";
const MESSAGE_TEMPLATE: &str = "message.html";

/// The policy of every page; the form page adds `form-action`.
const BASE_CSP: &str = "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'";

/// State of the sign-in routes.
#[derive(Debug)]
pub(crate) struct SignIn {
    provider: Arc<Provider>,
    users: Arc<Users>,
    templates: Environment<'static>,
    path: String,
    secure_cookie: bool,
    throttle: Throttle,
    limits: Limits,
    /// Sign-in through an OpenID Provider, when configured.
    federation: Option<Arc<Federation>>,
}

impl SignIn {
    /// The sign-in page at `path` (the path of `<issuer>/sign-in`). `secure_cookie` adds
    /// `Secure` to the CSRF cookie; set it when the issuer is https.
    pub(crate) fn new(
        provider: Arc<Provider>,
        users: Arc<Users>,
        path: String,
        secure_cookie: bool,
        throttle: Throttle,
        limits: Limits,
        federation: Option<Federation>,
    ) -> Result<Self, minijinja::Error> {
        let mut templates = Environment::new();
        templates.add_template(SIGN_IN_TEMPLATE, include_str!("../templates/sign_in.html"))?;
        templates.add_template(MESSAGE_TEMPLATE, include_str!("../templates/message.html"))?;
        Ok(Self {
            provider,
            users,
            templates,
            path,
            secure_cookie,
            throttle,
            limits,
            federation: federation.map(Arc::new),
        })
    }

    /// `GET` and `POST` on the sign-in path.
    pub(crate) fn router(self) -> Router {
        let path = self.path.clone();
        Router::new()
            .route(&path, get(show).post(submit))
            .route(&format!("{path}/oidc"), get(federation::start))
            .route(&format!("{path}/oidc/callback"), get(federation::callback))
            .route(
                &format!("{path}/oidc/consent"),
                axum::routing::post(federation::consent),
            )
            .with_state(Arc::new(self))
    }

    /// The cookie's name, path and `Secure` attribute: `__Host-` on https (which requires
    /// `Path=/`), else the sign-in path.
    fn cookie_scope(&self) -> (&'static str, &str, &'static str) {
        if self.secure_cookie {
            (SECURE_CSRF_COOKIE, "/", "; Secure")
        } else {
            (CSRF_COOKIE, &self.path, "")
        }
    }

    fn csrf_cookie(&self, token: &str) -> String {
        let (name, path, secure) = self.cookie_scope();
        format!("{name}={token}; Path={path}; HttpOnly; SameSite=Strict{secure}")
    }

    fn expired_csrf_cookie(&self) -> String {
        let (name, path, secure) = self.cookie_scope();
        format!("{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
    }

    fn too_many_attempts(&self, retry_after: Option<std::time::Duration>) -> Response {
        let mut response = self.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            "Too many sign-in attempts were made for this account or from this network. \
             Wait a few minutes, then go back to the application and sign in again.",
        );
        let seconds = retry_after.map_or(60, |wait| wait.as_secs().max(1));
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
        response
    }

    fn busy(&self) -> Response {
        let mut response = self.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is busy",
            "The server is checking many sign-ins right now. Go back and try again in a moment.",
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("2"));
        response
    }

    /// The form for `pending`, with an optional error and the user name to keep.
    fn form(
        &self,
        pending: &PendingAuthorization,
        request_id: &str,
        csrf_token: &str,
        error: Option<&str>,
        username: &str,
    ) -> Response {
        self.page_for(pending, request_id, csrf_token, error, username, None)
    }

    /// The consent form for `pending`, after `user` signed in at the identity provider.
    fn consent_form(
        &self,
        pending: &PendingAuthorization,
        request_id: &str,
        csrf_token: &str,
        user: &str,
    ) -> Response {
        self.page_for(pending, request_id, csrf_token, None, "", Some(user))
    }

    /// The sign-in page: the password form and the identity provider's button, or, once
    /// `federated_user` signed in there, the consent form.
    fn page_for(
        &self,
        pending: &PendingAuthorization,
        request_id: &str,
        csrf_token: &str,
        error: Option<&str>,
        username: &str,
        federated_user: Option<&str>,
    ) -> Response {
        let client = &pending.client;
        let client_name = client
            .metadata
            .client_name
            .clone()
            .unwrap_or_else(|| client.client_id.clone());
        let redirect = Url::parse(&pending.params.redirect_uri).ok();
        let redirect_host = redirect
            .as_ref()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| pending.params.redirect_uri.clone());
        // A metadata-document client names itself: its `client_name` is whatever the document
        // says, so the page shows the host that vouches for it, which the user can judge.
        let client_host = is_metadata_document_client_id(&client.client_id)
            .then(|| Url::parse(&client.client_id).ok())
            .flatten()
            .and_then(|url| url.host_str().map(str::to_owned));
        let redirect_is_loopback = redirect.as_ref().is_some_and(is_loopback);
        let html = self.render(
            SIGN_IN_TEMPLATE,
            context! {
                client_name,
                client_id => client.client_id.clone(),
                client_host,
                redirect_host,
                redirect_is_loopback,
                scopes => pending.params.scopes.clone().unwrap_or_default(),
                request_id,
                csrf_token,
                error,
                username,
                federated_user,
                password_form => self.federation.as_ref().is_none_or(|f| f.password_sign_in),
                oidc_name => self.federation.as_ref().map(|f| f.name().to_owned()),
                oidc_start => format!("{}/oidc", self.path),
                consent_action => format!("{}/oidc/consent", self.path),
            },
        );
        let csp = match redirect.as_ref().and_then(form_action_source) {
            Some(source) => format!("{BASE_CSP}; form-action 'self' {source}"),
            // A redirect URI CSP cannot name (an IPv6 literal): restricting form-action would
            // block the redirect, so leave it out; the 302 goes to the registered URI anyway.
            None => BASE_CSP.to_owned(),
        };
        page(StatusCode::OK, html, &csp)
    }

    fn message(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let html = self.render(MESSAGE_TEMPLATE, context! { title, message });
        page(status, html, &format!("{BASE_CSP}; form-action 'none'"))
    }

    fn unknown_request(&self) -> Response {
        self.message(
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired",
            "The authorization request is unknown, has expired or was already answered. \
             Go back to the application and start signing in again.",
        )
    }

    fn unavailable(&self) -> Response {
        self.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "The server cannot reach its storage right now. Try again in a moment.",
        )
    }

    fn render(&self, template: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
        self.templates.get_template(template)?.render(ctx)
    }
}

/// A page with the security headers every sign-in response carries.
fn page(status: StatusCode, html: Result<String, minijinja::Error>, csp: &str) -> Response {
    let html = match html {
        Ok(html) => html,
        Err(err) => {
            tracing::error!(error = %err, "cannot render the sign-in page");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response();
        }
    };
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    match HeaderValue::from_str(csp) {
        Ok(value) => headers.insert(CONTENT_SECURITY_POLICY, value),
        Err(_) => headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(BASE_CSP)),
    };
    security_headers(headers);
    response
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// Whether `redirect` goes to this computer only (`localhost` or a loopback address): then
/// whatever runs locally receives the code, and the page warns about it.
fn is_loopback(redirect: &Url) -> bool {
    match redirect.host() {
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The CSP source matching `redirect`: its origin for http(s), its scheme for a private-use
/// scheme (RFC 8252 §7.1), `None` for a host CSP's grammar cannot express (IPv6 literals).
fn form_action_source(redirect: &Url) -> Option<String> {
    match redirect.scheme() {
        "http" | "https" => match redirect.host()? {
            Host::Ipv6(_) => None,
            Host::Domain(_) | Host::Ipv4(_) => Some(redirect.origin().ascii_serialization()),
        },
        // The url crate lower-cases schemes and admits only [a-z0-9+.-] in them, so this
        // cannot break out of the header.
        scheme => Some(format!("{scheme}:")),
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

fn redirect(sign_in: &SignIn, location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(value) => headers.insert(LOCATION, value),
        Err(_) => {
            tracing::error!("the provider built a redirect URI that is not a header value");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    security_headers(headers);
    with_cookie(response, &sign_in.expired_csrf_cookie())
}

/// The CSRF cookie `name` from the request's cookies.
fn csrf_cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value)
}

/// A CSRF token bound to `request_id`: a random value, `.`, and the hash of both. The cookie
/// cannot be planted by another site, so the binding needs no key: it only has to make a
/// token issued for one pending sign-in fail for every other.
fn bound_csrf_token(request_id: &str) -> String {
    let nonce = random_secret();
    let binding = csrf_binding(&nonce, request_id);
    format!("{nonce}.{binding}")
}

fn csrf_binding(nonce: &str, request_id: &str) -> String {
    SecretHash::of(&format!("{nonce}\n{request_id}")).to_hex()
}

/// Whether the form's token matches the cookie (constant time) and was issued for
/// `request_id`.
fn csrf_token_is_valid(cookie: &str, form_token: &str, request_id: &str) -> bool {
    if cookie.is_empty() || !constant_time_eq(cookie.as_bytes(), form_token.as_bytes()) {
        return false;
    }
    let Some((nonce, binding)) = cookie.split_once('.') else {
        return false;
    };
    constant_time_eq(
        binding.as_bytes(),
        csrf_binding(nonce, request_id).as_bytes(),
    )
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    request_id: Option<String>,
}

async fn show(
    State(sign_in): State<Arc<SignIn>>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(request_id) = query.ok().and_then(|Query(q)| q.request_id) else {
        return sign_in.unknown_request();
    };
    if sign_in
        .federation
        .as_ref()
        .is_some_and(|federation| !federation.password_sign_in)
    {
        // Only the identity provider signs users in: no page to choose from.
        return federation::start_for(&sign_in, &request_id).await;
    }
    match sign_in.provider.pending_authorization(&request_id).await {
        Ok(Some(pending)) => {
            let token = bound_csrf_token(&request_id);
            let response = sign_in.form(&pending, &request_id, &token, None, "");
            with_cookie(response, &sign_in.csrf_cookie(&token))
        }
        Ok(None) => sign_in.unknown_request(),
        Err(err) => {
            tracing::error!(error = %ErrorChain(&err), "cannot load a pending authorization");
            sign_in.unavailable()
        }
    }
}

/// The submitted form. The password never leaves this handler except into argon2.
#[derive(Deserialize)]
struct SubmitForm {
    request_id: String,
    csrf_token: String,
    decision: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn submit(
    State(sign_in): State<Arc<SignIn>>,
    connect_info: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<SubmitForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return sign_in.message(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in form",
            "The form was incomplete. Go back to the application and start signing in again.",
        );
    };
    let (cookie_name, _, _) = sign_in.cookie_scope();
    let csrf_ok = csrf_cookie_value(&headers, cookie_name)
        .is_some_and(|cookie| csrf_token_is_valid(cookie, &form.csrf_token, &form.request_id));
    if !csrf_ok {
        tracing::warn!("sign-in form refused: CSRF token missing or mismatched");
        return sign_in.message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form could not be verified (it may be stale, or was sent from another \
             site). Go back to the application and start signing in again.",
        );
    }
    match form.decision.as_str() {
        "deny" => match sign_in.provider.deny_authorization(&form.request_id).await {
            // The provider's audit event (consent.denied) records it.
            Ok(location) => redirect(&sign_in, &location),
            Err(err) => finish_error(&sign_in, &err),
        },
        "approve" => {
            let peer = connect_info.map(|axum::Extension(ConnectInfo(peer))| peer);
            let client = sign_in.throttle.client_ip(&headers, peer);
            approve(&sign_in, form, client).await
        }
        _ => sign_in.message(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in form",
            "The form was incomplete. Go back to the application and start signing in again.",
        ),
    }
}

async fn approve(sign_in: &SignIn, form: SubmitForm, ip: std::net::IpAddr) -> Response {
    let client = &client_key(ip);
    // Load the request first: an unknown one gets the restart page, whatever the password.
    let pending = match sign_in
        .provider
        .pending_authorization(&form.request_id)
        .await
    {
        Ok(Some(pending)) => pending,
        Ok(None) => return sign_in.unknown_request(),
        Err(err) => {
            tracing::error!(error = %ErrorChain(&err), "cannot load a pending authorization");
            return sign_in.unavailable();
        }
    };
    let SubmitForm {
        request_id,
        csrf_token,
        username,
        password,
        ..
    } = form;
    // No local name holds ':' (the CLI refuses it, `--user` splits at it), which is what keeps
    // local users apart from federated ones (`oidc:…`): a store written otherwise must not
    // be able to make one.
    if username.len() > MAX_USERNAME_BYTES
        || password.len() > MAX_PASSWORD_BYTES
        || username.contains(':')
    {
        return sign_in.form(
            &pending,
            &request_id,
            &csrf_token,
            Some("Wrong user name or password."),
            "",
        );
    }
    if let Some(refusal) = spend_attempt(sign_in, &request_id, &username, client).await {
        return refusal;
    }
    let verified = match sign_in.users.verify(username.clone(), password).await {
        Ok(verified) => verified,
        Err(VerifyError::Busy) => return sign_in.busy(),
        Err(VerifyError::Unavailable) => return sign_in.unavailable(),
    };
    if !verified {
        // Not the name as typed: people type their password into the name field.
        mcp_auth_core::audit_event!(
            audit::SIGN_IN_FAILED,
            user_hash = %user_hash(&username),
            client_id = %pending.client.client_id,
            %ip,
            "wrong user name or password"
        );
        return sign_in.form(
            &pending,
            &request_id,
            &csrf_token,
            Some("Wrong user name or password."),
            &username,
        );
    }
    match sign_in
        .provider
        .complete_authorization(&request_id, &username)
        .await
    {
        Ok(location) => {
            mcp_auth_core::audit_event!(
                audit::SIGN_IN_SUCCEEDED,
                user = %username,
                client_id = %pending.client.client_id,
                %ip,
            );
            mcp_auth_core::audit_event!(
                audit::CONSENT_APPROVED,
                user = %username,
                client_id = %pending.client.client_id,
                %ip,
                scope = %pending.params.scopes.as_deref().unwrap_or_default().join(" "),
            );
            redirect(sign_in, &location)
        }
        Err(err) => finish_error(sign_in, &err),
    }
}

/// What the audit log says of a user name as typed: the first 16 hex digits of its SHA-256,
/// enough to tell that attempts aimed at one name, never the text (which may be a password
/// typed into the wrong field).
fn user_hash(name: &str) -> String {
    let mut hex = SecretHash::of(name).to_hex();
    hex.truncate(16);
    hex
}

/// Spends one attempt of the pending request's, the user name's and the client address's
/// budgets, before any password is checked. A pending request out of attempts is burned: the
/// client gets `access_denied` and the user must start again; the other budgets answer 429.
async fn spend_attempt(
    sign_in: &SignIn,
    request_id: &str,
    username: &str,
    client: &str,
) -> Option<Response> {
    use mcp_auth_core::RateDecision;
    // Keys hold hashes: the request id is a capability, and user names are attacker-chosen.
    let request_key = format!("sign-in-request:{}", SecretHash::of(request_id).to_hex());
    let request_quota = sign_in.limits.sign_in_request_quota();
    match sign_in
        .throttle
        .limiter
        .acquire(&request_key, request_quota)
        .await
    {
        Ok(RateDecision::Allowed) => {}
        Ok(RateDecision::Limited { .. }) => {
            mcp_auth_core::audit_event!(
                warn: audit::RATE_LIMITED,
                budget = "sign-in-request",
                client,
                "sign-in burned after too many wrong passwords"
            );
            return Some(
                match sign_in.provider.deny_authorization(request_id).await {
                    Ok(location) => redirect(sign_in, &location),
                    Err(err) => finish_error(sign_in, &err),
                },
            );
        }
        Err(err) => {
            // Without the count, guesses would be unbounded: fail closed.
            tracing::error!(error = %ErrorChain(&err), "cannot count sign-in attempts");
            return Some(sign_in.unavailable());
        }
    }
    let budgets = [
        (
            format!("sign-in-user:{}", SecretHash::of(username).to_hex()),
            sign_in.limits.sign_in_user_quota(),
        ),
        (
            format!("sign-in-ip:{client}"),
            sign_in.limits.sign_in_ip_quota(),
        ),
    ];
    for (key, quota) in budgets {
        let Some(quota) = quota else { continue };
        match sign_in.throttle.limiter.acquire(&key, quota).await {
            Ok(RateDecision::Allowed) => {}
            Ok(RateDecision::Limited { retry_after }) => {
                mcp_auth_core::audit_event!(
                    warn: audit::RATE_LIMITED,
                    budget = key.split(':').next().unwrap_or(""),
                    client,
                    user_hash = %user_hash(username),
                    "sign-in throttled"
                );
                return Some(sign_in.too_many_attempts(Some(retry_after)));
            }
            Err(err) => {
                tracing::error!(error = %ErrorChain(&err), "cannot count sign-in attempts");
                return Some(sign_in.unavailable());
            }
        }
    }
    None
}

/// `complete_authorization` and `deny_authorization` fail only for a request that is gone
/// (answered meanwhile, or expired) or when storage fails.
fn finish_error(sign_in: &SignIn, err: &mcp_auth_core::AuthorizeError) -> Response {
    match err {
        mcp_auth_core::AuthorizeError::Provider(source) => {
            tracing::error!(error = %ErrorChain(source), "cannot finish an authorization");
            sign_in.unavailable()
        }
        _ => sign_in.unknown_request(),
    }
}

#[cfg(test)]
mod tests;
