//! Sign-in through an OpenID Provider (`--oidc-issuer`) over real sockets: the server on the
//! memory store, a stand-in provider on https (`oidc/provider.rs`), and the browser's part
//! played by hand — no redirect followed, cookies carried from `Set-Cookie` to `Cookie`. The
//! whole flow to `whoami`, the page with local users, forged and replayed callbacks, the
//! provider's refusal, ID tokens that fail their checks, the email-domain rule, the consent
//! step's CSRF and binding checks, and an unreachable provider. (Each ID-token rule is unit
//! tested in `mcp-auth-jwt`; here a few prove the wiring.)

use std::collections::BTreeMap;

use mcp_auth_server::{CSRF_COOKIE, Config, OIDC_COOKIE};
use mcp_auth_tests::server::{
    ALICE_PASSWORD, Authorization, TestClient, TestServer, hidden_input, location, redirect_params,
    without_request_budgets,
};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::json;

#[path = "oidc/keep_tokens.rs"]
mod keep_tokens;
#[path = "oidc/provider.rs"]
mod provider;

use provider::{Answer, CLIENT_ID, CLIENT_SECRET, ClientAuth, Provider};

/// The subject the provider's default user maps to.
const ADA: &str = "oidc:u-1001";

/// A server on the memory store signing users in at `issuer`, trusting `root_cert` (a PEM
/// file) for it, with `extra` flags (no local users unless `extra` adds some).
async fn server_for(
    issuer: &str,
    root_cert: Option<&std::path::Path>,
    extra: &[&str],
) -> TestServer {
    let root_cert = root_cert.map(|path| path.display().to_string());
    let mut args = vec![
        "mcp-auth-server",
        "--store",
        "memory",
        "--oidc-issuer",
        issuer,
        "--oidc-client-id",
        CLIENT_ID,
        "--oidc-client-secret",
        CLIENT_SECRET,
    ];
    if let Some(root_cert) = &root_cert {
        args.extend(["--oidc-root-cert", root_cert]);
    }
    args.extend_from_slice(extra);
    let config = Config::from_args(args).expect("OIDC configuration");
    TestServer::start_with(without_request_budgets(config)).await
}

/// A provider authenticating clients by `auth`, and a server signing users in there.
async fn start(auth: ClientAuth, extra: &[&str]) -> (Provider, TestServer) {
    let provider = Provider::start(auth).await;
    let server = server_for(&provider.issuer, Some(&provider.pem_file), extra).await;
    (provider, server)
}

/// The user agent: the server over plain http with the cookies it set, the provider over
/// https trusting only its certificate; neither follows redirects.
#[derive(Clone)]
struct Browser {
    to_server: reqwest::Client,
    to_provider: reqwest::Client,
    /// The server's cookies by name (every one of them is in scope for the sign-in paths).
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(server: &TestServer, provider_pem: &str) -> Self {
        let certificate = reqwest::Certificate::from_pem(provider_pem.as_bytes()).unwrap();
        let to_provider = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_only([certificate])
            .build()
            .unwrap();
        Self {
            to_server: server.http.clone(),
            to_provider,
            cookies: BTreeMap::new(),
        }
    }

    async fn get(&mut self, url: &str) -> Response {
        if url.starts_with("https://") {
            return self.to_provider.get(url).send().await.unwrap();
        }
        let response = self.with_cookies(self.to_server.get(url)).send().await;
        self.keep_cookies(response.unwrap())
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Response {
        let request = self.with_cookies(self.to_server.post(url).form(form));
        self.keep_cookies(request.send().await.unwrap())
    }

    fn with_cookies(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.cookies.is_empty() {
            return request;
        }
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        request.header(COOKIE, pairs.join("; "))
    }

    /// Stores the response's cookies; an empty value or `Max-Age=0` deletes one.
    fn keep_cookies(&mut self, response: Response) -> Response {
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        response
    }
}

/// The consent form shown after the provider's callback.
struct Consent {
    html: String,
    /// Where the form posts, relative to the server.
    action: String,
    csrf_token: String,
    request_id: String,
}

impl Consent {
    async fn read(response: Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK, "the consent page");
        let html = response.text().await.unwrap();
        let action = attribute(&html, "<form method=\"post\" action=\"");
        assert_eq!(action, "/sign-in/oidc/consent");
        Self {
            action,
            csrf_token: hidden_input(&html, "csrf_token"),
            request_id: hidden_input(&html, "request_id"),
            html,
        }
    }
}

