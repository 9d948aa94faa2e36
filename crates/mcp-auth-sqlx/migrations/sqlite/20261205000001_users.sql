-- Sign-in users kept in the store (`mcp-auth-server user add`): a name and an argon2id PHC
-- string, never a password.
CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
