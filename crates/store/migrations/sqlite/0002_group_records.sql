-- One record per source group per channel; members is a JSON array of {guid, target_id}.
CREATE TABLE group_records (
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    guid TEXT NOT NULL,
    dn TEXT NOT NULL,
    display_name TEXT NOT NULL,
    target_id TEXT,
    members TEXT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection, channel, guid)
);
