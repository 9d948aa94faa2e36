//! Sign-in through the company's OpenID Provider (`--oidc-issuer`), then consent here.
//!
//! 1. `GET <sign-in>/oidc?request_id=…` (the page's button, or the page itself when no
//!    password sign-in is offered): the pending authorization must exist; the relying party
//!    starts a sign-in (code flow, PKCE S256, fresh `state` and `nonce`), which is kept in a
//!    cookie sealed with AES-256-GCM (`HttpOnly`, `SameSite=Lax` so that the provider's
//!    redirect back carries it, 10 minutes), and the browser goes to the provider.
//! 2. `GET <sign-in>/oidc/callback`: the cookie must open and the callback must answer its
//!    sign-in (`state`, `iss`); the code is redeemed and the ID token validated; the user's
//!    subject is `oidc:` and the configured claim (local user names cannot contain `:`, so the
//!    two never collide); a domain rule needs a verified email in an allowed domain. Then the
//!    consent page, and the cookie now says who signed in, for which request.
//! 3. `POST <sign-in>/oidc/consent`: CSRF-checked like the password form; approve issues the
//!    code, deny sends `access_denied`.
//!
//! A failure ends the sign-in with a page. When the provider refused or its answer failed a
//! check, the client also gets `access_denied` (with `state` and `iss`) since its request is
//! known; a forged or replayed callback only gets the page (denying would let anyone cancel
//! someone else's sign-in); an unreachable provider gets a 503 page and the request stays
//! pending. Nothing the provider sent is logged but its error code.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use mcp_auth_jwt::SealingKey;
use mcp_auth_oidc::{Callback, FederatedUser, OidcError, OidcRelyingParty, PendingSignIn};
use serde::{Deserialize, Serialize};

use super::{
    SignIn, bound_csrf_token, csrf_cookie_value, csrf_token_is_valid, finish_error, redirect,
    with_cookie,
};
use crate::config::OidcSettings;
use crate::store::DynStorage;
use crate::upstream_tokens::UpstreamTokenSource;
use mcp_auth_core::{ErrorChain, audit};
use mcp_auth_core::{UpstreamTokenRecord, UpstreamTokenStore};

/// The sign-in cookie's name on http (local development).
pub const OIDC_COOKIE: &str = "mcp_auth_oidc";
/// Its name on https (`__Host-`: only with `Secure`, `Path=/`, no `Domain`).
pub const SECURE_OIDC_COOKIE: &str = "__Host-mcp_auth_oidc";

/// Additional data of each stage's sealed cookie, so that one stage's value cannot be passed
/// off as the other's (a replayed callback finds a consent cookie, which does not open as a
/// pending one).
const PENDING_CONTEXT: &str = "oidc pending sign-in";
const CONSENT_CONTEXT: &str = "oidc consent";

/// Seconds the consent page may stay open after the provider's callback.
const CONSENT_LIFETIME: i64 = 600;

/// The longest subject accepted from the provider's claim.
const MAX_SUBJECT_BYTES: usize = 255;

/// Sign-in through one OpenID Provider.
pub(crate) struct Federation {
    relying_party: OidcRelyingParty,
    settings: OidcSettings,
    cookies: SealingKey,
    /// Whether the page also offers the password form (there are local users).
    pub(crate) password_sign_in: bool,
    /// With `--oidc-keep-tokens`: seals the provider's tokens, kept per grant.
    tokens: Option<Arc<UpstreamTokenSource>>,
    /// Where the provider's tokens wait, sealed, between the callback and the consent.
    storage: DynStorage,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("relying_party", &self.relying_party)
            .field("password_sign_in", &self.password_sign_in)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct PendingCookie {
    request_id: String,
    pending: PendingSignIn,
}

#[derive(Serialize, Deserialize)]
struct ConsentCookie {
    request_id: String,
    subject: String,
    expires_at: i64,
    /// With `--oidc-keep-tokens`: where the provider's tokens wait (sealed, in the store: a
    /// cookie could not hold them), until consent files them under the new grant.
    pending_tokens: Option<String>,
}

impl Federation {
    pub(crate) fn new(
        relying_party: OidcRelyingParty,
        settings: OidcSettings,
        cookies: SealingKey,
        password_sign_in: bool,
        tokens: Option<Arc<UpstreamTokenSource>>,
        storage: DynStorage,
    ) -> Self {
        Self {
            relying_party,
            settings,
            cookies,
            password_sign_in,
            tokens,
            storage,
        }
    }

