//! The shared statements in PostgreSQL's SQL (the token writes are in [`super::writes`]).
//!
//! Parameters are `$1`; flags are `BOOLEAN` columns, set with `TRUE`.

use crate::dialect::Sql;

pub(super) const SQL: Sql = Sql {
    insert_client: "INSERT INTO clients (client_id, record) VALUES ($1, $2)",
    upsert_client: "INSERT INTO clients (client_id, record) VALUES ($1, $2) \
         ON CONFLICT (client_id) DO UPDATE SET record = EXCLUDED.record",
    get_client: "SELECT record FROM clients WHERE client_id = $1",
    delete_client: "DELETE FROM clients WHERE client_id = $1",

    insert_authorization_request: "INSERT INTO authorization_requests \
         (request_hash, expires_at, record) VALUES ($1, $2, $3)",
    get_authorization_request: "SELECT record FROM authorization_requests \
         WHERE request_hash = $1 AND expires_at > $2",
    take_authorization_request: "DELETE FROM authorization_requests \
         WHERE request_hash = $1 AND expires_at > $2 RETURNING record",
    purge_authorization_requests: "DELETE FROM authorization_requests WHERE expires_at <= $1",

    insert_code: "INSERT INTO codes (code_hash, grant_id, expires_at, record) \
         VALUES ($1, $2, $3, $4)",
    get_code: "SELECT record FROM codes \
         WHERE code_hash = $1 AND NOT redeemed AND expires_at > $2",
    // Concurrent updates of one row queue on its row lock; each re-checks `NOT redeemed`
    // against the version the one before it committed, so exactly one matches.
    take_code: "UPDATE codes SET redeemed = TRUE \
         WHERE code_hash = $1 AND NOT redeemed AND expires_at > $2 RETURNING record",
    code_redeemed: "SELECT grant_id FROM codes \
         WHERE code_hash = $1 AND redeemed AND expires_at > $2",
    purge_codes: "DELETE FROM codes WHERE expires_at <= $1",

    get_access_token: "SELECT record FROM access_tokens \
         WHERE token_hash = $1 AND expires_at > $2",
    get_refresh_token: "SELECT rotated, record FROM refresh_tokens \
         WHERE token_hash = $1 AND expires_at > $2",

    // Concurrent inserts of one key queue on the unique index; the loser's `DO UPDATE`
    // re-reads the winner's row, which has not expired, so it returns nothing.
    record_assertion_id: "INSERT INTO assertion_ids (issuer, jti, expires_at) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at \
         WHERE assertion_ids.expires_at <= $4 \
         RETURNING 1",
    purge_assertion_ids: "DELETE FROM assertion_ids WHERE expires_at <= $1",

    // Concurrent inserts of one generation queue on the primary key; the first commits and
    // the others find its row and do nothing.
    insert_signing_key: "INSERT INTO signing_keys \
         (generation, kid, algorithm, public_jwk, private_key, created_at, activates_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (generation) DO NOTHING",
    delete_signing_keys_before: "DELETE FROM signing_keys WHERE generation < $1",

    refresh_token_rotation: "SELECT rotated_at, record FROM refresh_tokens \
         WHERE token_hash = $1 AND rotated AND rotated_at IS NOT NULL AND expires_at > $2",
    insert_user: "INSERT INTO users (name, password_hash, created_at) \
         VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    set_user_password: "UPDATE users SET password_hash = $2 WHERE name = $1",
    get_user: "SELECT name, password_hash, created_at FROM users WHERE name = $1",
    list_users: "SELECT name, password_hash, created_at FROM users ORDER BY name COLLATE \"C\"",
    delete_user: "DELETE FROM users WHERE name = $1",
    list_clients: "SELECT record FROM clients ORDER BY client_id COLLATE \"C\"",
    live_token_records: "SELECT a.record FROM access_tokens a \
         WHERE a.expires_at > $1 AND NOT EXISTS \
         (SELECT 1 FROM grants g WHERE g.grant_id = a.grant_id AND g.revoked) \
         UNION ALL SELECT r.record FROM refresh_tokens r \
         WHERE r.expires_at > $1 AND NOT r.rotated AND NOT EXISTS \
         (SELECT 1 FROM grants g WHERE g.grant_id = r.grant_id AND g.revoked) \
         UNION ALL SELECT c.record FROM codes c \
         WHERE c.expires_at > $1 AND NOT c.redeemed AND NOT EXISTS \
         (SELECT 1 FROM grants g WHERE g.grant_id = c.grant_id AND g.revoked)",

    put_upstream_tokens: "INSERT INTO upstream_tokens (grant_id, sealed, expires_at) \
         VALUES ($1, $2, $3) ON CONFLICT (grant_id) \
         DO UPDATE SET sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at",
    get_upstream_tokens: "SELECT sealed, expires_at FROM upstream_tokens \
         WHERE grant_id = $1 AND expires_at > $2",
    delete_upstream_tokens: "DELETE FROM upstream_tokens WHERE grant_id = $1",
    purge_upstream_tokens: "DELETE FROM upstream_tokens WHERE expires_at <= $1",
};
