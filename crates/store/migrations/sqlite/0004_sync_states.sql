-- Where each channel's last incremental read of its data store stopped.
CREATE TABLE sync_states (
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    mechanism TEXT NOT NULL,
    cursor TEXT NOT NULL,
    settings_fingerprint TEXT NOT NULL,
    last_full_read_ms INTEGER NOT NULL,
    PRIMARY KEY (connection, channel)
);
