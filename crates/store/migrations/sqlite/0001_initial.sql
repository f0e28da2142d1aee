-- Configuration objects are kept as JSON documents named by their configuration name; literal
-- secrets inside them are encrypted before they are written.
CREATE TABLE data_stores (
    name TEXT PRIMARY KEY NOT NULL,
    config TEXT NOT NULL
);

CREATE TABLE connections (
    name TEXT PRIMARY KEY NOT NULL,
    config TEXT NOT NULL
);

-- One record per source entry per channel.
CREATE TABLE records (
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    guid TEXT NOT NULL,
    dn TEXT NOT NULL,
    user_name TEXT,
    target_id TEXT,
    source_fingerprint TEXT,
    applied_image TEXT,
    status TEXT NOT NULL,
    last_error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection, channel, guid)
);

-- Cycle history.
CREATE TABLE cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER,
    summary TEXT,
    error TEXT
);

CREATE INDEX cycles_by_channel ON cycles (connection, channel, id);
