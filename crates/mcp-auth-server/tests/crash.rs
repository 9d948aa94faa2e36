//! Issue 13's "outages lose nothing" on SQLite: the binary is killed with SIGKILL in the middle
//! of a load — registrations, client-credentials grants, protected `/mcp` calls with them — and
//! started again on the same file. Every token whose issuance was answered before the kill
//! works after the restart, and every client whose registration was answered is still there:
//! an answer is given only after its write committed. (SQLite's WAL survives a killed process
//! by construction; this proves the server answers no write before it is durable there, not
//! what a power loss would keep.)

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CLIENT: &str = "crash-machine";
const SECRET: &str = "crash-machine-secret-0123456789abcdef";
const SCOPE: &str = "mcp:tools";

struct Server {
    child: Child,
    origin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary on `store` at `port` and waits for `/healthz`.
async fn start(store: &str, client_file: &str, port: u16, http: &reqwest::Client) -> Server {
    let origin = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_mcp-auth-server"))
        .args(["--bind", &format!("127.0.0.1:{port}"), "--store", store])
        .args(["--client", client_file])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server { child, origin };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        // A server that exited (its port taken meanwhile) must not pass for healthy because
        // another process answers there.
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("the server exited during start-up: {status}");
        }
        if let Ok(response) = http.get(format!("{}/healthz", server.origin)).send().await
            && response.status() == 200
            && server.child.try_wait().unwrap().is_none()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become healthy");
}

/// What the load saw answered before the kill.
#[derive(Default)]
struct Confirmed {
    tokens: Vec<String>,
    clients: Vec<String>,
    requests: u64,
}

async fn load(http: reqwest::Client, origin: String, confirmed: Arc<Mutex<Confirmed>>) {
    loop {
        let token = http
            .post(format!("{origin}/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", SCOPE),
            ])
            .send()
            .await;
        let Ok(token) = token else { return };
        if token.status() == 200 {
            let Ok(body) = token.json::<Value>().await else {
                return;
            };
            let access = body["access_token"].as_str().unwrap().to_owned();
            let call = http
                .post(format!("{origin}/mcp"))
                .bearer_auth(&access)
                .header("accept", "application/json, text/event-stream")
                .json(&initialize())
                .send()
                .await;
            confirmed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .tokens
                .push(access);
            if call.is_err() {
                return;
            }
        }
        let registered = http
            .post(format!("{origin}/register"))
            .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"],
                          "token_endpoint_auth_method": "none"}))
            .send()
            .await;
        let Ok(registered) = registered else { return };
        if registered.status() == 201 {
            let Ok(body) = registered.json::<Value>().await else {
                return;
            };
            let client_id = body["client_id"].as_str().unwrap().to_owned();
            confirmed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clients
                .push(client_id);
        }
        confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .requests += 2;
    }
}

async fn mcp_accepts(http: &reqwest::Client, origin: &str, token: &str) -> bool {
    let response = http
        .post(format!("{origin}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize())
        .send()
        .await
        .unwrap();
    response.status() == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_no_answered_write_on_sqlite() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("crash-{:016x}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite://{}", dir.join("store.db").display());
    let client_file = dir.join("machine.json");
    std::fs::write(
        &client_file,
        json!({"client_id": CLIENT, "client_secret": SECRET,
               "token_endpoint_auth_method": "client_secret_post",
               "grant_types": ["client_credentials"], "scope": SCOPE})
        .to_string(),
    )
    .unwrap();
    let client_file = client_file.display().to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let port = free_port();
    let mut server = start(&store, &client_file, port, &http).await;

    let confirmed = Arc::new(Mutex::new(Confirmed::default()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(load(
                http.clone(),
                server.origin.clone(),
                Arc::clone(&confirmed),
            ))
        })
        .collect();
    // Until the load has written enough (bounded: a loaded machine is slower, not stuck).
    let loaded = Instant::now() + Duration::from_secs(20);
    while Instant::now() < loaded {
        let enough = {
            let confirmed = confirmed.lock().unwrap_or_else(PoisonError::into_inner);
            confirmed.tokens.len() >= 300 && confirmed.clients.len() >= 20
        };
        if enough {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGKILL: no shutdown, no flush, mid-write.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let confirmed = std::mem::take(&mut *confirmed.lock().unwrap_or_else(PoisonError::into_inner));
    assert!(
        confirmed.tokens.len() >= 10 && confirmed.clients.len() >= 10,
        "the load ran: {} tokens, {} clients",
        confirmed.tokens.len(),
        confirmed.clients.len()
    );
    drop(server);

    let restarted = start(&store, &client_file, port, &http).await;
    let mut lost_tokens = 0;
    for token in &confirmed.tokens {
        if !mcp_accepts(&http, &restarted.origin, token).await {
            lost_tokens += 1;
        }
    }
    let mut lost_clients = 0;
    let store_handle = mcp_auth_sqlx::SqliteStore::connect(&store).await.unwrap();
    for client_id in &confirmed.clients {
        use mcp_auth_core::storage::ClientStore;
        if store_handle.get_client(client_id).await.unwrap().is_none() {
            lost_clients += 1;
        }
    }
    eprintln!(
        "SIGKILL on SQLite after {} requests: {} tokens and {} registrations answered before \
         the kill; lost after the restart: {lost_tokens} tokens, {lost_clients} clients",
        confirmed.requests,
        confirmed.tokens.len(),
        confirmed.clients.len()
    );
    assert_eq!((lost_tokens, lost_clients), (0, 0));
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "crash", "version": "0"}}})
}

fn rand_suffix() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(nanos) ^ u64::from(std::process::id()) << 32
}
