-- An upstream identity provider's tokens per grant (see `mcp_auth_core::UpstreamTokenStore`),
-- sealed by the server before they reach storage: `sealed` is opaque text, never a token in
-- the clear. One row per grant, keyed by `grant_id` and replaced when the tokens are refreshed
-- (`INSERT … ON CONFLICT (grant_id) DO UPDATE`); `expires_at` is the grant's end, indexed for
-- the purge.

CREATE TABLE upstream_tokens (
    grant_id   TEXT PRIMARY KEY NOT NULL,
    sealed     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX upstream_tokens_expires_at ON upstream_tokens (expires_at);