    /// The provider's name on the button.
    pub(crate) fn name(&self) -> &str {
        &self.settings.name
    }

    /// Our subject for `user`: `oidc:` and the configured claim, if the domain rule admits
    /// the user.
    fn subject(&self, user: &FederatedUser) -> Result<String, &'static str> {
        let claim = self.settings.subject_claim.as_str();
        let value = if claim == "sub" {
            Some(user.claims.subject())
        } else {
            user.claims.string(claim)
        };
        let value = value
            .filter(|value| {
                !value.is_empty()
                    && value.len() <= MAX_SUBJECT_BYTES
                    && !value.chars().any(char::is_control)
            })
            .ok_or("the ID token does not carry the claim that names users")?;
        // An email names a user only if the provider verified it: anyone could otherwise
        // register an account with someone else's address and sign in as them.
        if claim == "email" && !user.claims.email_verified() {
            return Err("the provider has not verified the email address that names the user");
        }
        if !self.settings.allow_domains.is_empty() {
            let email = user
                .claims
                .string("email")
                .ok_or("the ID token carries no email, which the domain rule needs")?;
            if !user.claims.email_verified() {
                return Err("the provider has not verified the email address");
            }
            let domain = email
                .rsplit_once('@')
                .map(|(_, domain)| domain.to_ascii_lowercase())
                .unwrap_or_default();
            if !self.settings.allow_domains.contains(&domain) {
                return Err("the email address is not in an allowed domain");
            }
        }
        Ok(format!("oidc:{value}"))
    }

    fn seal<T: Serialize>(&self, context: &str, value: &T) -> Option<String> {
        let json = serde_json::to_vec(value).ok()?;
        self.cookies.seal_text(context, &json).ok()
    }

    fn open<T: for<'de> Deserialize<'de>>(&self, context: &str, text: &str) -> Option<T> {
        let json = self.cookies.open_text(context, text).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

impl SignIn {
    fn federation(&self) -> Option<&Federation> {
        self.federation.as_deref()
    }

    fn oidc_cookie(&self, value: &str, max_age: i64) -> String {
        let (name, path, secure) = if self.secure_cookie {
            (SECURE_OIDC_COOKIE, "/", "; Secure")
        } else {
            (OIDC_COOKIE, self.path.as_str(), "")
        };
        // Lax, not Strict: the provider's redirect back is a cross-site navigation, which
        // must carry the cookie. It holds nothing a cross-site request could use: it only
        // opens with this server's key, for the browser that started the sign-in.
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }

    fn oidc_cookie_value<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let name = if self.secure_cookie {
            SECURE_OIDC_COOKIE
        } else {
            OIDC_COOKIE
        };
        csrf_cookie_value(headers, name)
    }

    fn provider_unavailable(&self) -> Response {
        self.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "The identity provider cannot be reached right now. Go back and try again in a \
             moment.",
        )
    }

