-- The token tables become rowid tables: each row is appended where the last one went, and the
-- hash that finds it lives in a unique index of its own (32 bytes and a rowid per entry).
--
-- Why: a token's hash is random, so in a table clustered by it (WITHOUT ROWID) every issuance
-- inserted its whole row, JSON record included, into a random leaf of the largest B-tree in the
-- file; once the file outgrew SQLite's page cache, each such insert read and rewrote a page
-- (twice with WAL: the log, then the checkpoint). Now only the hash index takes a random
-- insert, and it is about a tenth of the table's size, so far more of it stays cached. The price is
-- one more B-tree step on a lookup by hash (index, then row). Measured in the crate README.
--
-- The rows are copied as they are; sqlx runs a migration in one transaction. (The comments of
-- the earlier migrations that call every table WITHOUT ROWID predate this one; a migration's
-- text cannot change once applied, since sqlx checks it.)

CREATE TABLE access_tokens_by_rowid (
    token_hash BLOB NOT NULL,
    grant_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    record     TEXT NOT NULL
);
INSERT INTO access_tokens_by_rowid (token_hash, grant_id, expires_at, record)
    SELECT token_hash, grant_id, expires_at, record FROM access_tokens ORDER BY expires_at;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_by_rowid RENAME TO access_tokens;
CREATE UNIQUE INDEX access_tokens_token_hash ON access_tokens (token_hash);
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE refresh_tokens_by_rowid (
    token_hash BLOB NOT NULL,
    grant_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated    INTEGER NOT NULL DEFAULT 0,
    record     TEXT NOT NULL,
    rotated_at INTEGER
);
INSERT INTO refresh_tokens_by_rowid (token_hash, grant_id, expires_at, rotated, record, rotated_at)
    SELECT token_hash, grant_id, expires_at, rotated, record, rotated_at FROM refresh_tokens
    ORDER BY expires_at;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_by_rowid RENAME TO refresh_tokens;
CREATE UNIQUE INDEX refresh_tokens_token_hash ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
