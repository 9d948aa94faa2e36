//! Record builders for the conformance suite.

use mcp_auth_core::secrets::{SecretHash, random_id, random_secret};
use mcp_auth_core::{AccessTokenRecord, CodeRecord, RefreshTokenRecord};

/// A fixed "now" far from the epoch; tests pass time explicitly.
pub const NOW: i64 = 1_900_000_000;

/// A code for `client` expiring at `expires_at`, with its raw value.
pub fn code(client: &str, expires_at: i64) -> (String, CodeRecord) {
    let raw = random_secret();
    let record = serde_json::from_value(serde_json::json!({
        "code_hash": SecretHash::of(&raw),
        "grant_id": random_id(),
        "client_id": client,
        "scopes": ["mcp:tools", "read"],
        "expires_at": expires_at,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "redirect_uri": "http://127.0.0.1:9/cb?x=1",
        "redirect_uri_provided_explicitly": true,
        "resource": "https://mcp.example/mcp",
        "subject": "alice",
    }))
    .expect("valid code record");
    (raw, record)
}

/// An access token of `grant` expiring at `expires_at`, with its raw value.
pub fn access(grant: &str, expires_at: i64) -> (String, AccessTokenRecord) {
    let raw = random_secret();
    let record = serde_json::from_value(serde_json::json!({
        "token_hash": SecretHash::of(&raw),
        "grant_id": grant,
        "client_id": "client-1",
        "scopes": ["mcp:tools"],
        "expires_at": expires_at,
        "resource": "https://mcp.example/mcp",
        "subject": "alice",
        "claims": {"iss": "https://as.example", "nested": {"a": [1, 2]}},
    }))
    .expect("valid access record");
    (raw, record)
}

/// A refresh token of `grant` expiring at `expires_at`, with its raw value.
pub fn refresh(grant: &str, expires_at: i64) -> (String, RefreshTokenRecord) {
    let raw = random_secret();
    let record = serde_json::from_value(serde_json::json!({
        "token_hash": SecretHash::of(&raw),
        "grant_id": grant,
        "client_id": "client-1",
        "scopes": ["mcp:tools", "read"],
        "expires_at": expires_at,
        "resource": null,
        "subject": "alice",
        "claims": null,
        "grant_issued_at": NOW - 10,
    }))
    .expect("valid refresh record");
    (raw, record)
}