    fn sign_in_failed(&self) -> Response {
        self.message(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot continue",
            "The answer from the identity provider could not be accepted (it may be stale, \
             replayed, or from another browser). Go back to the application and start signing \
             in again.",
        )
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct StartQuery {
    request_id: Option<String>,
}

/// Sends the browser to the provider for the pending authorization `request_id`.
pub(super) async fn start_for(sign_in: &SignIn, request_id: &str) -> Response {
    let Some(federation) = sign_in.federation() else {
        return sign_in.unknown_request();
    };
    match sign_in.provider.pending_authorization(request_id).await {
        Ok(Some(_)) => {}
        Ok(None) => return sign_in.unknown_request(),
        Err(err) => {
            tracing::error!(error = %ErrorChain(&err), "cannot load a pending authorization");
            return sign_in.unavailable();
        }
    }
    let start = match federation.relying_party.begin().await {
        Ok(start) => start,
        Err(err) => {
            tracing::warn!(error = %err, "cannot start a sign-in at the identity provider");
            return sign_in.provider_unavailable();
        }
    };
    let cookie = PendingCookie {
        request_id: request_id.to_owned(),
        pending: start.pending,
    };
    let Some(sealed) = federation.seal(PENDING_CONTEXT, &cookie) else {
        return sign_in.unavailable();
    };
    with_cookie(
        redirect(sign_in, &start.authorization_url),
        &sign_in.oidc_cookie(&sealed, mcp_auth_oidc::limits::SIGN_IN_LIFETIME),
    )
}

pub(super) async fn start(
    State(sign_in): State<Arc<SignIn>>,
    query: Result<Query<StartQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match query.ok().and_then(|Query(q)| q.request_id) {
        Some(request_id) => start_for(&sign_in, &request_id).await,
        None => sign_in.unknown_request(),
    }
}

/// `Debug` is not derived: the code is a credential.
#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

pub(super) async fn callback(
    State(sign_in): State<Arc<SignIn>>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(federation) = sign_in.federation() else {
        return sign_in.unknown_request();
    };
    let cleared = sign_in.oidc_cookie("", 0);
    let cookie: Option<PendingCookie> = sign_in
        .oidc_cookie_value(&headers)
        .and_then(|value| federation.open(PENDING_CONTEXT, value));
    let (Some(cookie), Ok(Query(query))) = (cookie, query) else {
        tracing::warn!("OpenID Connect callback without this browser's pending sign-in");
        return with_cookie(sign_in.sign_in_failed(), &cleared);
    };
    let callback = Callback {
        code: query.code.as_deref(),
        state: query.state.as_deref(),
        error: query.error.as_deref(),
        iss: query.iss.as_deref(),
    };
    let outcome = federation
        .relying_party
        .finish(&cookie.pending, callback)
        .await;
    let user = match outcome {
        Ok(user) => user,
        Err(err) => {
            // Decided before any await: the error need not live across one.
            let ending = ending(&err);
            drop(err);
            return with_cookie(end(&sign_in, &cookie.request_id, ending).await, &cleared);
        }
    };
    let subject = match federation.subject(&user) {
        Ok(subject) => subject,
        Err(reason) => {
            mcp_auth_core::audit_event!(
                audit::SIGN_IN_FAILED,
                method = "oidc",
                reason,
                "federated sign-in refused"
            );
            return with_cookie(deny(&sign_in, &cookie.request_id).await, &cleared);
        }
    };
    let pending = match sign_in
        .provider
        .pending_authorization(&cookie.request_id)
        .await
    {
        Ok(Some(pending)) => pending,
        Ok(None) => return with_cookie(sign_in.unknown_request(), &cleared),
        Err(err) => {
            tracing::error!(error = %ErrorChain(&err), "cannot load a pending authorization");
            return sign_in.unavailable();
        }
    };
    let pending_tokens = match &federation.tokens {
        Some(tokens) => {
            let id = format!("pending:{}", mcp_auth_core::secrets::random_id());
            let Some(sealed) = tokens.seal(&user.tokens) else {
                return sign_in.unavailable();
            };
            let record = UpstreamTokenRecord::new(
                id.as_str(),
                sealed,
                now().saturating_add(CONSENT_LIFETIME),
            );
            if let Err(err) = federation.storage.put_upstream_tokens(&record).await {
                tracing::error!(error = %ErrorChain(&err), "cannot keep the provider's tokens");
                return sign_in.unavailable();
            }
            Some(id)
        }
        None => None,
    };
    let consent = ConsentCookie {
        request_id: cookie.request_id.clone(),
        subject: subject.clone(),
        expires_at: now().saturating_add(CONSENT_LIFETIME),
        pending_tokens,
    };
    let Some(sealed) = federation.seal(CONSENT_CONTEXT, &consent) else {
        return sign_in.unavailable();
    };
    let token = bound_csrf_token(&cookie.request_id);
    let page = sign_in.consent_form(&pending, &cookie.request_id, &token, &subject);
    let page = with_cookie(page, &sign_in.csrf_cookie(&token));
    with_cookie(page, &sign_in.oidc_cookie(&sealed, CONSENT_LIFETIME))
}

/// The consent form, after a federated sign-in.
#[derive(Deserialize)]
pub(super) struct ConsentForm {
    request_id: String,
    csrf_token: String,
    decision: String,
}

pub(super) async fn consent(
    State(sign_in): State<Arc<SignIn>>,
    headers: HeaderMap,
    form: Result<axum::Form<ConsentForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(federation) = sign_in.federation() else {
        return sign_in.unknown_request();
    };
    let cleared = sign_in.oidc_cookie("", 0);
    let Ok(axum::Form(form)) = form else {
        return sign_in.sign_in_failed();
    };
    let (csrf_name, _, _) = sign_in.cookie_scope();
    let csrf_ok = csrf_cookie_value(&headers, csrf_name)
        .is_some_and(|cookie| csrf_token_is_valid(cookie, &form.csrf_token, &form.request_id));
    let consent: Option<ConsentCookie> = sign_in
        .oidc_cookie_value(&headers)
        .and_then(|value| federation.open::<ConsentCookie>(CONSENT_CONTEXT, value))
        .filter(|consent| consent.request_id == form.request_id && consent.expires_at > now());
    let (true, Some(consent)) = (csrf_ok, consent) else {
        tracing::warn!("consent refused: CSRF token or federated sign-in missing or mismatched");
        return with_cookie(sign_in.sign_in_failed(), &cleared);
    };
    let response = match form.decision.as_str() {
        "approve" => match approve(&sign_in, federation, &consent).await {
            Ok(location) => {
                mcp_auth_core::audit_event!(
                    audit::SIGN_IN_SUCCEEDED,
                    user = %consent.subject,
                    method = "oidc",
                );
                mcp_auth_core::audit_event!(
                    audit::CONSENT_APPROVED,
                    user = %consent.subject,
                    method = "oidc",
                );
                redirect(&sign_in, &location)
            }
            Err(err) => finish_error(&sign_in, &err),
        },
        "deny" => deny(&sign_in, &consent.request_id).await,
        _ => sign_in.sign_in_failed(),
    };
    if let Some(pending) = &consent.pending_tokens
        && let Err(err) = federation.storage.delete_upstream_tokens(pending).await
    {
        // The purge removes it at its expiry anyway.
        tracing::warn!(error = %ErrorChain(&err), "cannot delete waiting upstream tokens");
    }
    with_cookie(response, &cleared)
}

/// Issues the code; with kept tokens, files them under the new grant first.
async fn approve(
    sign_in: &SignIn,
    federation: &Federation,
    consent: &ConsentCookie,
) -> Result<String, mcp_auth_core::AuthorizeError> {
    let Some(pending) = &consent.pending_tokens else {
        return sign_in
            .provider
            .complete_authorization(&consent.request_id, &consent.subject)
            .await;
    };
    let record = federation
        .storage
        .get_upstream_tokens(pending, now())
        .await
        .map_err(mcp_auth_core::AuthorizeError::from)?
        // Gone: the consent page outlived its tokens; the sign-in must start again.
        .ok_or_else(|| {
            mcp_auth_core::AuthorizeError::new(
                mcp_auth_types::AuthorizeErrorCode::InvalidRequest,
                "the sign-in took too long; start again",
            )
        })?;
    sign_in
        .provider
        .complete_authorization_with_upstream_tokens(
            &consent.request_id,
            &consent.subject,
            record.sealed,
        )
        .await
}

/// How a sign-in the provider or its answer failed ends.
enum Ending {
    /// The provider could not be reached: a 503 page, the request stays pending.
    Unavailable,
    /// A forged, stale or replayed callback: a page only. It is no evidence about the pending
    /// request, and whoever sent it must not be able to cancel someone else's sign-in.
    PageOnly,
    /// The provider refused, or its answer failed a check: `access_denied` to the client.
    Deny,
}

/// Logs and audits `err` (its error code only, never what the provider sent) and says how
/// the sign-in ends.
fn ending(err: &OidcError) -> Ending {
    let reason = match err {
        OidcError::Denied { error } | OidcError::TokenRefused { error } => error.as_str(),
        OidcError::StateMismatch => "state",
        OidcError::IssuerMismatch => "iss",
        OidcError::Expired => "expired",
        _ if err.is_unavailable() => "unavailable",
        _ => "invalid",
    };
    mcp_auth_core::audit_event!(
        audit::SIGN_IN_FAILED,
        method = "oidc",
        reason,
        "federated sign-in failed"
    );
    if err.is_unavailable() {
        tracing::warn!(error = %err, "the identity provider could not complete a sign-in");
        return Ending::Unavailable;
    }
    match err {
        OidcError::StateMismatch | OidcError::IssuerMismatch | OidcError::Expired => {
            Ending::PageOnly
        }
        _ => {
            tracing::info!(error = %err, "federated sign-in refused");
            Ending::Deny
        }
    }
}

async fn end(sign_in: &SignIn, request_id: &str, ending: Ending) -> Response {
    match ending {
        Ending::Unavailable => sign_in.provider_unavailable(),
        Ending::PageOnly => sign_in.sign_in_failed(),
        Ending::Deny => deny(sign_in, request_id).await,
    }
}

async fn deny(sign_in: &SignIn, request_id: &str) -> Response {
    match sign_in.provider.deny_authorization(request_id).await {
        Ok(location) => redirect(sign_in, &location),
        Err(err) => finish_error(sign_in, &err),
    }
}

fn now() -> i64 {
    mcp_auth_core::Clock::now(&mcp_auth_core::SystemClock)
}
