//! A stand-in OpenID Provider on `https://127.0.0.1:PORT` (a self-signed certificate for that
//! address, which the server under test trusts through `--oidc-root-cert`).
//!
//! It serves discovery (listing one client authentication method, chosen at start), a JWKS,
//! `/authorize` (which records the request and answers the way the test says: approve, refuse
//! with `access_denied`, answer with a state of its own, or show a login page whose form,
//! posted to `/login` with the right user name and password, approves) and `/token`, which
//! checks what a real provider checks — the grant type, a code it issued and has not redeemed
//! (single use), the `redirect_uri` of its request, the PKCE verifier against the S256
//! challenge, and the client's credentials by the advertised method — and returns an ID token
//! whose claims the test may change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::https_host::{self, TlsListener};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use mcp_auth_jwt::SigningAlgorithm;
use mcp_auth_jwt::test_util::TestKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The server's client id at the provider.
pub(super) const CLIENT_ID: &str = "mcp-auth-at-acme";
/// Its secret: spaces, a colon and an ampersand, so that `client_secret_basic` must
/// form-encode it (RFC 6749 §2.3.1) for the provider to read it back.
pub(super) const CLIENT_SECRET: &str = "op secret: with & in it";

/// Seconds an issued ID token is valid.
const ID_TOKEN_LIFETIME: i64 = 300;

/// How the token endpoint wants the client to authenticate (the one method discovery lists).
#[derive(Clone, Copy, Debug)]
pub(super) enum ClientAuth {
    Basic,
    Post,
}

/// What `/authorize` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// The user signed in: a code, the request's state and `iss`.
    Approve,
    /// The user (or a policy) refused: `error=access_denied`, the state and `iss`.
    Deny,
    /// A code, but with a state this sign-in never sent (a forged callback).
    WrongState,
    /// A login page (user name and password); only its form, posted to `/login` with
    /// [`LOGIN_USER`] and [`LOGIN_PASSWORD`], answers, as `Approve` does. A wrong pair shows
    /// the page again with an error (401).
    // Only the browser test (browser_sign_in.rs) signs in through the page.
    #[allow(dead_code)]
    LoginPage,
}

/// The user name the login page accepts.
#[allow(dead_code)] // see `Answer::LoginPage`
pub(super) const LOGIN_USER: &str = "ada";
/// The password the login page accepts.
#[allow(dead_code)] // see `Answer::LoginPage`
pub(super) const LOGIN_PASSWORD: &str = "analytical engine";

/// A code issued by `/authorize`, until redeemed.
struct Grant {
    redirect_uri: String,
    code_challenge: String,
    nonce: String,
}

struct Shared {
    issuer: String,
    auth: ClientAuth,
    key: TestKey,
    answer: Mutex<Answer>,
    token_endpoint_down: AtomicBool,
    claims: Mutex<Value>,
    codes: Mutex<HashMap<String, Grant>>,
    authorizations: Mutex<Vec<HashMap<String, String>>>,
    /// The authorization requests waiting on the login page, by the page's `login_id`.
    logins: Mutex<HashMap<String, HashMap<String, String>>>,
    token_outcomes: Mutex<Vec<Result<(), String>>>,
    /// Seconds its access tokens live.
    access_token_lifetime: std::sync::atomic::AtomicI64,
    /// Every access token issued, in order.
    access_tokens: Mutex<Vec<String>>,
    /// Refresh tokens that may be used (each once: they rotate).
    refresh_tokens: Mutex<std::collections::HashSet<String>>,
    /// Refresh-token grants answered.
    refreshes: std::sync::atomic::AtomicUsize,
}

/// The running provider; it serves until the test's runtime ends.
pub(super) struct Provider {
    /// `https://127.0.0.1:PORT`, byte for byte the `issuer` of its documents and tokens.
    pub(super) issuer: String,
    /// Its certificate, PEM, in a file (for `--oidc-root-cert`).
    pub(super) pem_file: PathBuf,
    /// Its certificate, PEM (for the test's browser).
    pub(super) pem: String,
    shared: Arc<Shared>,
}