/// The value of the attribute that follows `marker` in `html`, unescaped (the templates
/// escape `/` and `&`).
fn attribute(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"))
        + marker.len();
    let value = html[start..].split('"').next().unwrap();
    value.replace("&#x2f;", "/").replace("&amp;", "&")
}

/// GETs `sign_in_url` (the page, which forwards, or its "Sign in with" link): the
/// provider's authorization URL it redirects to, the sign-in cookie now set.
async fn to_provider(
    browser: &mut Browser,
    provider: &Provider,
    sign_in_url: &str,
) -> (String, String) {
    let response = browser.get(sign_in_url).await;
    assert_eq!(response.status(), StatusCode::FOUND, "off to the provider");
    let set_cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with(&format!("{OIDC_COOKIE}=")))
        .expect("the sign-in cookie");
    let url = location(&response);
    assert!(url.starts_with(&provider.url("/authorize?")), "{url}");
    (url, set_cookie)
}

/// The browser's round trip through the provider: the callback URL the provider sent it to
/// and the server's response to it.
async fn through_provider(
    browser: &mut Browser,
    server: &TestServer,
    provider: &Provider,
    sign_in_url: &str,
) -> (String, Response) {
    let (authorize_url, _) = to_provider(browser, provider, sign_in_url).await;
    let answer = browser.get(&authorize_url).await;
    assert_eq!(answer.status(), StatusCode::FOUND, "the provider answers");
    let callback = location(&answer);
    assert!(
        callback.starts_with(&server.url("/sign-in/oidc/callback?")),
        "{callback}"
    );
    let response = browser.get(&callback).await;
    (callback, response)
}

/// POSTs the consent form with `decision`.
async fn decide(
    browser: &mut Browser,
    server: &TestServer,
    consent: &Consent,
    decision: &str,
) -> Response {
    browser
        .post(
            &server.url(&consent.action),
            &[
                ("csrf_token", &consent.csrf_token),
                ("request_id", &consent.request_id),
                ("decision", decision),
            ],
        )
        .await
}

/// Asserts that `response` sends the client `access_denied` with its state and our `iss`.
fn assert_access_denied(
    response: &Response,
    server: &TestServer,
    client: &TestClient,
    authorization: &Authorization,
) {
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "a redirect to the client"
    );
    let location = location(response);
    assert!(location.starts_with(&client.redirect_uri), "{location}");
    let params = redirect_params(&location);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(params.get("state"), Some(&authorization.state));
    assert_eq!(params.get("iss"), Some(&server.base));
    assert!(!params.contains_key("code"), "{location}");
}

/// Asserts that `response` is a page (`status`), not a redirect, and returns its HTML.
async fn assert_page(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    assert!(response.headers().get("location").is_none(), "no redirect");
    response.text().await.unwrap()
}

