//! The sign-in page of `mcp-auth-server`, driven in a real headless Chromium through WebDriver.
//!
//! Each test starts the server in process on `127.0.0.1:0` (memory store, one demo user),
//! registers a public client by dynamic client registration (RFC 7591) whose redirect URI is a
//! small callback listener of the test, so that the final redirect lands on a real page, and
//! sends the browser to `/authorize` with PKCE S256 and a `state`. From there the browser does
//! what a user does: reads the page, types, clicks.
//!
//! Chromium and chromedriver are the Debian packages (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`). Without them the tests fail, naming the command that installs
//! them: a browser test that skips itself proves nothing.
//!
//! The tests are named `browser_…` so that nextest runs them one at a time (the `browser` test
//! group in `.config/nextest.toml`). The approve test saves a screenshot of the sign-in page to
//! `target/artifacts/sign-in.png`. Sign-in through an OpenID Provider, with a screenshot of
//! each page on the way, is in `browser/oidc.rs`.

// Helpers abort the test with their message when an expectation fails.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod browser;
mod https_host;
#[path = "browser/oidc.rs"]
mod oidc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use browser::{PAGE_TIMEOUT, find, save_screenshot, with_browser};
use fantoccini::{Client, Locator};
use mcp_auth_server::Config;
use mcp_auth_types::{CodeVerifier, s256_challenge};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

