-- Incremental cycles of channels with groups read whole only the groups whose version moved
-- (`source_stamp`, NULL when the group must be read whole again), and find the users a group
-- names by DN (`dn_key`, the DN normalised as the engine compares DNs; rows written before it
-- are filled in when the store opens).
ALTER TABLE group_records ADD COLUMN source_stamp TEXT;
ALTER TABLE records ADD COLUMN dn_key TEXT;
CREATE INDEX records_by_dn ON records (connection, channel, dn_key);
CREATE INDEX records_without_dn_key ON records (guid) WHERE dn_key IS NULL;
