//! `mcp-auth-server` in process, over a real socket, and a scripted OAuth + MCP client for it.
//!
//! [`TestServer::start`] runs [`mcp_auth_server::serve`] on `127.0.0.1:0` with two users,
//! `alice` and `bob` (passwords [`ALICE_PASSWORD`], [`BOB_PASSWORD`]); the server stops when
//! the value is dropped. The client side does what an MCP client does — discovery, dynamic
//! registration, PKCE, the sign-in form as a browser would post it, the token endpoint, MCP
//! JSON-RPC over streamable HTTP — with plain HTTP requests, so each step can be checked.
//! [`server_flow_tests!`](crate::server_flow_tests) instantiates the flow suite for a backend.

use std::collections::HashMap;

use mcp_auth_server::{CSRF_COOKIE, Config};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use url::Url;

/// `alice`'s password.
pub const ALICE_PASSWORD: &str = "alice-password";
/// `bob`'s password.
pub const BOB_PASSWORD: &str = "bob-password: with spaces & colons";
/// The scope the server requires on `/mcp`.
pub const SCOPE: &str = "mcp:tools";
/// The scope `admin_echo` needs besides [`SCOPE`] ([`TestServer::start`] sets
/// `--tool-scope admin_echo=mcp:admin`, as an operator would), which every registration
/// records so that a client can step up to it.
pub const ADMIN_SCOPE: &str = "mcp:admin";
/// The MCP protocol version the client negotiates (one with sessions).
pub const MCP_PROTOCOL_VERSION: &str = "2025-06-18";