/// The demo user the server is started with.
const USER: &str = "demo";
const PASSWORD: &str = "correct horse battery staple";
/// The server's valid scopes; the client asks for both, so the page must list both.
const SCOPES: [&str; 2] = ["mcp:tools", "mcp:read"];
const CLIENT_NAME: &str = "Browser Test Client";

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_approve_lands_on_the_redirect_uri_with_code_state_and_iss() {
    let flow = Flow::start().await;
    with_browser(move |browser| async move {
        browser
            .goto(&flow.authorize_url)
            .await
            .expect("open /authorize");
        flow.expect_sign_in_page(&browser).await;
        save_screenshot(&browser, "sign-in.png").await;

        fill_and_click(&browser, USER, PASSWORD, "approve").await;
        let params = flow.wait_for_callback(&browser).await;
        assert_eq!(params.get("state"), Some(&flow.state), "{params:?}");
        assert_eq!(params.get("iss"), Some(&flow.server.issuer), "{params:?}");
        assert!(!params.contains_key("error"), "{params:?}");
        let code = params.get("code").expect("a code in the redirect");

        let token = flow.exchange(code).await;
        assert_eq!(token["token_type"].as_str(), Some("Bearer"), "{token}");
        assert_scopes(&token, &SCOPES);
        flow.expect_accepted_at_mcp(token["access_token"].as_str().expect("access_token"))
            .await;

        // The code is single use: a second redemption is refused.
        let again = flow.token_request(code).await;
        assert_eq!(again.status(), reqwest::StatusCode::BAD_REQUEST);
        let body: Value = again.json().await.expect("error body");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_deny_redirects_with_access_denied_state_and_iss() {
    let flow = Flow::start().await;
    with_browser(move |browser| async move {
        browser
            .goto(&flow.authorize_url)
            .await
            .expect("open /authorize");
        flow.expect_sign_in_page(&browser).await;

        // Deny needs no password: the user refuses, whoever they are.
        fill_and_click(&browser, "", "", "deny").await;
        let params = flow.wait_for_callback(&browser).await;
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("access_denied"),
            "{params:?}"
        );
        assert_eq!(params.get("state"), Some(&flow.state), "{params:?}");
        assert_eq!(params.get("iss"), Some(&flow.server.issuer), "{params:?}");
        assert!(!params.contains_key("code"), "{params:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_wrong_password_shows_the_form_again_with_an_error() {
    let flow = Flow::start().await;
    with_browser(move |browser| async move {
        browser
            .goto(&flow.authorize_url)
            .await
            .expect("open /authorize");
        flow.expect_sign_in_page(&browser).await;

        fill_and_click(&browser, USER, "not the password", "approve").await;
        let alert = browser
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css("[role=alert]"))
            .await
            .expect("an error on the page after a wrong password");
        let message = alert.text().await.expect("error text");
        assert!(message.contains("Wrong user name or password"), "{message}");
        // Still the sign-in page, on the server, with the user name kept and nothing sent to
        // the client.
        flow.expect_sign_in_page(&browser).await;
        let current = browser.current_url().await.expect("url");
        assert!(
            current.as_str().starts_with(&flow.server.issuer),
            "{current}"
        );
        let username = find(&browser, "input[name=username]").await;
        assert_eq!(
            username.prop("value").await.expect("value").as_deref(),
            Some(USER)
        );
        let password = find(&browser, "input[name=password]").await;
        assert_eq!(
            password.prop("value").await.expect("value").as_deref(),
            Some("")
        );
        assert!(
            flow.callback.hits().is_empty(),
            "the client heard something"
        );

        // The re-rendered form still works: the right password now completes the flow.
        fill_and_click(&browser, "", PASSWORD, "approve").await;
        let params = flow.wait_for_callback(&browser).await;
        assert_eq!(params.get("state"), Some(&flow.state), "{params:?}");
        let token = flow.exchange(params.get("code").expect("code")).await;
        assert_scopes(&token, &SCOPES);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_forged_csrf_token_is_refused() {
    let flow = Flow::start().await;
    with_browser(move |browser| async move {
        browser
            .goto(&flow.authorize_url)
            .await
            .expect("open /authorize");
        flow.expect_sign_in_page(&browser).await;

        // An attacker's form carries a token of its own; the cookie holds the real one.
        let forged = browser
            .execute(
                "const input = document.querySelector('input[name=csrf_token]');\
                 const real = input.value;\
                 input.value = arguments[0];\
                 return real !== input.value;",
                vec![json!("forged-token-0123456789abcdefghijklmnopqrstuvwxyz")],
            )
            .await
            .expect("rewrite the hidden CSRF input");
        assert_eq!(forged, json!(true), "the hidden input was not changed");

        // Right credentials: only the CSRF check can refuse this.
        fill_and_click(&browser, USER, PASSWORD, "approve").await;
        browser
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::XPath("//h1[contains(., 'This form has expired')]"))
            .await
            .expect("the refusal page after a forged CSRF token");
        let current = browser.current_url().await.expect("url");
        assert!(
            current.as_str().starts_with(&flow.server.issuer),
            "the browser left the server: {current}"
        );
        let forms = browser.find_all(Locator::Css("form")).await.expect("forms");
        assert!(forms.is_empty(), "the refusal page has no form");
        assert!(
            flow.callback.hits().is_empty(),
            "a forged form reached the client: {:?}",
            flow.callback.hits()
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The authorization flow up to the browser: server, callback listener, client, /authorize URL

/// The server, a registered public client and an authorization request for it.
struct Flow {
    server: Server,
    callback: Callback,
    http: reqwest::Client,
    client_id: String,
    verifier: String,
    state: String,
    authorize_url: String,
}

impl Flow {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`Flow::start`] with `server_args` added to the server's command line.
    async fn start_with(server_args: &[&str]) -> Self {
        let server = Server::start(server_args).await;
        let callback = Callback::start().await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PAGE_TIMEOUT)
            .build()
            .expect("HTTP client");

        let registration = http
            .post(server.endpoint("registration_endpoint"))
            .json(&json!({
                "client_name": CLIENT_NAME,
                "redirect_uris": [callback.redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "scope": SCOPES.join(" "),
            }))
            .send()
            .await
            .expect("POST /register");
        assert_eq!(registration.status(), reqwest::StatusCode::CREATED);
        let registration: Value = registration.json().await.expect("registration JSON");
        let client_id = registration["client_id"]
            .as_str()
            .expect("client_id")
            .to_owned();
        assert!(
            registration.get("client_secret").is_none(),
            "a public client gets no secret: {registration}"
        );

        let verifier = mcp_auth_core::secrets::random_secret();
        let challenge = s256_challenge(&CodeVerifier::new(verifier.clone()));
        let state = mcp_auth_core::secrets::random_id();
        let mut authorize_url =
            Url::parse(&server.endpoint("authorization_endpoint")).expect("authorize URL");
        authorize_url
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", &callback.redirect_uri)
            .append_pair("scope", &SCOPES.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &server.resource);
        Self {
            server,
            callback,
            http,
            client_id,
            verifier,
            state,
            authorize_url: authorize_url.into(),
        }
    }

    /// The browser shows the sign-in page: one POST form with the expected fields and buttons,
    /// naming the client, the host its redirect URI points to and every requested scope.
    async fn expect_sign_in_page(&self, browser: &Client) {
        let form = browser
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css("form"))
            .await
            .expect("a form on the sign-in page");
        let url = browser.current_url().await.expect("url");
        assert_eq!(url.path(), "/sign-in", "{url}");
        assert!(
            url.query_pairs().any(|(name, _)| name == "request_id"),
            "{url}"
        );
        let forms = browser.find_all(Locator::Css("form")).await.expect("forms");
        assert_eq!(forms.len(), 1, "exactly one form");
        let method = form.attr("method").await.expect("method");
        assert_eq!(
            method.as_deref().map(str::to_ascii_lowercase).as_deref(),
            Some("post")
        );
        for selector in [
            "input[name=username]",
            "input[name=password][type=password]",
            "input[type=hidden][name=request_id]",
            "input[type=hidden][name=csrf_token]",
            "button[name=decision][value=approve]",
            "button[name=decision][value=deny]",
        ] {
            find(browser, selector).await;
        }
        let text = find(browser, "body").await.text().await.expect("page text");
        assert!(text.contains(CLIENT_NAME), "no client name in {text:?}");
        let host = Url::parse(&self.callback.redirect_uri)
            .expect("redirect URI")
            .host_str()
            .expect("host")
            .to_owned();
        assert!(text.contains(&host), "no redirect host {host} in {text:?}");
        for scope in SCOPES {
            assert!(text.contains(scope), "no scope {scope} in {text:?}");
        }
    }

    /// Waits until the browser is on the callback page and returns the redirect's query
    /// parameters, after checking that the callback listener received the same query.
    async fn wait_for_callback(&self, browser: &Client) -> HashMap<String, String> {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        let url = loop {
            let url = browser.current_url().await.expect("url");
            if url.as_str().starts_with(&self.callback.redirect_uri) {
                break url;
            }
            assert!(
                Instant::now() < deadline,
                "the browser did not reach {} (it is on {url})",
                self.callback.redirect_uri
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let query = url.query().unwrap_or_default().to_owned();
        assert_eq!(
            self.callback.hits(),
            vec![query.clone()],
            "the callback listener saw other requests than the browser's redirect"
        );
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    async fn token_request(&self, code: &str) -> reqwest::Response {
        self.http
            .post(self.server.endpoint("token_endpoint"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.callback.redirect_uri),
                ("client_id", &self.client_id),
                ("code_verifier", &self.verifier),
                ("resource", &self.server.resource),
            ])
            .send()
            .await
            .expect("POST /token")
    }

    /// Redeems `code` and returns the token response.
    async fn exchange(&self, code: &str) -> Value {
        let response = self.token_request(code).await;
        let status = response.status();
        let body: Value = response.json().await.expect("token JSON");
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        assert!(
            body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        body
    }

    /// The protected MCP endpoint lets the token through its bearer check (and refuses a
    /// request without one).
    async fn expect_accepted_at_mcp(&self, access_token: &str) {
        let initialize = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "browser-test", "version": "0"},
            },
        });
        let post = || {
            self.http
                .post(&self.server.resource)
                .header("accept", "application/json, text/event-stream")
                .json(&initialize)
        };
        let anonymous = post().send().await.expect("POST /mcp");
        assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
        let authorized = post()
            .bearer_auth(access_token)
            .send()
            .await
            .expect("POST /mcp");
        assert_eq!(authorized.status(), reqwest::StatusCode::OK);
    }
}

fn assert_scopes(token: &Value, expected: &[&str]) {
    let mut granted: Vec<&str> = token["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .collect();
    granted.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(granted, expected, "{token}");
}

/// `mcp-auth-server` in this process, on a memory store, with the demo user (and the
/// command-line arguments a test adds).
struct Server {
    issuer: String,
    resource: String,
    metadata: Value,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Server {
    async fn start(extra_args: &[&str]) -> Self {
        let scopes = SCOPES.join(" ");
        let user = format!("{USER}:{PASSWORD}");
        let mut args = vec![
            "mcp-auth-server",
            "--store",
            "memory",
            "--scopes",
            &scopes,
            "--user",
            &user,
        ];
        args.extend_from_slice(extra_args);
        let config = Config::from_args(args).expect("server settings");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.await;
            };
            if let Err(err) = mcp_auth_server::serve(config, listener, stopped).await {
                panic!("the server stopped: {err}");
            }
        });

        // The server hashes the user's password before it listens, so wait until it answers.
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let metadata: Value = loop {
            let response = http
                .get(format!("{base}/.well-known/oauth-authorization-server"))
                .send()
                .await;
            if let Ok(response) = response
                && response.status().is_success()
            {
                break response.json().await.expect("metadata JSON");
            }
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let issuer = metadata["issuer"].as_str().expect("issuer").to_owned();
        Self {
            resource: format!("{base}/mcp"),
            issuer,
            metadata,
            shutdown: Some(shutdown),
        }
    }

    /// An endpoint from the server's metadata (RFC 8414 §2).
    fn endpoint(&self, name: &str) -> String {
        self.metadata[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", self.metadata))
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The client's redirect URI: a listener that answers every request with a small page and
/// records the query string it was called with.
struct Callback {
    redirect_uri: String,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Callback {
    async fn start() -> Self {
        use axum::extract::{RawQuery, State};
        use axum::response::Html;

        async fn land(
            State(hits): State<Arc<Mutex<Vec<String>>>>,
            RawQuery(query): RawQuery,
        ) -> Html<&'static str> {
            hits.lock().expect("hits").push(query.unwrap_or_default());
            Html("<!doctype html><title>Callback</title><p>Back at the client.</p>")
        }

        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/callback", axum::routing::get(land))
            .with_state(Arc::clone(&hits));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            redirect_uri: format!("http://{addr}/callback"),
            hits,
        }
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits").clone()
    }
}

/// Types into the form's fields (replacing what they hold; an empty value leaves a field as
/// it is) and clicks the `decision` button with `decision`.
async fn fill_and_click(browser: &Client, username: &str, password: &str, decision: &str) {
    for (name, value) in [("username", username), ("password", password)] {
        if value.is_empty() {
            continue;
        }
        let input = find(browser, &format!("input[name={name}]")).await;
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }
    find(browser, &format!("button[name=decision][value={decision}]"))
        .await
        .click()
        .await
        .expect("click");
}
