-- A group's members, one row each, instead of a JSON array in the group record: a member added
-- to or removed from a large group writes one row, not the whole list. `target_id` is the
-- member's target user; the index by user finds the groups of one user (a rehire, a leaver).
CREATE TABLE group_members (
    connection TEXT NOT NULL,
    channel TEXT NOT NULL,
    group_guid TEXT NOT NULL,
    user_guid TEXT NOT NULL,
    target_id TEXT NOT NULL,
    PRIMARY KEY (connection, channel, group_guid, user_guid)
) WITHOUT ROWID;
CREATE INDEX group_members_by_user ON group_members (connection, channel, user_guid);
INSERT OR REPLACE INTO group_members (connection, channel, group_guid, user_guid, target_id)
    SELECT g.connection, g.channel, g.guid,
           json_extract(m.value, '$.guid'), json_extract(m.value, '$.target_id')
    FROM group_records AS g, json_each(g.members) AS m;
ALTER TABLE group_records DROP COLUMN members;
