//! What `RequireBearerLayer` costs: requests per second of a trivial axum handler behind the
//! layer, beside the same handler without it, at the same concurrency, in the same run, over
//! real loopback sockets. Run it with `cargo xtask bench` (or
//! `cargo bench -p mcp-auth-tests --bench bearer`).
//!
//! - The verifier is the provider's own (`McpAuth::require_bearer()`), on
//!   `StoreProvider<MemoryStore>`, on `StoreProvider<SqliteStore>` (a database file, the
//!   server's default deployment), and on the same SQLite store with the provider's
//!   access-token cache on (`access_token_cache_ttl`).
//!   Every protected request is a real token lookup: SHA-256 of the token, one store read (or
//!   a cache hit), expiry, audience and scope checks.
//! - Both endpoints get the same request bytes, `Authorization` header included, so the only
//!   difference is the layer.
//! - The load generator runs in this process on the same Tokio runtime as the servers, one
//!   thread by default (`BEARER_BENCH_THREADS=N` for N workers): the CPU is shared by client
//!   and server, so the cost is reported as a ratio of throughputs measured under identical
//!   conditions, and as CPU time per request of the whole process (from
//!   `/proc/self/task/*/schedstat`; SQLite's worker threads included), which other processes
//!   on a busy machine do not inflate the way they inflate wall time.
//! - A fourth row is a resource server for another issuer's RFC 9068 JWT access tokens
//!   (`McpResource` with `JwtAccessTokenVerifier`, ES256, ~450 bytes): the token is verified
//!   on its first request and answered from the verifier's cache after (found by the SHA-256
//!   of its signature, its signed part compared in full). Its goal is the in-memory store's:
//!   cost under 10% (8% on 2026-12-05, from 11%: `mcp-auth-axum`'s README has the figures).
//! - `BEARER_BENCH_STORES` (comma-separated: `memory`, `sqlite`, `sqlite-cached`, `jwt`; default all)
//!   picks the stores to measure. `BEARER_BENCH_PROFILE=bare` or `=protected` loads only that
//!   endpoint, [`PROFILE_REQUESTS`] requests after the warm-up, so that two profiler runs can
//!   be compared per request.
//! - Bounded: each round sends [`BURSTS`] bursts of [`BURST`] requests to each endpoint, in
//!   alternation, on [`CONNECTIONS`] HTTP/1.1 connections per endpoint kept open for the round; a burst stops at
//!   [`TIME_CAP`] (reported if it happens). The summary quotes the median of [`ROUNDS`] rounds.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use mcp_auth_axum::{McpAuth, McpResource, RequireBearerLayer};
use mcp_auth_core::{AuthSettings, MemoryStore, Storage, StoreProvider};
use mcp_auth_jwt::test_util::TestKey;
use mcp_auth_jwt::{JwksSource, JwtAccessTokenVerifier, SigningAlgorithm};
use mcp_auth_sqlx::SqliteStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Concurrent connections, each with one request in flight.
const CONNECTIONS: usize = 32;
/// Requests per burst. A round alternates short bursts on the two endpoints over connections
/// kept open for the round, so that the machine's changing speed (a shared VM: single rounds of
/// long bursts moved by ±15%) hits both endpoints alike.
const BURST: u64 = 1_000;
/// Bursts per endpoint in one round.
const BURSTS: usize = 80;
/// Requests per endpoint before the first round of a backend (connections, caches, pages).
const WARMUP: u64 = 5_000;
/// A burst stops here even if its requests are not all done.
const TIME_CAP: Duration = Duration::from_secs(30);
/// Rounds per backend; the summary quotes the median.
const ROUNDS: usize = 15;
/// Requests to the one endpoint of a `BEARER_BENCH_PROFILE` run.
const PROFILE_REQUESTS: u64 = 300_000;

const ISSUER: &str = "http://127.0.0.1:8080";
const RESOURCE: &str = "http://127.0.0.1:8080/hello";
const SCOPE: &str = "mcp:tools";
const PATH: &str = "/hello";

async fn hello() -> &'static str {
    "hello"
}

/// Requests, wall time and process CPU time, summed over bursts.
#[derive(Clone, Copy, Default)]
struct Run {
    requests: u64,
    elapsed: Duration,
    cpu: Option<Duration>,
}