/// Approves `consent`, redeems the code and asks `whoami`: the subject the token carries.
async fn approve_and_whoami(
    browser: &mut Browser,
    server: &TestServer,
    client: &TestClient,
    authorization: &Authorization,
    consent: &Consent,
) -> String {
    let response = decide(browser, server, consent, "approve").await;
    assert_eq!(response.status(), StatusCode::FOUND, "approve redirects");
    let params = redirect_params(&location(&response));
    assert_eq!(params.get("state"), Some(&authorization.state));
    assert_eq!(params.get("iss"), Some(&server.base));
    let tokens = server
        .exchange_code(client, authorization, &params["code"])
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let session = server.mcp_initialize(access).await;
    let whoami = server
        .mcp_call_ok(access, &session, "whoami", json!({}))
        .await;
    assert_eq!(whoami["structuredContent"]["client_id"], client.client_id);
    whoami["structuredContent"]["subject"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// With no local users the sign-in page forwards straight to the provider; the provider gets
/// a code-flow request with PKCE S256, a nonce and our callback; its code is redeemed with
/// the client's secret by HTTP Basic; the consent page names `oidc:<sub>`, and the token it
/// leads to carries that subject.
#[tokio::test]
async fn a_federated_user_consents_and_reaches_whoami_as_oidc_and_their_sub() {
    let (provider, server) = start(ClientAuth::Basic, &[]).await;
    let client = server.register("Federated client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);

    let (authorize_url, set_cookie) =
        to_provider(&mut browser, &provider, &authorization.sign_in_url).await;
    for attribute in ["Path=/sign-in", "HttpOnly", "SameSite=Lax", "Max-Age="] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    let answer = browser.get(&authorize_url).await;
    let callback = location(&answer);
    let sent = &provider.authorizations()[0];
    assert_eq!(sent["redirect_uri"], server.url("/sign-in/oidc/callback"));
    assert_eq!(sent["scope"], "openid email profile");
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_ne!(sent["state"], authorization.state, "a state of its own");

    let consent = Consent::read(browser.get(&callback).await).await;
    assert_eq!(provider.token_outcomes(), vec![Ok(())]);
    assert!(consent.html.contains(ADA), "{}", consent.html);
    assert!(consent.html.contains("Federated client"));
    assert!(browser.cookies.contains_key(CSRF_COOKIE));
    let subject =
        approve_and_whoami(&mut browser, &server, &client, &authorization, &consent).await;
    assert_eq!(subject, ADA);
}

/// `--oidc-subject-claim email` names users by their email (here with `client_secret_post`,
/// the provider's other authentication method).
#[tokio::test]
async fn the_subject_claim_setting_names_users_by_another_claim() {
    let (provider, server) = start(ClientAuth::Post, &["--oidc-subject-claim", "email"]).await;
    let client = server.register("Email client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);
    let (_, callback) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    let consent = Consent::read(callback).await;
    assert_eq!(provider.token_outcomes(), vec![Ok(())]);
    let subject =
        approve_and_whoami(&mut browser, &server, &client, &authorization, &consent).await;
    assert_eq!(subject, "oidc:ada@acme.example");
}

/// With a `--user`, the page shows the password form and a "Sign in with" link; the link
/// goes to the provider, and the password form still completes the same request.
#[tokio::test]
async fn with_local_users_the_page_offers_the_password_form_and_the_provider() {
    let provider = Provider::start(ClientAuth::Basic).await;
    let alice = format!("alice:{ALICE_PASSWORD}");
    let extra = ["--user", &alice, "--oidc-name", "Acme SSO"];
    let server = server_for(&provider.issuer, Some(&provider.pem_file), &extra).await;
    let client = server.register("Two-way client").await;
    let authorization = server.authorize(&client).await;
    let page = server.sign_in_page(&authorization).await;
    assert!(page.html.contains("name=\"password\""), "{}", page.html);
    assert!(page.html.contains("Sign in with Acme SSO"), "{}", page.html);
    let href = attribute(&page.html, "class=\"sso\" href=\"");
    assert_eq!(
        href,
        format!("/sign-in/oidc?request_id={}", page.request_id)
    );

    let mut browser = Browser::new(&server, &provider.pem);
    let (authorize_url, _) = to_provider(&mut browser, &provider, &server.url(&href)).await;
    let query = redirect_params(&authorize_url);
    assert_eq!(query["client_id"], CLIENT_ID);

    let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
    assert_eq!(params.get("state"), Some(&authorization.state));
    let tokens = server
        .exchange_code(&client, &authorization, &params["code"])
        .await;
    assert!(tokens["access_token"].is_string());
}

/// A callback whose state is not the sign-in's, or that comes without this browser's sign-in
/// cookie, gets a 400 page: no code is redeemed, nothing reaches the client, and the request
/// stays pending. A callback replayed after a successful one is refused too, whether with the
/// cookie the browser then holds or with the original sign-in cookie.
#[tokio::test]
async fn forged_cookieless_and_replayed_callbacks_get_a_page_and_issue_nothing() {
    let (provider, server) = start(ClientAuth::Basic, &[]).await;
    let client = server.register("Callback client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);

    provider.answer(Answer::WrongState);
    let (_, forged) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    let html = assert_page(forged, StatusCode::BAD_REQUEST).await;
    assert!(html.contains("This sign-in cannot continue"), "{html}");
    assert!(!browser.cookies.contains_key(OIDC_COOKIE), "cleared");
    assert!(provider.token_outcomes().is_empty(), "no code redeemed");

    // The request is still pending: the user starts over and the provider approves.
    provider.answer(Answer::Approve);
    let (authorize_url, _) = to_provider(&mut browser, &provider, &authorization.sign_in_url).await;
    let pending_cookie = browser.cookies[OIDC_COOKIE].clone();
    let callback = location(&browser.get(&authorize_url).await);

    // Another browser (no sign-in cookie) brings the callback first.
    let mut stranger = Browser::new(&server, &provider.pem);
    assert_page(stranger.get(&callback).await, StatusCode::BAD_REQUEST).await;
    assert!(provider.token_outcomes().is_empty(), "no code redeemed");

    let consent = Consent::read(browser.get(&callback).await).await;
    assert_eq!(provider.token_outcomes(), vec![Ok(())]);

    // Back button: the callback again, with the consent cookie the browser now holds.
    let after_callback = browser.clone();
    assert_page(browser.get(&callback).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(provider.token_outcomes().len(), 1, "nothing redeemed again");
    browser = after_callback;

    let subject =
        approve_and_whoami(&mut browser, &server, &client, &authorization, &consent).await;
    assert_eq!(subject, ADA);

    // The callback once more with the original sign-in cookie: the provider refuses its
    // used code, and the answered request issues nothing.
    browser
        .cookies
        .insert(OIDC_COOKIE.to_owned(), pending_cookie);
    assert_page(browser.get(&callback).await, StatusCode::BAD_REQUEST).await;
    let outcomes = provider.token_outcomes();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[1], Err("unknown or redeemed code".to_owned()));
}

/// The provider's `error=access_denied` reaches the client as `access_denied` with its state
/// and our `iss`, and the request is answered.
#[tokio::test]
async fn the_providers_refusal_reaches_the_client_as_access_denied() {
    let (provider, server) = start(ClientAuth::Basic, &[]).await;
    let client = server.register("Refused client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);
    provider.answer(Answer::Deny);
    let (_, response) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    assert_access_denied(&response, &server, &client, &authorization);
    assert!(provider.token_outcomes().is_empty());
    let again = browser.get(&authorization.sign_in_url).await;
    assert_page(again, StatusCode::BAD_REQUEST).await;
}

/// An ID token for another sign-in (nonce) or another client (aud) ends the sign-in with
/// `access_denied` to the client; the same provider's proper token is accepted.
#[tokio::test]
async fn an_id_token_for_another_nonce_or_audience_ends_in_access_denied() {
    let (provider, server) = start(ClientAuth::Basic, &[]).await;
    let client = server.register("Token-check client").await;
    for (case, claims) in [
        ("nonce", json!({"nonce": "the-nonce-of-another-sign-in"})),
        ("aud", json!({"aud": "another-client"})),
        (
            "aud and azp",
            json!({"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}),
        ),
        ("no claims changed", json!({})),
    ] {
        provider.claims(claims);
        let authorization = server.authorize(&client).await;
        let mut browser = Browser::new(&server, &provider.pem);
        let (_, response) =
            through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
        assert_eq!(provider.token_outcomes().last(), Some(&Ok(())), "{case}");
        if case == "no claims changed" {
            Consent::read(response).await;
        } else {
            assert_access_denied(&response, &server, &client, &authorization);
        }
    }
}

/// `--oidc-allow-domain acme.example` admits only a verified email in that domain.
#[tokio::test]
async fn the_domain_rule_admits_only_a_verified_email_in_an_allowed_domain() {
    let (provider, server) =
        start(ClientAuth::Basic, &["--oidc-allow-domain", "acme.example"]).await;
    let client = server.register("Domain client").await;
    for claims in [
        json!({"email_verified": false}),
        json!({"email": "eve@evil.example"}),
        json!({"email": "eve@acme.example.evil.example"}),
        json!({"email": null}),
    ] {
        provider.claims(claims.clone());
        let authorization = server.authorize(&client).await;
        let mut browser = Browser::new(&server, &provider.pem);
        let (_, response) =
            through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
        assert_eq!(provider.token_outcomes().last(), Some(&Ok(())), "{claims}");
        assert_access_denied(&response, &server, &client, &authorization);
    }
    provider.claims(json!({"sub": "u-2002", "email": "grace@Acme.Example"}));
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);
    let (_, response) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    let consent = Consent::read(response).await;
    let subject =
        approve_and_whoami(&mut browser, &server, &client, &authorization, &consent).await;
    assert_eq!(subject, "oidc:u-2002");
}

/// The consent POST needs the CSRF cookie and its token and the federated sign-in's cookie;
/// a refused POST leaves the request pending, deny sends `access_denied`, and the answered
/// request cannot be approved afterwards.
#[tokio::test]
async fn consent_needs_its_csrf_token_and_the_federated_cookie_and_may_deny() {
    let (provider, server) = start(ClientAuth::Basic, &[]).await;
    let client = server.register("Consent client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);
    let (_, response) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    let consent = Consent::read(response).await;
    let signed_in = browser.clone();

    let tampered = Consent {
        csrf_token: format!("{}x", consent.csrf_token),
        html: String::new(),
        action: consent.action.clone(),
        request_id: consent.request_id.clone(),
    };
    for (case, cookie_left_out, form) in [
        ("no federated cookie", Some(OIDC_COOKIE), &consent),
        ("no CSRF cookie", Some(CSRF_COOKIE), &consent),
        ("a wrong CSRF token", None, &tampered),
    ] {
        let mut attempt = signed_in.clone();
        if let Some(name) = cookie_left_out {
            attempt.cookies.remove(name);
        }
        let response = decide(&mut attempt, &server, form, "approve").await;
        let html = assert_page(response, StatusCode::BAD_REQUEST).await;
        assert!(
            html.contains("This sign-in cannot continue"),
            "{case}: {html}"
        );
    }

    browser = signed_in.clone();
    let response = decide(&mut browser, &server, &consent, "deny").await;
    assert_access_denied(&response, &server, &client, &authorization);

    let mut late = signed_in;
    let response = decide(&mut late, &server, &consent, "approve").await;
    assert_page(response, StatusCode::BAD_REQUEST).await;
}

/// A provider that cannot be reached ends the sign-in on a 503 page, never a redirect, and
/// the request stays pending (the next try gets the same page, not "expired").
#[tokio::test]
async fn an_unreachable_provider_ends_the_sign_in_on_a_503_page() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("https://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = server_for(&issuer, None, &[]).await;
    let client = server.register("Stranded client").await;
    let authorization = server.authorize(&client).await;
    for _ in 0..2 {
        let response = server
            .http
            .get(&authorization.sign_in_url)
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().get(SET_COOKIE).is_none(),
            "no sign-in started"
        );
        let html = assert_page(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(
            html.contains("The identity provider cannot be reached"),
            "{html}"
        );
    }
}

/// A provider whose token endpoint fails when the callback comes ends that sign-in on a 503
/// page, not `access_denied`: the request stays pending and the next try signs in.
#[tokio::test]
async fn a_token_endpoint_outage_gives_a_503_page_and_keeps_the_request() {
    let (provider, server) = start(ClientAuth::Basic, &[]).await;
    let client = server.register("Outage client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);
    provider.token_endpoint_down(true);
    let (_, response) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    let html = assert_page(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        html.contains("The identity provider cannot be reached"),
        "{html}"
    );
    assert_eq!(
        provider.token_outcomes(),
        vec![Err("unavailable".to_owned())]
    );

    provider.token_endpoint_down(false);
    let (_, response) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    let consent = Consent::read(response).await;
    let subject =
        approve_and_whoami(&mut browser, &server, &client, &authorization, &consent).await;
    assert_eq!(subject, ADA);
}

/// An email names a user only once the provider verified it: with `--oidc-subject-claim
/// email`, an unverified address is refused, or anyone could register someone else's.
#[tokio::test]
async fn an_unverified_email_never_names_a_user() {
    let (provider, server) = start(ClientAuth::Post, &["--oidc-subject-claim", "email"]).await;
    provider.claims(json!({"email_verified": false}));
    let client = server.register("Unverified client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);
    let (_, response) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    assert_access_denied(&response, &server, &client, &authorization);
}

/// The provider refusing this server's own credentials (a wrong `--oidc-client-secret`) is
/// the operator's to fix: a 503 page, and the user's request is not denied.
#[tokio::test]
async fn wrong_client_credentials_give_a_503_page_not_a_denial() {
    let provider = Provider::start(ClientAuth::Basic).await;
    let pem_file = provider.pem_file.display().to_string();
    let args = [
        "mcp-auth-server",
        "--store",
        "memory",
        "--oidc-issuer",
        provider.issuer.as_str(),
        "--oidc-client-id",
        CLIENT_ID,
        "--oidc-client-secret",
        "not-the-secret",
        "--oidc-root-cert",
        pem_file.as_str(),
    ];
    let server =
        TestServer::start_with(without_request_budgets(Config::from_args(args).unwrap())).await;
    let client = server.register("Misconfigured client").await;
    let authorization = server.authorize(&client).await;
    let mut browser = Browser::new(&server, &provider.pem);
    let (_, response) =
        through_provider(&mut browser, &server, &provider, &authorization.sign_in_url).await;
    assert_page(response, StatusCode::SERVICE_UNAVAILABLE).await;
}
