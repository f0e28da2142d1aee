-- Every provisioning event, for `scimbridge history` and audits.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    cycle_id INTEGER NOT NULL,
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    event_type TEXT NOT NULL,
    source_id TEXT NOT NULL,
    dn TEXT NOT NULL,
    name TEXT,
    target_id TEXT,
    success INTEGER NOT NULL,
    cause TEXT NOT NULL
);
CREATE INDEX audit_events_source ON audit_events (source_id);
CREATE INDEX audit_events_name ON audit_events (name COLLATE NOCASE);
CREATE INDEX audit_events_target ON audit_events (target_id);