impl Run {
    fn per_second(self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU time of the whole process (load generator and server) per request.
    fn cpu_per_request(self) -> Option<Duration> {
        self.cpu.map(|cpu| cpu.div_f64(self.requests.max(1) as f64))
    }

    fn add(&mut self, other: Run) {
        let first = self.requests == 0;
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.cpu = if first {
            other.cpu
        } else {
            self.cpu.zip(other.cpu).map(|(a, b)| a + b)
        };
    }
}

/// The two servers of one backend: the bare handler and the protected one.
struct Endpoints {
    backend: &'static str,
    bare: SocketAddr,
    protected: SocketAddr,
    authorization: HeaderValue,
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match std::env::var("BEARER_BENCH_THREADS") {
        Ok(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .expect("BEARER_BENCH_THREADS is a positive number"),
        Err(_) => 1,
    };
    // One thread by default: the load generator and both servers share one Tokio thread, so no
    // request pays for crossing cores and the figures do not depend on which worker each
    // connection's tasks land on. With two workers on two cores, that placement changes with
    // every burst's fresh connections and moved single rounds by up to 20%.
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("runtime")
    };
    println!(
        "bearer-layer benchmark: {threads} runtime thread(s) on {cores} cores ({}), \
         {CONNECTIONS} connections, {ROUNDS} rounds of {BURSTS} alternating bursts of {BURST} \
         requests per endpoint (each burst capped at {} s)",
        cpu_model(),
        TIME_CAP.as_secs()
    );
    let only = std::env::var("BEARER_BENCH_STORES").ok();
    let wanted = |store: &str| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|s| s.trim() == store))
    };
    let summaries = runtime.block_on(async {
        let mut all = Vec::new();
        if wanted("memory") {
            let provider = StoreProvider::builder(MemoryStore::new(), ISSUER)
                .build()
                .expect("provider");
            all.push(serve("memory", provider).await);
        }
        if wanted("sqlite") {
            all.push(serve("sqlite", sqlite_provider("plain", 0).await).await);
        }
        if wanted("jwt") {
            all.push(serve_jwt().await);
        }
        if wanted("sqlite-cached") {
            let provider = sqlite_provider("cached", SQLITE_CACHE_TTL).await;
            all.push(serve("sqlite + token cache", provider).await);
        }
        let mut summaries = Vec::new();
        for endpoints in &all {
            summaries.push(measure(endpoints).await);
        }
        summaries
    });

    println!();
    println!(
        "| store | req/s without the layer | req/s with RequireBearerLayer | ratio (cost) \
         | CPU/request without | CPU/request with | CPU ratio (cost) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for line in summaries {
        println!("{line}");
    }
    println!();
    println!(
        "(medians of {ROUNDS} rounds; cost = 1 - ratio. CPU is the whole process's per request, \
         load generator included; the CPU ratio, without / with, is the throughput ratio of a \
         CPU-bound machine and is not skewed by other processes. Goal: cost < 10% memory and \
         cached JWT, < 25% SQLite)"
    );
}

/// The access-token cache lifetime of the cached SQLite row: the token is read from the store
/// once per 30 s, as a client reusing its token would have it.
const SQLITE_CACHE_TTL: u64 = 30;

async fn sqlite_provider(name: &str, cache_ttl: u64) -> StoreProvider<SqliteStore> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-bearer-sqlite-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate");
    StoreProvider::builder(store, ISSUER)
        .access_token_cache_ttl(cache_ttl)
        .build()
        .expect("provider")
}

/// Serves the bare and the protected endpoint for `provider` on two loopback listeners, with a
/// live access token in its store.
async fn serve<S: Storage>(backend: &'static str, provider: StoreProvider<S>) -> Endpoints {
    let (raw, record) = mcp_auth_tests::bench::access_token(ISSUER, RESOURCE, SCOPE);
    assert!(
        provider
            .storage()
            .issue_tokens(&record, None)
            .await
            .expect("issue the token")
    );

    let settings = AuthSettings::builder(ISSUER)
        .resource_server_url(RESOURCE)
        .required_scopes([SCOPE])
        .build()
        .expect("auth settings");
    let auth = McpAuth::builder(Arc::new(provider))
        .settings(settings)
        .build()
        .expect("auth");
    let bearer = auth.require_bearer().expect("a resource URL is configured");
    serve_layer(backend, bearer, &raw).await
}

