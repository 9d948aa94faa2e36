-- mcp-auth storage schema for SQLite.
--
-- Every credential column holds a SHA-256 hash (32-byte BLOB), never the credential itself.
-- Lookup keys are primary keys; `grant_id` is indexed wherever a grant's tokens are found by
-- it, and `expires_at` wherever the purge scans by expiry. Tables are WITHOUT ROWID: their
-- primary key is the only way rows are reached, so the key itself clusters the table.
-- `record` is the full record as JSON (see src/codec.rs); the columns beside it are what the
-- queries filter on.

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    record    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE authorization_requests (
    request_hash BLOB PRIMARY KEY NOT NULL,
    expires_at   INTEGER NOT NULL,
    record       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX authorization_requests_expires_at ON authorization_requests (expires_at);

-- A redeemed code stays, with `redeemed = 1`, until it expires: a second redemption must find
-- it to revoke the grant (RFC 6749 §4.1.2).
CREATE TABLE codes (
    code_hash  BLOB PRIMARY KEY NOT NULL,
    grant_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    redeemed   INTEGER NOT NULL DEFAULT 0,
    record     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX codes_expires_at ON codes (expires_at);

-- One row per grant, written by every operation that adds or removes a grant's tokens, so
-- that issuing, rotating and revoking are serialised per grant. `revoked = 1` refuses new
-- tokens; `keep_until` is when the row may be purged (the last token's expiry, or the
-- revocation's `keep_until`).
CREATE TABLE grants (
    grant_id   TEXT PRIMARY KEY NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    keep_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX grants_keep_until ON grants (keep_until);

CREATE TABLE access_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    grant_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    record     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- A rotated refresh token stays, with `rotated = 1`, until it expires, so that presenting it
-- again is detected as reuse (RFC 9700 §4.14.2).
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    grant_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated    INTEGER NOT NULL DEFAULT 0,
    record     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE assertion_ids (
    issuer     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, jti)
) WITHOUT ROWID;
CREATE INDEX assertion_ids_expires_at ON assertion_ids (expires_at);
