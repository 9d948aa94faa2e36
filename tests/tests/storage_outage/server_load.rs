//! Issue 13's "outages lose nothing", through the whole server: a mixed load — registrations,
//! authorizations, sign-ins with code exchanges, refreshes and protected `/mcp` calls — runs
//! against `mcp-auth-server` while its PostgreSQL or Redis is stopped for ~10 s and started
//! again. During the outage every answer is a success (what needs no store) or 503
//! (`temporarily_unavailable` from the OAuth endpoints), never another status, never a hang;
//! within 5 s of the database's return every operation succeeds again, without a restart; and
//! the tokens confirmed before the outage still work after it. The figures are printed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mcp_auth_tests::server::{ALICE_PASSWORD, SCOPE, SignInPage, TestServer, redirect_params};
use mcp_auth_tests::services;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Longer than the server's request timeout (30 s): an answer that takes this long is a hang.
const HANG: Duration = Duration::from_secs(40);
const OUTAGE: Duration = Duration::from_secs(10);
const RECOVERY: Duration = Duration::from_secs(5);
const WORKERS: usize = 3;

/// What one operation saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Unavailable,
}

/// Counts by operation and outcome, and every answer that was neither.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<(&'static str, Outcome), u64>,
    failures: Vec<String>,
}

type Shared = Arc<Mutex<Tally>>;

fn record(tally: &Shared, op: &'static str, outcome: Result<Outcome, String>) -> Option<Outcome> {
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    match outcome {
        Ok(outcome) => {
            *tally.counts.entry((op, outcome)).or_default() += 1;
            Some(outcome)
        }
        Err(failure) => {
            tally.failures.push(format!("{op}: {failure}"));
            None
        }
    }
}

/// `expected` is success; 503 is the outage (with `temporarily_unavailable` when `oauth`);
/// anything else, or no answer within [`HANG`], is a failure.
async fn classify(
    response: Result<reqwest::Response, reqwest::Error>,
    expected: StatusCode,
    oauth: bool,
) -> Result<(Outcome, Option<reqwest::Response>), String> {
    let response = response.map_err(|err| format!("no answer: {err}"))?;
    let status = response.status();
    if status == expected {
        return Ok((Outcome::Ok, Some(response)));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        if oauth {
            let body: Value = response.json().await.map_err(|err| err.to_string())?;
            if body["error"] != "temporarily_unavailable" {
                return Err(format!("503 with {body}"));
            }
        }
        return Ok((Outcome::Unavailable, None));
    }
    let body = response.text().await.unwrap_or_default();
    Err(format!(
        "{status}: {}",
        body.chars().take(200).collect::<String>()
    ))
}

struct Load {
    server: TestServer,
    http: reqwest::Client,
    client_id: String,
    redirect_uri: String,
}

