-- Operations sent to the target and not yet settled: a crash leaves them behind, and the next
-- cycle checks the target before sending them again.
CREATE TABLE operation_journal (
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    guid TEXT NOT NULL,
    dn TEXT NOT NULL,
    label TEXT NOT NULL,
    operation TEXT NOT NULL,
    cycle_id INTEGER NOT NULL,
    sent_at_ms INTEGER NOT NULL,
    PRIMARY KEY (connection, channel, guid)
);

-- Retry backoff of failed records.
ALTER TABLE records ADD COLUMN retry_after_ms INTEGER;
ALTER TABLE records ADD COLUMN failed_fingerprint TEXT;
