//! `mcp-auth-server user|client|grant …` through the binary, on SQLite, PostgreSQL and Redis:
//! the commands act on the store a server shares, and revocations reach the tokens stored
//! there. PostgreSQL and Redis are `cargo xtask test`'s (`MCP_AUTH_TEST_POSTGRES_URL`,
//! `MCP_AUTH_TEST_REDIS_URL`); every name a test writes is unique, so tests share them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use mcp_auth_core::secrets::{SecretHash, random_id, random_secret};
use mcp_auth_core::storage::{AdminStore, ClientStore, TokenStore};
use mcp_auth_core::types::{OAuthClientInformationFull, OAuthClientMetadata};
use mcp_auth_core::{AccessTokenRecord, ClientRecord, RefreshTokenRecord, Storage};

/// Runs the binary with `--store STORE ARGS`, `stdin` as its standard input.
fn run(store: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-auth-server"))
        .args(["--store", store])
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Stores a grant of `client` for `subject` (an access and a refresh token), as a sign-in
/// would; returns its id and the refresh token's hash.
async fn grant(store: &Arc<dyn Storage>, client: &str, subject: &str) -> (String, SecretHash) {
    let grant_id = random_id();
    let record = |kind: &str| {
        serde_json::json!({
            "token_hash": SecretHash::of(&random_secret()), "grant_id": grant_id,
            "client_id": client, "scopes": ["mcp:tools"], "resource": null,
            "subject": subject, "claims": null, "grant_issued_at": now(),
            "expires_at": now() + if kind == "access" { 3600 } else { 86_400 },
        })
    };
    let access: AccessTokenRecord = serde_json::from_value(record("access")).unwrap();
    let refresh: RefreshTokenRecord = serde_json::from_value(record("refresh")).unwrap();
    assert!(store.issue_tokens(&access, Some(&refresh)).await.unwrap());
    (grant_id, refresh.token_hash)
}

/// The whole administration of one user and one client, on `url`, whose store `store` is.
async fn administer(url: &str, store: Arc<dyn Storage>) {
    let alice = format!("alice-{}", random_id());
    let client_id = format!("client-{}", random_id());

    // Users: added once with a password from stdin, changed, listed, removed.
    assert!(ok(run(url, &["user", "add", &alice], "first password\n")).contains("added"));
    let again = run(url, &["user", "add", &alice], "x\n");
    assert_eq!(again.status.code(), Some(1), "{}", stdout(&again));
    let stored = store.get_user(&alice).await.unwrap().expect("in the store");
    assert!(
        stored.password_hash.starts_with("$argon2id$"),
        "a hash, not the password"
    );
    assert!(!stored.password_hash.contains("first password"));
    ok(run(url, &["user", "passwd", &alice], "second password\n"));
    let changed = store.get_user(&alice).await.unwrap().unwrap();
    assert_ne!(changed.password_hash, stored.password_hash);
    let missing = run(
        url,
        &["user", "passwd", &format!("nobody-{}", random_id())],
        "x\n",
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(ok(run(url, &["user", "list"], "")).contains(&alice));
    let empty = run(
        url,
        &["user", "add", &format!("empty-{}", random_id())],
        "\n",
    );
    assert_eq!(empty.status.code(), Some(2), "an empty password is refused");
    let bad = run(url, &["user", "add", "a:b"], "pw\n");
    assert_eq!(bad.status.code(), Some(2), "a name --user could not spell");

    // A client with two grants, one of them alice's.
    let mut metadata = OAuthClientMetadata::new(vec!["http://127.0.0.1:9/cb".to_owned()]);
    metadata.client_name = Some("Nightly job".to_owned());
    let mut info = OAuthClientInformationFull::new(client_id.clone(), metadata);
    info.client_secret = Some(mcp_auth_core::types::ClientSecret::new(
        "s3cret-value".to_owned(),
    ));
    store.insert_client(&ClientRecord::new(info)).await.unwrap();
    let (alices, alices_refresh) = grant(&store, &client_id, &alice).await;
    let (bobs, bobs_refresh) = grant(&store, &client_id, &format!("bob-{}", random_id())).await;

    let listed = ok(run(url, &["client", "list"], ""));
    assert!(
        listed.contains(&client_id) && listed.contains("Nightly job"),
        "{listed}"
    );
    let shown = ok(run(url, &["client", "show", &client_id], ""));
    assert!(shown.contains("\"confidential\": true"), "{shown}");
    assert!(!shown.contains("s3cret-value"), "never a secret");
    let grants = ok(run(url, &["grant", "list", "--user", &alice], ""));
    assert!(
        grants.contains(&alices) && !grants.contains(&bobs),
        "{grants}"
    );
    let grants = ok(run(url, &["grant", "list", "--client", &client_id], ""));
    assert!(
        grants.contains(&alices) && grants.contains(&bobs),
        "{grants}"
    );

    // Removing alice revokes her grant at once in the shared store, and only hers.
    assert!(ok(run(url, &["user", "remove", &alice], "")).contains("revoked 1 grants"));
    assert!(store.get_user(&alice).await.unwrap().is_none());
    assert!(
        store
            .get_refresh_token(&alices_refresh, now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_refresh_token(&bobs_refresh, now())
            .await
            .unwrap()
            .is_some()
    );

    // One grant by id, then the client with whatever it has left.
    let (third, third_refresh) = grant(&store, &client_id, "carol").await;
    ok(run(url, &["grant", "revoke", &third], ""));
    assert!(
        store
            .get_refresh_token(&third_refresh, now())
            .await
            .unwrap()
            .is_none()
    );
    let unknown = run(url, &["grant", "revoke", &random_id()], "");
    assert_eq!(unknown.status.code(), Some(1));
    let both = run(url, &["grant", "revoke", &bobs, "--user", "x"], "");
    assert_eq!(
        both.status.code(),
        Some(2),
        "a grant id or filters, not both"
    );
    assert!(ok(run(url, &["client", "remove", &client_id], "")).contains("revoked 1 grants"));
    assert!(store.get_client(&client_id).await.unwrap().is_none());
    assert!(
        store
            .get_refresh_token(&bobs_refresh, now())
            .await
            .unwrap()
            .is_none()
    );
    let gone = run(url, &["client", "show", &client_id], "");
    assert_eq!(gone.status.code(), Some(1));
}

fn required(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is unset: run the tests with `cargo xtask test`"))
}

#[tokio::test]
async fn administration_on_sqlite() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("admin-cli-{}", random_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("store.db").display());
    // The binary creates and migrates the file on its first command.
    ok(run(&url, &["user", "list"], ""));
    let store = mcp_auth_sqlx::SqliteStore::connect(&url).await.unwrap();
    administer(&url, Arc::new(store)).await;
}

#[tokio::test]
async fn administration_on_postgres() {
    let url = required("MCP_AUTH_TEST_POSTGRES_URL");
    ok(run(&url, &["user", "list"], ""));
    let store = mcp_auth_sqlx::PostgresStore::connect(&url).await.unwrap();
    administer(&url, Arc::new(store)).await;
}

#[tokio::test]
async fn administration_on_redis() {
    let url = required("MCP_AUTH_TEST_REDIS_URL");
    let store = mcp_auth_redis::RedisStore::connect(&url).await.unwrap();
    administer(&url, Arc::new(store)).await;
}

#[test]
fn the_memory_store_has_nothing_to_administer() {
    let output = run("memory", &["user", "list"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--store"));
}
