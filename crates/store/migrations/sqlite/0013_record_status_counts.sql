-- How many records each channel has in each status, kept by triggers: a cycle reads these few
-- rows instead of counting the status index (84 ms at a million records, asked twice by a live
-- cycle). Records are only ever inserted (an upsert's conflict is an update), updated and
-- deleted, never replaced.
CREATE TABLE record_status_counts (
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (connection, channel, status)
);

INSERT INTO record_status_counts (connection, channel, status, n)
    SELECT connection, channel, status, count(*) FROM records GROUP BY connection, channel, status;

CREATE TRIGGER record_counted_on_insert AFTER INSERT ON records
BEGIN
    INSERT INTO record_status_counts (connection, channel, status, n)
        VALUES (new.connection, new.channel, new.status, 1)
        ON CONFLICT (connection, channel, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER record_counted_on_delete AFTER DELETE ON records
BEGIN
    UPDATE record_status_counts SET n = n - 1
        WHERE connection = old.connection AND channel = old.channel AND status = old.status;
END;

CREATE TRIGGER record_counted_on_update AFTER UPDATE OF connection, channel, status ON records
    WHEN old.status IS NOT new.status
        OR old.connection IS NOT new.connection
        OR old.channel IS NOT new.channel
BEGIN
    UPDATE record_status_counts SET n = n - 1
        WHERE connection = old.connection AND channel = old.channel AND status = old.status;
    INSERT INTO record_status_counts (connection, channel, status, n)
        VALUES (new.connection, new.channel, new.status, 1)
        ON CONFLICT (connection, channel, status) DO UPDATE SET n = n + 1;
END;