/// A resource server for another issuer's RFC 9068 JWTs (`McpResource` with a
/// `JwtAccessTokenVerifier`): the first request verifies the signature, every later one is a
/// hit in the verifier's cache, as for a client reusing its token.
async fn serve_jwt() -> Endpoints {
    let key = TestKey::generate(SigningAlgorithm::ES256, "as-1");
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("time");
    let token = key.sign(
        Some("at+jwt"),
        &serde_json::json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": "alice", "client_id": "app",
            "scope": SCOPE, "iat": now, "exp": now + 3600, "jti": "bench",
        }),
    );
    let verifier = JwtAccessTokenVerifier::builder(ISSUER, RESOURCE)
        .jwks(JwksSource::Inline(TestKey::jwks(&[&key])))
        .build()
        .expect("verifier");
    let resource = McpResource::builder(RESOURCE, Arc::new(verifier))
        .authorization_server(ISSUER)
        .required_scopes([SCOPE])
        .build()
        .expect("resource");
    serve_layer("JWT (ES256, cached)", resource.require_bearer(), &token).await
}

/// Serves the bare endpoint and the one behind `bearer`; `token` must pass it.
async fn serve_layer(backend: &'static str, bearer: RequireBearerLayer, token: &str) -> Endpoints {
    let bare = Router::new().route(PATH, get(hello));
    let protected = Router::new().route(PATH, get(hello)).route_layer(bearer);

    let endpoints = Endpoints {
        backend,
        bare: listen(bare).await,
        protected: listen(protected).await,
        authorization: HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    };
    // The protected endpoint really checks: no token is a 401, the token a 200.
    let anonymous = HeaderValue::from_static("Bearer not-a-token");
    assert_eq!(
        get_once(endpoints.protected, &anonymous).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_once(endpoints.protected, &endpoints.authorization).await,
        StatusCode::OK
    );
    assert_eq!(
        get_once(endpoints.bare, &endpoints.authorization).await,
        StatusCode::OK
    );
    endpoints
}

