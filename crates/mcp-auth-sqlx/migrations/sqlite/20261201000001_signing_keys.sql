-- Access-token signing keys, shared by every instance of a deployment (see
-- `mcp_auth_core::SigningKeyStore`). A handful of rows, always read all at once, by
-- `generation`: the primary key, so that of instances racing to insert the next generation
-- exactly one succeeds (`INSERT … ON CONFLICT (generation) DO NOTHING`). `kid` is unique too:
-- a token names its key by it. `private_key` is what the key's owner gives (sealed when it has
-- a secret key); times are seconds since the epoch. WITHOUT ROWID, like every table here.

CREATE TABLE signing_keys (
    generation   INTEGER PRIMARY KEY NOT NULL,
    kid          TEXT NOT NULL UNIQUE,
    algorithm    TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    private_key  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL
) WITHOUT ROWID;
