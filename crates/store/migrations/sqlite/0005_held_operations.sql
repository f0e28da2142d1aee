-- Operations the mass-change guard held, per channel, until an operator approves or discards.
CREATE TABLE held_operations (
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    guid TEXT NOT NULL,
    label TEXT NOT NULL,
    operation TEXT NOT NULL,
    reason TEXT NOT NULL,
    held_at_ms INTEGER NOT NULL,
    approved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection, channel, guid)
);