async fn listen(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Warms up, runs the rounds and returns the backend's summary row.
async fn measure(endpoints: &Endpoints) -> String {
    let auth = &endpoints.authorization;
    if let Ok(endpoint) = std::env::var("BEARER_BENCH_PROFILE") {
        let addr = match endpoint.as_str() {
            "bare" => endpoints.bare,
            "protected" => endpoints.protected,
            other => panic!("BEARER_BENCH_PROFILE is `bare` or `protected`, not `{other}`"),
        };
        let mut connections = connect(addr).await;
        load(&mut connections, auth, WARMUP).await;
        let run = load(&mut connections, auth, PROFILE_REQUESTS).await;
        return format!(
            "| {} ({endpoint} only) | {:.0} req/s | CPU {} per request |",
            endpoints.backend,
            run.per_second(),
            micros(run.cpu_per_request())
        );
    }
    let mut bare_connections = connect(endpoints.bare).await;
    let mut protected_connections = connect(endpoints.protected).await;
    load(&mut bare_connections, auth, WARMUP).await;
    load(&mut protected_connections, auth, WARMUP).await;

    let mut rows = Vec::new();
    for round in 1..=ROUNDS {
        let (mut bare, mut protected) = (Run::default(), Run::default());
        for burst in 0..BURSTS {
            // Alternate which endpoint goes first.
            if burst % 2 == 0 {
                bare.add(load(&mut bare_connections, auth, BURST).await);
                protected.add(load(&mut protected_connections, auth, BURST).await);
            } else {
                protected.add(load(&mut protected_connections, auth, BURST).await);
                bare.add(load(&mut bare_connections, auth, BURST).await);
            }
        }
        let expected = BURST * BURSTS as u64;
        let capped = bare.requests < expected || protected.requests < expected;
        let ratio = protected.per_second() / bare.per_second();
        println!(
            "{} round {round}: without {:>6.0} req/s, with {:>6.0} req/s, ratio {ratio:.3}; \
             CPU per request {} without, {} with (load average {}){}",
            endpoints.backend,
            bare.per_second(),
            protected.per_second(),
            micros(bare.cpu_per_request()),
            micros(protected.cpu_per_request()),
            load_average(),
            if capped { " (time cap reached)" } else { "" }
        );
        rows.push(Round {
            bare: bare.per_second(),
            protected: protected.per_second(),
            ratio,
            cpu: bare.cpu_per_request().zip(protected.cpu_per_request()),
        });
    }
    summary(endpoints.backend, &rows)
}

/// One round's figures.
struct Round {
    bare: f64,
    protected: f64,
    ratio: f64,
    /// CPU time per request without and with the layer.
    cpu: Option<(Duration, Duration)>,
}

/// The summary row: the median of each figure over the rounds.
fn summary(backend: &str, rows: &[Round]) -> String {
    let median = |values: Vec<f64>| {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ratio = median(rows.iter().map(|r| r.ratio).collect());
    let mut line = format!(
        "| {backend} | {:.0} | {:.0} | {ratio:.3} ({:.0}%) |",
        median(rows.iter().map(|r| r.bare).collect()),
        median(rows.iter().map(|r| r.protected).collect()),
        (1.0 - ratio) * 100.0
    );
    let cpu: Option<Vec<(Duration, Duration)>> = rows.iter().map(|r| r.cpu).collect();
    match cpu {
        Some(cpu) => {
            let without = median(cpu.iter().map(|(b, _)| b.as_secs_f64() * 1e6).collect());
            let with = median(cpu.iter().map(|(_, p)| p.as_secs_f64() * 1e6).collect());
            let ratio = median(
                cpu.iter()
                    .map(|(b, p)| b.as_secs_f64() / p.as_secs_f64())
                    .collect(),
            );
            line += &format!(
                " {without:.1} µs | {with:.1} µs | {ratio:.3} ({:.0}%) |",
                (1.0 - ratio) * 100.0
            );
        }
        None => line += " n/a | n/a | n/a |",
    }
    line
}

fn micros(value: Option<Duration>) -> String {
    value.map_or_else(
        || "n/a".to_owned(),
        |d| format!("{:.1} µs", d.as_secs_f64() * 1e6),
    )
}

/// Opens [`CONNECTIONS`] HTTP/1.1 connections to `addr`.
async fn connect(addr: SocketAddr) -> Vec<SendRequest<Empty<Bytes>>> {
    let mut senders = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        senders.push(sender);
    }
    senders
}

/// Sends up to `requests` GETs on the open `connections`, one in flight on each, stopping at
/// [`TIME_CAP`].
async fn load(
    connections: &mut Vec<SendRequest<Empty<Bytes>>>,
    authorization: &HeaderValue,
    requests: u64,
) -> Run {
    let senders = std::mem::take(connections);
    let remaining = Arc::new(AtomicU64::new(requests));
    let cpu_before = process_cpu();
    let started = Instant::now();
    let deadline = started + TIME_CAP;
    let mut tasks = JoinSet::new();
    for mut sender in senders {
        let remaining = Arc::clone(&remaining);
        let authorization = authorization.clone();
        tasks.spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline && take_one(&remaining) {
                sender.ready().await.expect("connection ready");
                let response = sender
                    .send_request(request(&authorization))
                    .await
                    .expect("response");
                assert_eq!(response.status(), StatusCode::OK);
                response.into_body().collect().await.expect("body");
                done += 1;
            }
            (done, sender)
        });
    }
    let mut done = 0;
    while let Some(finished) = tasks.join_next().await {
        let (count, sender) = finished.expect("load task");
        done += count;
        connections.push(sender);
    }
    let elapsed = started.elapsed();
    let cpu = match (cpu_before, process_cpu()) {
        (Some(before), Some(after)) => after.checked_sub(before),
        _ => None,
    };
    Run {
        requests: done,
        elapsed,
        cpu,
    }
}

/// CPU time of every thread of this process so far (Linux: the first field of each
/// `/proc/self/task/*/schedstat`, in nanoseconds). `None` where that is not available.
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// The 1-minute load average, to show how busy the machine was (other processes included).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|avg| avg.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".to_owned())
}

fn take_one(remaining: &AtomicU64) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

fn request(authorization: &HeaderValue) -> Request<Empty<Bytes>> {
    Request::get(PATH)
        .header(HOST, "127.0.0.1")
        .header(AUTHORIZATION, authorization.clone())
        .body(Empty::new())
        .expect("request")
}

async fn get_once(addr: SocketAddr, authorization: &HeaderValue) -> StatusCode {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender
        .send_request(request(authorization))
        .await
        .expect("response");
    response.status()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