/// A SQLite store URL naming a file that does not exist yet, in a fresh directory under
/// `tmp` (pass `env!("CARGO_TARGET_TMPDIR")`, which cargo sets for integration tests only, so
/// `cargo clean` removes the files): the server creates and migrates it at start-up.
pub async fn fresh_sqlite_url(tmp: &str) -> String {
    let dir =
        std::path::Path::new(tmp).join(format!("server-sqlite-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    format!("sqlite://{}", dir.join("mcp-auth.db").display())
}

/// `config` with request budgets no test of the flows reaches: every test server on one
/// machine counts from 127.0.0.1, and on Redis they share one budget. The limiter still runs
/// on every request; the tests of the limits themselves set their own.
pub fn without_request_budgets(mut config: Config) -> Config {
    let limits = &mut config.limits;
    limits.register_per_minute = 1_000_000;
    limits.token_per_minute = 1_000_000;
    limits.authorize_per_minute = 1_000_000;
    limits.revoke_per_minute = 1_000_000;
    limits.introspect_per_minute = 1_000_000;
    limits.sign_in_per_minute = 1_000_000;
    limits.sign_in_attempts_per_user = 1_000_000;
    limits.sign_in_attempts_per_ip = 1_000_000;
    config
}

/// A server running in this process until dropped.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub base: String,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server on `store` (`memory`, `sqlite://…`, `postgres://…`, `redis://…`) with
    /// the users `alice` (her password given in clear) and `bob` (his given as the argon2id
    /// PHC string `--hash-password` prints, so that both forms of `--user` sign in), and
    /// `admin_echo` needing [`ADMIN_SCOPE`].
    pub async fn start(store: &str) -> Self {
        let bob_hash = mcp_auth_server::hash_password(BOB_PASSWORD.as_bytes()).expect("hash");
        let bob = format!("bob:{bob_hash}");
        let alice = format!("alice:{ALICE_PASSWORD}");
        let config = Config::from_args([
            "mcp-auth-server",
            "--store",
            store,
            "--user",
            &alice,
            "--user",
            &bob,
            "--tool-scope",
            "admin_echo=mcp:admin",
        ])
        .expect("test configuration");
        Self::start_with(without_request_budgets(config)).await
    }

    /// Starts a server with `config` (its `bind` is ignored: the server listens on
    /// `127.0.0.1:0`).
    pub async fn start_with(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        Self::start_on(config, listener).await
    }

    /// Starts a server with `config` on `listener` (bound beforehand when another server must
    /// know this one's address first).
    pub async fn start_on(config: Config, listener: tokio::net::TcpListener) -> Self {
        let addr = listener.local_addr().expect("local address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(async move {
            let result = mcp_auth_server::serve(config, listener, async move {
                let _ = stop.await;
            })
            .await;
            // The sender is gone once the test has seen the server answer; a start-up error
            // must reach the test rather than vanish with this task.
            let _ = ready_tx.send(result);
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let base = format!("http://{addr}");
        let server = Self {
            base,
            http,
            shutdown: Some(shutdown),
        };
        server.wait_until_healthy(ready_rx).await;
        server
    }

    async fn wait_until_healthy(
        &self,
        mut ready: oneshot::Receiver<Result<(), mcp_auth_server::ServerError>>,
    ) {
        for _ in 0..600 {
            if let Ok(result) = ready.try_recv() {
                panic!("the server stopped during start-up: {result:?}");
            }
            if let Ok(response) = self.http.get(self.url("/healthz")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the server did not become healthy within 30 s");
    }

    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The protected resource.
    pub fn resource(&self) -> String {
        self.url("/mcp")
    }

    /// RFC 9728 then RFC 8414 discovery, checking that each document points to the next.
    pub async fn discover(&self) -> Value {
        let prm: Value = self
            .get_json("/.well-known/oauth-protected-resource/mcp")
            .await;
        assert_eq!(prm["resource"], self.resource());
        assert_eq!(prm["authorization_servers"], json!([self.base]));
        let metadata: Value = self
            .get_json("/.well-known/oauth-authorization-server")
            .await;
        assert_eq!(metadata["issuer"], self.base, "issuer byte for byte");
        assert_eq!(metadata["authorization_endpoint"], self.url("/authorize"));
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"])
        );
        metadata
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.expect(path);
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("JSON body")
    }

    /// Registers a public client (RFC 7591) with a loopback redirect URI.
    pub async fn register(&self, client_name: &str) -> TestClient {
        let redirect_uri = "http://127.0.0.1:9/callback".to_owned();
        let response = self
            .http
            .post(self.url("/register"))
            .json(&json!({
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "client_name": client_name,
            }))
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), StatusCode::CREATED, "registration");
        let info: Value = response.json().await.expect("client information");
        // The default scopes, then any per-tool step-up scopes the server was given (checked
        // exactly where a test sets them: server_step_up.rs).
        let scope = info["scope"].as_str().expect("registered scope");
        assert!(
            scope == SCOPE || scope.starts_with(&format!("{SCOPE} ")),
            "default scopes given on registration: {scope}"
        );
        TestClient {
            client_id: info["client_id"].as_str().expect("client_id").to_owned(),
            redirect_uri,
        }
    }

    /// Starts an authorization request and returns the sign-in URL it redirects to, with the
    /// PKCE verifier and state to finish it.
    pub async fn authorize(&self, client: &TestClient) -> Authorization {
        self.authorize_scope(client, SCOPE).await
    }

    /// [`authorize`](Self::authorize) requesting `scope` (none when empty).
    pub async fn authorize_scope(&self, client: &TestClient, scope: &str) -> Authorization {
        let verifier = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let state = format!("state-{:016x}", rand::random::<u64>());
        let challenge =
            mcp_auth_types::s256_challenge(&mcp_auth_types::CodeVerifier::new(verifier.clone()));
        let resource = self.resource();
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", &client.redirect_uri),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", &state),
            ("resource", &resource),
        ];
        if !scope.is_empty() {
            query.push(("scope", scope));
        }
        let response = self
            .http
            .get(self.url("/authorize"))
            .query(&query)
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), StatusCode::FOUND, "authorize redirects");
        let sign_in_url = location(&response);
        assert!(
            sign_in_url.starts_with(&format!("{}/sign-in?request_id=", self.base)),
            "authorize goes to the sign-in page: {sign_in_url}"
        );
        Authorization {
            sign_in_url,
            verifier,
            state,
        }
    }

    /// GETs the sign-in page and reads its form.
    pub async fn sign_in_page(&self, authorization: &Authorization) -> SignInPage {
        let response = self
            .http
            .get(&authorization.sign_in_url)
            .send()
            .await
            .expect("sign-in page");
        assert_eq!(response.status(), StatusCode::OK, "sign-in page");
        let cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{CSRF_COOKIE}=")))
            .expect("the page sets the CSRF cookie")
            .to_owned();
        let headers = response.headers().clone();
        let html = response.text().await.expect("HTML");
        SignInPage::parse(html, headers, &cookie)
    }

    /// POSTs the sign-in form as a browser would: the page's hidden inputs, the cookie, and
    /// the given decision and credentials.
    pub async fn submit(&self, page: &SignInPage, form: &[(&str, &str)]) -> Response {
        let mut fields: Vec<(&str, &str)> = vec![
            ("csrf_token", &page.csrf_token),
            ("request_id", &page.request_id),
        ];
        for (name, value) in form {
            fields.retain(|(n, _)| n != name);
            fields.push((name, value));
        }
        self.http
            .post(self.url("/sign-in"))
            .header(COOKIE, format!("{CSRF_COOKIE}={}", page.csrf_cookie))
            .form(&fields)
            .send()
            .await
            .expect("sign-in POST")
    }

    /// Signs `user` in and approves, returning the redirect's query parameters.
    pub async fn approve(
        &self,
        page: &SignInPage,
        user: &str,
        password: &str,
    ) -> HashMap<String, String> {
        let response = self
            .submit(
                page,
                &[
                    ("username", user),
                    ("password", password),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FOUND, "approve redirects");
        redirect_params(&location(&response))
    }

    /// Exchanges `code` at the token endpoint.
    pub async fn exchange_code(
        &self,
        client: &TestClient,
        authorization: &Authorization,
        code: &str,
    ) -> Value {
        let resource = self.resource();
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("client_id", &client.client_id),
            ("code_verifier", &authorization.verifier),
            ("resource", &resource),
        ])
        .await
    }

    /// Runs the whole authorization-code flow for `user`, returning the token response.
    pub async fn sign_in(&self, client: &TestClient, user: &str, password: &str) -> Value {
        let authorization = self.authorize(client).await;
        let page = self.sign_in_page(&authorization).await;
        let params = self.approve(&page, user, password).await;
        assert_eq!(params.get("state"), Some(&authorization.state));
        self.exchange_code(client, &authorization, &params["code"])
            .await
    }

    /// A successful token request.
    pub async fn token(&self, form: &[(&str, &str)]) -> Value {
        let response = self
            .http
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let body: Value = response.json().await.expect("token JSON");
        assert_eq!(status, StatusCode::OK, "token response: {body}");
        body
    }

    /// Sends one JSON-RPC message to `/mcp`.
    pub async fn mcp_post(
        &self,
        token: Option<&str>,
        session: Option<&str>,
        body: Value,
    ) -> Response {
        let mut request = self
            .http
            .post(self.resource())
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .header("mcp-protocol-version", MCP_PROTOCOL_VERSION)
            .body(body.to_string());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.expect("MCP request")
    }

    /// `initialize` then `notifications/initialized`; returns the session id.
    pub async fn mcp_initialize(&self, token: &str) -> String {
        let response = self
            .mcp_post(
                Some(token),
                None,
                json!({
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": MCP_PROTOCOL_VERSION,
                        "capabilities": {},
                        "clientInfo": {"name": "mcp-auth-tests", "version": "0"},
                    },
                }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "initialize");
        let session = response
            .headers()
            .get("mcp-session-id")
            .expect("a session id")
            .to_str()
            .expect("ASCII session id")
            .to_owned();
        let result = json_rpc_result(response, 1).await;
        assert_eq!(result["serverInfo"]["name"], "mcp-auth-server");
        let response = self
            .mcp_post(
                Some(token),
                Some(&session),
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "initialized");
        session
    }

    /// `tools/call` in `session`, returning the raw HTTP response.
    pub async fn mcp_call(
        &self,
        token: &str,
        session: &str,
        tool: &str,
        arguments: Value,
    ) -> Response {
        self.mcp_post(
            Some(token),
            Some(session),
            json!({
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }),
        )
        .await
    }

    /// `tools/call` in `session`, returning the tool's result.
    pub async fn mcp_call_ok(
        &self,
        token: &str,
        session: &str,
        tool: &str,
        arguments: Value,
    ) -> Value {
        let response = self.mcp_call(token, session, tool, arguments).await;
        assert_eq!(response.status(), StatusCode::OK, "tools/call {tool}");
        json_rpc_result(response, 2).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A registered public client.
#[derive(Debug, Clone)]
pub struct TestClient {
    /// Its id.
    pub client_id: String,
    /// Its one redirect URI.
    pub redirect_uri: String,
}

/// A started authorization request.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// Where `/authorize` sent the user agent.
    pub sign_in_url: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// The state sent.
    pub state: String,
}