impl Provider {
    /// Starts a provider whose discovery lists `auth` as the one client authentication
    /// method; it approves every sign-in as `u-1001` (`ada@acme.example`, verified).
    pub(super) async fn start(auth: ClientAuth) -> Self {
        let https_host::SelfSigned {
            acceptor,
            pem,
            pem_file,
        } = https_host::self_signed(&["127.0.0.1"]);
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("https://{}", tcp.local_addr().unwrap());
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            auth,
            key: TestKey::generate(SigningAlgorithm::ES256, "op-1"),
            answer: Mutex::new(Answer::Approve),
            token_endpoint_down: AtomicBool::new(false),
            claims: Mutex::new(json!({})),
            codes: Mutex::default(),
            authorizations: Mutex::default(),
            logins: Mutex::default(),
            token_outcomes: Mutex::default(),
            access_token_lifetime: std::sync::atomic::AtomicI64::new(300),
            access_tokens: Mutex::default(),
            refresh_tokens: Mutex::default(),
            refreshes: std::sync::atomic::AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(discovery),
            )
            .route("/jwks", axum::routing::get(jwks))
            .route("/authorize", axum::routing::get(authorize))
            .route("/login", axum::routing::post(login))
            .route("/token", axum::routing::post(token))
            .with_state(shared.clone());
        let listener = TlsListener { tcp, acceptor };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            issuer,
            pem_file,
            pem,
            shared,
        }
    }

    /// An absolute URL on the provider.
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// How `/authorize` answers from now on.
    pub(super) fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// Whether `/token` answers 503 (an outage) from now on, without looking at the request.
    pub(super) fn token_endpoint_down(&self, down: bool) {
        self.shared
            .token_endpoint_down
            .store(down, Ordering::SeqCst);
    }

    /// Changes to the ID token's claims from now on (`null` removes a claim): `sub`, `email`,
    /// `email_verified`, `aud`, `nonce` (by default the one the sign-in sent), ….
    pub(super) fn claims(&self, changes: Value) {
        *self.shared.claims.lock().unwrap() = changes;
    }

    /// The query of every request `/authorize` received.
    pub(super) fn authorizations(&self) -> Vec<HashMap<String, String>> {
        self.shared.authorizations.lock().unwrap().clone()
    }

    /// Makes its access tokens live `seconds`.
    #[allow(dead_code)] // the browser tests do not keep tokens
    pub(super) fn access_token_lifetime(&self, seconds: i64) {
        self.shared
            .access_token_lifetime
            .store(seconds, Ordering::SeqCst);
    }

    /// Every access token it issued, in order.
    #[allow(dead_code)] // the browser tests do not keep tokens
    pub(super) fn access_tokens(&self) -> Vec<String> {
        self.shared.access_tokens.lock().unwrap().clone()
    }

    /// How many refresh-token grants it answered.
    #[allow(dead_code)] // the browser tests do not keep tokens
    pub(super) fn refreshes(&self) -> usize {
        self.shared.refreshes.load(Ordering::SeqCst)
    }

    /// The outcome of every token request: `Ok` when a token was issued, else why not.
    pub(super) fn token_outcomes(&self) -> Vec<Result<(), String>> {
        self.shared.token_outcomes.lock().unwrap().clone()
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    let issuer = &shared.issuer;
    let method = match shared.auth {
        ClientAuth::Basic => "client_secret_basic",
        ClientAuth::Post => "client_secret_post",
    };
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", method],
    }))
    .into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(TestKey::jwks(&[&shared.key])).into_response()
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.authorizations.lock().unwrap().push(query.clone());
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let well_formed = param("response_type") == "code"
        && param("client_id") == CLIENT_ID
        && param("scope").split(' ').any(|scope| scope == "openid")
        && param("code_challenge_method") == "S256"
        && !param("code_challenge").is_empty()
        && !param("nonce").is_empty()
        && !param("state").is_empty()
        && !param("redirect_uri").is_empty();
    if !well_formed {
        // A real provider shows an error page for a request it cannot trust.
        return (StatusCode::BAD_REQUEST, "malformed authorization request").into_response();
    }
    let answer = *shared.answer.lock().unwrap();
    if answer == Answer::LoginPage {
        let login_id = format!("login-{:016x}", rand::random::<u64>());
        shared
            .logins
            .lock()
            .unwrap()
            .insert(login_id.clone(), query.clone());
        return (StatusCode::OK, login_page(&login_id, None)).into_response();
    }
    answer_request(&shared, &query, answer, StatusCode::FOUND)
}

