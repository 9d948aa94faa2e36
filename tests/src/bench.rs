//! What the two bearer-layer benchmarks share, so that the socket run (`benches/bearer.rs`)
//! and the criterion run without sockets (`benches/bearer_layer.rs`) verify the same token.

use mcp_auth_core::AccessTokenRecord;
use mcp_auth_core::secrets::{SecretHash, random_id, random_secret};

/// A live access token for `resource` with `scope` and an `iss` claim of `issuer`, shaped like
/// the ones `StoreProvider` issues (client, subject, claims), and its raw value.
pub fn access_token(issuer: &str, resource: &str, scope: &str) -> (String, AccessTokenRecord) {
    let raw = random_secret();
    let record = serde_json::from_value(serde_json::json!({
        "token_hash": SecretHash::of(&raw),
        "grant_id": random_id(),
        "client_id": "bench-client",
        "scopes": [scope],
        "expires_at": i64::MAX / 2,
        "resource": resource,
        "subject": "bench-user",
        "claims": {"iss": issuer},
    }))
    .expect("valid access token record");
    (raw, record)
}
