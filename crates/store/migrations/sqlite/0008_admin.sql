-- The administrator account of the admin API and console (one), and API tokens. Only hashes are
-- kept: the password's Argon2id hash, each token's SHA-256.
CREATE TABLE admin_account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL
);

CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL
);