/// The sign-in page as served.
#[derive(Debug, Clone)]
pub struct SignInPage {
    /// The HTML.
    pub html: String,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The hidden `csrf_token` input.
    pub csrf_token: String,
    /// The hidden `request_id` input.
    pub request_id: String,
    /// The CSRF cookie's value.
    pub csrf_cookie: String,
    /// The whole `Set-Cookie` header of the CSRF cookie.
    pub set_cookie: String,
}

impl SignInPage {
    /// Reads the form's hidden inputs from `html`.
    pub fn parse(html: String, headers: reqwest::header::HeaderMap, set_cookie: &str) -> Self {
        let csrf_cookie = set_cookie
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, value)| value.to_owned())
            .expect("cookie value");
        Self {
            csrf_token: hidden_input(&html, "csrf_token"),
            request_id: hidden_input(&html, "request_id"),
            csrf_cookie,
            set_cookie: set_cookie.to_owned(),
            html,
            headers,
        }
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("the page has no {name} header"))
            .to_str()
            .expect("ASCII header")
    }
}

/// The value of `<input type="hidden" name="NAME" value="…">` in `html`.
pub fn hidden_input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden input {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// The `Location` header.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII Location")
        .to_owned()
}

/// The query parameters of a redirect to the client.
pub fn redirect_params(location: &str) -> HashMap<String, String> {
    Url::parse(location)
        .expect("absolute redirect")
        .query_pairs()
        .into_owned()
        .collect()
}