/// The login page's form: the right user name and password answer its authorization request
/// as `Approve` does (a 303, so that the browser GETs the callback); a wrong pair shows the
/// page again, the request still waiting.
async fn login(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let login_id = field("login_id");
    let query = {
        let mut logins = shared.logins.lock().unwrap();
        if !logins.contains_key(login_id) {
            return (StatusCode::BAD_REQUEST, "unknown or finished sign-in").into_response();
        }
        if field("username") != LOGIN_USER || field("password") != LOGIN_PASSWORD {
            let page = login_page(login_id, Some("Wrong user name or password."));
            return (StatusCode::UNAUTHORIZED, page).into_response();
        }
        logins.remove(login_id).unwrap()
    };
    answer_request(&shared, &query, Answer::Approve, StatusCode::SEE_OTHER)
}

/// The provider's own sign-in page. Nothing a browser sent is echoed unchecked (`login_id` is
/// one of the provider's own hex ids, looked up before the page shows it again), so nothing
/// needs escaping.
fn login_page(login_id: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|error| format!("<p class=\"error\" role=\"alert\">{error}</p>"))
        .unwrap_or_default();
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Acme identity provider: sign in</title>
<style>
  body {{ font-family: system-ui, sans-serif; background: #2d3142; margin: 0; }}
  main {{ max-width: 22rem; margin: 5rem auto; background: #fff; padding: 2rem; border-radius: 4px; }}
  h1 {{ font-size: 1.2rem; margin-top: 0; color: #c0392b; }}
  label {{ display: block; margin-top: 1rem; }}
  input {{ width: 100%; box-sizing: border-box; padding: .5rem; margin-top: .25rem; }}
  button {{ margin-top: 1.5rem; width: 100%; padding: .6rem; background: #c0392b; color: #fff;
            border: 0; border-radius: 4px; font-size: 1rem; }}
  .error {{ background: #fdecea; color: #8a1c12; padding: .5rem; }}
</style>
</head>
<body>
<main>
  <h1>Acme identity provider</h1>
  <p>Sign in to continue to <code>{CLIENT_ID}</code>.</p>
  {error}
  <form method="post" action="/login">
    <input type="hidden" name="login_id" value="{login_id}">
    <label for="username">User name</label>
    <input type="text" id="username" name="username" autocomplete="username" autofocus>
    <label for="password">Password</label>
    <input type="password" id="password" name="password" autocomplete="current-password">
    <button type="submit">Sign in</button>
  </form>
</main>
</body>
</html>
"#
    ))
}

/// Sends the browser back to the request's `redirect_uri` with `answer` (with `status`, a
/// redirect), recording the code it issues.
fn answer_request(
    shared: &Shared,
    query: &HashMap<String, String>,
    answer: Answer,
    status: StatusCode,
) -> Response {
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let code = format!("op-code-{:016x}", rand::random::<u64>());
    let mut location = url::Url::parse(param("redirect_uri")).unwrap();
    {
        let mut pairs = location.query_pairs_mut();
        match answer {
            Answer::Approve | Answer::LoginPage => pairs
                .append_pair("code", &code)
                .append_pair("state", param("state")),
            Answer::WrongState => pairs
                .append_pair("code", &code)
                .append_pair("state", "forged-state"),
            Answer::Deny => pairs
                .append_pair("error", "access_denied")
                .append_pair("state", param("state")),
        };
        pairs.append_pair("iss", &shared.issuer);
    }
    if answer != Answer::Deny {
        shared.codes.lock().unwrap().insert(
            code,
            Grant {
                redirect_uri: param("redirect_uri").to_owned(),
                code_challenge: param("code_challenge").to_owned(),
                nonce: param("nonce").to_owned(),
            },
        );
    }
    (status, [(header::LOCATION, location.to_string())]).into_response()
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if shared.token_endpoint_down.load(Ordering::SeqCst) {
        let outage = Err("unavailable".to_owned());
        shared.token_outcomes.lock().unwrap().push(outage);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return refresh(&shared, &headers, &form);
    }
    let outcome = redeem(&shared, &headers, &form);
    shared
        .token_outcomes
        .lock()
        .unwrap()
        .push(outcome.as_ref().map(|_| ()).map_err(|(_, why)| why.clone()));
    match outcome {
        Ok(id_token) => {
            let mut answer = fresh_tokens(&shared);
            answer["id_token"] = json!(id_token);
            axum::Json(answer).into_response()
        }
        Err((error, description)) => {
            let status = if error == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            let body = json!({"error": error, "error_description": description});
            (status, axum::Json(body)).into_response()
        }
    }
}

/// A new access token and refresh token, recorded.
fn fresh_tokens(shared: &Shared) -> Value {
    let access = format!("op-at-{:016x}", rand::random::<u64>());
    let refresh = format!("op-rt-{:016x}", rand::random::<u64>());
    shared.access_tokens.lock().unwrap().push(access.clone());
    shared
        .refresh_tokens
        .lock()
        .unwrap()
        .insert(refresh.clone());
    json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": shared.access_token_lifetime.load(Ordering::SeqCst),
        "refresh_token": refresh,
    })
}

/// The refresh-token grant: the client's credentials, then a known refresh token, which
/// rotates.
fn refresh(shared: &Shared, headers: &HeaderMap, form: &HashMap<String, String>) -> Response {
    let authenticated = match shared.auth {
        ClientAuth::Basic => basic_credentials(headers)
            .is_some_and(|(id, secret)| id == CLIENT_ID && secret == CLIENT_SECRET),
        ClientAuth::Post => {
            form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        }
    };
    let known = form
        .get("refresh_token")
        .is_some_and(|token| shared.refresh_tokens.lock().unwrap().remove(token));
    if !authenticated || !known {
        let body = json!({"error": "invalid_grant"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    shared.refreshes.fetch_add(1, Ordering::SeqCst);
    axum::Json(fresh_tokens(shared)).into_response()
}

/// Checks a token request as a provider must, then signs the ID token. The error is the
/// OAuth error code and why (for the test's assertions).
fn redeem(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<String, (&'static str, String)> {
    let field = |name: &str| form.get(name).map(String::as_str);
    let (client_id, client_secret) = match shared.auth {
        ClientAuth::Basic => {
            if form.contains_key("client_secret") {
                return Err(("invalid_request", "a secret in the form".to_owned()));
            }
            basic_credentials(headers).ok_or(("invalid_client", "no Basic credentials".into()))?
        }
        ClientAuth::Post => {
            if headers.contains_key(header::AUTHORIZATION) {
                return Err(("invalid_request", "an Authorization header".to_owned()));
            }
            let id = field("client_id").unwrap_or_default().to_owned();
            let secret = field("client_secret").unwrap_or_default().to_owned();
            (id, secret)
        }
    };
    if client_id != CLIENT_ID || client_secret != CLIENT_SECRET {
        return Err(("invalid_client", "wrong client credentials".to_owned()));
    }
    if field("grant_type") != Some("authorization_code") {
        return Err((
            "unsupported_grant_type",
            "not authorization_code".to_owned(),
        ));
    }
    // Single use: the code is gone whatever the rest of the request says.
    let grant = field("code")
        .and_then(|code| shared.codes.lock().unwrap().remove(code))
        .ok_or(("invalid_grant", "unknown or redeemed code".to_owned()))?;
    if field("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(("invalid_grant", "another redirect_uri".to_owned()));
    }
    let verifier = field("code_verifier").unwrap_or_default();
    let challenge =
        mcp_auth_types::s256_challenge(&mcp_auth_types::CodeVerifier::new(verifier.to_owned()));
    if verifier.is_empty() || challenge != grant.code_challenge {
        return Err((
            "invalid_grant",
            "the PKCE verifier does not match".to_owned(),
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let now = i64::try_from(now).unwrap();
    let mut claims = json!({
        "iss": shared.issuer,
        "sub": "u-1001",
        "aud": CLIENT_ID,
        "exp": now + ID_TOKEN_LIFETIME,
        "iat": now,
        "nonce": grant.nonce,
        "email": "ada@acme.example",
        "email_verified": true,
        "name": "Ada",
    });
    let changes = shared.claims.lock().unwrap().clone();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    Ok(shared.key.sign(Some("JWT"), &claims))
}

/// `Authorization: Basic` credentials, each form-decoded (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let form_decode = |part: &str| -> String {
        form_urlencoded::parse(part.as_bytes())
            .next()
            .map(|(decoded, _)| decoded.into_owned())
            .unwrap_or_default()
    };
    Some((form_decode(id), form_decode(secret)))
}