impl Load {
    async fn register(&self) -> Result<Outcome, String> {
        let response = self
            .http
            .post(self.server.url("/register"))
            .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"],
                          "token_endpoint_auth_method": "none", "client_name": "load"}))
            .send()
            .await;
        Ok(classify(response, StatusCode::CREATED, true).await?.0)
    }

    async fn mcp(&self, token: &str) -> Result<Outcome, String> {
        let response = self
            .http
            .post(self.server.url("/mcp"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "load", "version": "0"}}}),
            )
            .send()
            .await;
        Ok(classify(response, StatusCode::OK, false).await?.0)
    }

    /// Refreshes `refresh`; on success returns the new pair.
    async fn refresh(&self, refresh: &str) -> Result<(Outcome, Option<Value>), String> {
        let response = self
            .http
            .post(self.server.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", self.client_id.as_str()),
            ])
            .send()
            .await;
        match classify(response, StatusCode::OK, true).await? {
            (Outcome::Ok, Some(response)) => {
                let pair: Value = response.json().await.map_err(|err| err.to_string())?;
                Ok((Outcome::Ok, Some(pair)))
            }
            (outcome, _) => Ok((outcome, None)),
        }
    }

    /// A whole sign-in: authorize, the sign-in page, approval, the code exchange. Stops at
    /// the first 503.
    async fn sign_in(&self) -> Result<Outcome, String> {
        let verifier = format!("{:064x}", rand::random::<u128>());
        let challenge =
            mcp_auth_types::s256_challenge(&mcp_auth_types::CodeVerifier::new(verifier.clone()));
        let resource = self.server.resource();
        let authorize = self
            .http
            .get(self.server.url("/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", self.client_id.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("state", "s"),
                ("scope", SCOPE),
                ("resource", resource.as_str()),
            ])
            .send()
            .await;
        let Some(response) = proceed(classify(authorize, StatusCode::FOUND, false).await?) else {
            return Ok(Outcome::Unavailable);
        };
        let sign_in_url = response.headers()["location"]
            .to_str()
            .map_err(|err| err.to_string())?
            .to_owned();
        // An authorization error goes back to the client (RFC 6749 §4.1.2.1): during the
        // outage, `temporarily_unavailable`.
        if sign_in_url.starts_with(&self.redirect_uri) {
            let params = redirect_params(&sign_in_url);
            return match params.get("error").map(String::as_str) {
                Some("temporarily_unavailable") => Ok(Outcome::Unavailable),
                _ => Err(format!("authorize redirected to the client: {sign_in_url}")),
            };
        }
        let page = self.http.get(&sign_in_url).send().await;
        let Some(page) = proceed(classify(page, StatusCode::OK, false).await?) else {
            return Ok(Outcome::Unavailable);
        };
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(mcp_auth_server::CSRF_COOKIE))
            .ok_or("no CSRF cookie")?
            .to_owned();
        let headers = page.headers().clone();
        let page = SignInPage::parse(
            page.text().await.map_err(|e| e.to_string())?,
            headers,
            &cookie,
        );
        let approve = self
            .http
            .post(self.server.url("/sign-in"))
            .header(
                "cookie",
                format!("{}={}", mcp_auth_server::CSRF_COOKIE, page.csrf_cookie),
            )
            .form(&[
                ("csrf_token", page.csrf_token.as_str()),
                ("request_id", page.request_id.as_str()),
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
                ("decision", "approve"),
            ])
            .send()
            .await;
        let Some(approved) = proceed(classify(approve, StatusCode::FOUND, false).await?) else {
            return Ok(Outcome::Unavailable);
        };
        let location = approved.headers()["location"]
            .to_str()
            .map_err(|err| err.to_string())?
            .to_owned();
        let code = redirect_params(&location)
            .remove("code")
            .ok_or_else(|| format!("no code in {location}"))?;
        let exchange = self
            .http
            .post(self.server.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("client_id", self.client_id.as_str()),
                ("code_verifier", verifier.as_str()),
                ("resource", resource.as_str()),
            ])
            .send()
            .await;
        Ok(classify(exchange, StatusCode::OK, true).await?.0)
    }
}

fn proceed(step: (Outcome, Option<reqwest::Response>)) -> Option<reqwest::Response> {
    match step {
        (Outcome::Ok, response) => response,
        (Outcome::Unavailable, _) => None,
    }
}

/// One worker's loop until `until`: every operation once per round; worker 0 also keeps a
/// refresh chain going and reports the pair it last received.
async fn work(load: Arc<Load>, tally: Shared, token: String, until: Instant) {
    while Instant::now() < until {
        record(&tally, "register", load.register().await);
        record(&tally, "mcp", load.mcp(&token).await);
        record(&tally, "sign-in", load.sign_in().await);
    }
}