/// The `result` of JSON-RPC response `id`, from a JSON body or an SSE stream.
pub async fn json_rpc_result(response: Response, id: u64) -> Value {
    let is_sse = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let text = response.text().await.expect("MCP response body");
    let messages: Vec<Value> = if is_sse {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim)
            .filter(|data| !data.is_empty())
            .map(|data| serde_json::from_str(data).expect("JSON-RPC in SSE data"))
            .collect()
    } else {
        vec![serde_json::from_str(&text).expect("JSON-RPC body")]
    };
    let message = messages
        .into_iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no response {id} in {text}"));
    assert!(message.get("error").is_none(), "JSON-RPC error: {message}");
    message["result"].clone()
}

/// The flow suite for one backend: `server_flow_tests!(store_url_expression)`, where the
/// expression is a `String` future naming a fresh store (evaluated once per test).
#[macro_export]
macro_rules! server_flow_tests {
    ($store:expr) => {
        use $crate::server::{ALICE_PASSWORD, SCOPE, TestServer, location, redirect_params};

        /// Control characters, oversized and repeated parameters in every parameter of
        /// every OAuth endpoint: the endpoint's own 4xx on this store, never a 5xx.
        #[tokio::test]
        async fn hostile_inputs_are_refused_on_every_endpoint() {
            let server = TestServer::start(&$store.await).await;
            $crate::hostile::hostile_inputs_are_refused_on_every_endpoint(&server).await;
        }

        /// Discovery, registration, sign-in, code exchange with PKCE, `whoami` over MCP,
        /// refresh, revocation.
        #[tokio::test]
        async fn authorization_code_flow_reaches_whoami_then_refreshes_and_revokes() {
            let server = TestServer::start(&$store.await).await;
            server.discover().await;
            let client = server.register("Flow client").await;
            let authorization = server.authorize(&client).await;
            let page = server.sign_in_page(&authorization).await;
            let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
            assert_eq!(params.get("state"), Some(&authorization.state));
            assert_eq!(params.get("iss"), Some(&server.base));
            let tokens = server
                .exchange_code(&client, &authorization, &params["code"])
                .await;
            assert_eq!(tokens["token_type"], "Bearer");
            assert_eq!(tokens["scope"], SCOPE);
            let access = tokens["access_token"].as_str().expect("access token");
            let refresh = tokens["refresh_token"].as_str().expect("refresh token");

            let session = server.mcp_initialize(access).await;
            let whoami = server
                .mcp_call_ok(access, &session, "whoami", serde_json::json!({}))
                .await;
            assert_eq!(
                whoami["structuredContent"],
                serde_json::json!({
                    "client_id": client.client_id,
                    "subject": "alice",
                    "scopes": [SCOPE],
                })
            );
            let echo = server
                .mcp_call_ok(access, &session, "echo", serde_json::json!({"text": "hé <b>"}))
                .await;
            assert_eq!(echo["content"][0]["text"], "hé <b>");

            let refreshed = server
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", &client.client_id),
                ])
                .await;
            let access2 = refreshed["access_token"].as_str().expect("new access token");
            let refresh2 = refreshed["refresh_token"].as_str().expect("new refresh token");
            assert_ne!(access2, access);
            let session2 = server.mcp_initialize(access2).await;
            let whoami = server
                .mcp_call_ok(access2, &session2, "whoami", serde_json::json!({}))
                .await;
            assert_eq!(whoami["structuredContent"]["subject"], "alice");
            // Rotation retired the first access token, even where the server caches tokens
            // (SQLite by default), which had just served it.
            let response = server
                .mcp_call(access, &session, "whoami", serde_json::json!({}))
                .await;
            assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);

            let response = server
                .http
                .post(server.url("/revoke"))
                .form(&[("token", refresh2), ("client_id", &client.client_id)])
                .send()
                .await
                .expect("revoke");
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            // Revoking the refresh token revokes the grant, its access token included.
            let response = server
                .mcp_call(access2, &session2, "whoami", serde_json::json!({}))
                .await;
            assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
        }

        /// A wrong password shows the form again with an error; the request stays pending,
        /// so the right password still completes it.
        #[tokio::test]
        async fn wrong_password_shows_the_form_again_and_keeps_the_request_pending() {
            let server = TestServer::start(&$store.await).await;
            let client = server.register("Retry client").await;
            let authorization = server.authorize(&client).await;
            let page = server.sign_in_page(&authorization).await;
            for (user, password) in [("alice", "wrong"), ("mallory", ALICE_PASSWORD)] {
                let response = server
                    .submit(
                        &page,
                        &[("username", user), ("password", password), ("decision", "approve")],
                    )
                    .await;
                assert_eq!(response.status(), reqwest::StatusCode::OK);
                let html = response.text().await.expect("HTML");
                assert!(html.contains("Wrong user name or password."), "{html}");
                assert!(html.contains(&page.request_id));
                assert!(html.contains(&format!("value=\"{user}\"")), "user name kept");
                assert!(!html.contains(ALICE_PASSWORD), "password echoed");
            }
            let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
            assert!(params.contains_key("code"));
            assert_eq!(params.get("state"), Some(&authorization.state));
        }

        /// Deny needs no password and sends `access_denied` with `state` and `iss`; the
        /// request is then gone.
        #[tokio::test]
        async fn deny_redirects_with_access_denied_state_and_iss() {
            let server = TestServer::start(&$store.await).await;
            let client = server.register("Denied client").await;
            let authorization = server.authorize(&client).await;
            let page = server.sign_in_page(&authorization).await;
            let response = server.submit(&page, &[("decision", "deny")]).await;
            assert_eq!(response.status(), reqwest::StatusCode::FOUND);
            let location = location(&response);
            assert!(location.starts_with(&client.redirect_uri), "{location}");
            let params = redirect_params(&location);
            assert_eq!(params["error"], "access_denied");
            assert_eq!(params.get("state"), Some(&authorization.state));
            assert_eq!(params.get("iss"), Some(&server.base));
            assert!(!params.contains_key("code"));

            let again = server
                .submit(
                    &page,
                    &[("username", "alice"), ("password", ALICE_PASSWORD), ("decision", "approve")],
                )
                .await;
            assert_eq!(again.status(), reqwest::StatusCode::BAD_REQUEST);
        }
    };
}