/// One full round with every operation a success, or `false`.
async fn all_succeed(load: &Load, token: &str, refresh: &mut String) -> bool {
    let ok = |outcome: Result<Outcome, String>| matches!(outcome, Ok(Outcome::Ok));
    if !(ok(load.register().await) && ok(load.mcp(token).await) && ok(load.sign_in().await)) {
        return false;
    }
    match load.refresh(refresh).await {
        Ok((Outcome::Ok, Some(pair))) => {
            *refresh = pair["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            true
        }
        _ => false,
    }
}

async fn server_survives_an_outage(store: &str, stop: fn(), start: fn()) {
    let server = TestServer::start(store).await;
    let client = server.register("outage").await;
    // Two grants confirmed before the outage: one whose refresh chain runs through it, one
    // left alone (refreshing a grant retires its earlier access tokens, by design).
    let chained = server.sign_in(&client, "alice", ALICE_PASSWORD).await;
    let mut refresh = chained["refresh_token"].as_str().unwrap().to_owned();
    let kept = server.sign_in(&client, "alice", ALICE_PASSWORD).await;
    let confirmed_access = kept["access_token"].as_str().unwrap().to_owned();
    let confirmed_refresh = kept["refresh_token"].as_str().unwrap().to_owned();
    let load = Arc::new(Load {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HANG)
            .build()
            .unwrap(),
        client_id: client.client_id.clone(),
        redirect_uri: client.redirect_uri.clone(),
        server,
    });
    let tally: Shared = Arc::default();

    let started = Instant::now();
    let until = started + Duration::from_secs(2) + OUTAGE;
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(work(
                Arc::clone(&load),
                Arc::clone(&tally),
                confirmed_access.clone(),
                until,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop();
    let outage_started = Instant::now();
    // Refreshes during the outage: each is refused as unavailable and leaves the token as it
    // was, so the chain continues afterwards.
    while outage_started.elapsed() < OUTAGE {
        match load.refresh(&refresh).await {
            Ok((outcome, pair)) => {
                record(&tally, "refresh", Ok(outcome));
                if let Some(pair) = pair {
                    refresh = pair["refresh_token"].as_str().unwrap().to_owned();
                }
            }
            Err(failure) => {
                record(&tally, "refresh", Err(failure));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    start();
    let restarted = Instant::now();
    // Measured from the restart, while the workers finish their last round.
    let mut recovered = None;
    while restarted.elapsed() < RECOVERY + Duration::from_secs(20) {
        if all_succeed(&load, &confirmed_access, &mut refresh).await {
            recovered = Some(restarted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for worker in workers {
        worker.await.unwrap();
    }

    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner));
    let total: u64 = tally.counts.values().sum();
    eprintln!(
        "outage on {store}: {total} operations, by outcome {:?}; {} failures; \
         serving again {recovered:?} after the database returned",
        tally.counts,
        tally.failures.len()
    );
    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
    for op in ["register", "mcp", "sign-in", "refresh"] {
        assert!(
            tally.counts.contains_key(&(op, Outcome::Unavailable)),
            "{op} never met the outage: {:?}",
            tally.counts
        );
    }
    let recovered = recovered.expect("the server serves again without a restart");
    assert!(recovered <= RECOVERY, "serving again took {recovered:?}");
    // What was confirmed before the outage still works: the untouched grant's access and
    // refresh tokens, and the chained grant's latest refresh token.
    assert_eq!(load.mcp(&confirmed_access).await, Ok(Outcome::Ok));
    assert!(matches!(
        load.refresh(&confirmed_refresh).await,
        Ok((Outcome::Ok, Some(_)))
    ));
    assert!(matches!(
        load.refresh(&refresh).await,
        Ok((Outcome::Ok, Some(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_load_through_a_postgres_outage_loses_nothing() {
    let url = services::fresh_postgres_database().await;
    server_survives_an_outage(&url, services::stop_postgres, services::start_postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_load_through_a_redis_outage_loses_nothing() {
    // Persisted before the stop, as a deployment's Redis would be: the test server runs
    // without persistence, and loads the snapshot on its restart.
    fn stop_after_saving() {
        let port = services::redis_url()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse::<u16>().ok())
            .expect("port");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("Redis");
        std::io::Write::write_all(&mut stream, b"SAVE\r\n").expect("SAVE");
        let mut reply = [0u8; 5];
        std::io::Read::read_exact(&mut stream, &mut reply).expect("SAVE reply");
        assert_eq!(&reply, b"+OK\r\n");
        services::stop_redis();
    }
    server_survives_an_outage(
        &services::redis_url(),
        stop_after_saving,
        services::start_redis,
    )
    .await;
}
