-- Incremental cycles read the records they need by key, not all of them: by user name (to keep
-- one target user per entry), by target id (which entry owns a target user), and the failed ones
-- (retries). `user_name_key` is the user name lower-cased as SCIM compares it (Unicode, which
-- SQLite's lower() is not); rows written before it are filled in when the store opens.
ALTER TABLE records ADD COLUMN user_name_key TEXT;
CREATE INDEX records_by_user_name ON records (connection, channel, user_name_key);
CREATE INDEX records_by_target_id ON records (connection, channel, target_id);
CREATE INDEX records_by_status ON records (connection, channel, status);
CREATE INDEX records_without_user_name_key ON records (guid)
    WHERE user_name IS NOT NULL AND user_name_key IS NULL;
-- Counting a channel's records reads these narrow indexes only (every record per status; the
-- few without a target user or without a fingerprint), never the records with their images.
CREATE INDEX records_without_target ON records (connection, channel, status, target_id)
    WHERE target_id IS NULL;
CREATE INDEX records_without_fingerprint ON records (connection, channel, status, source_fingerprint)
    WHERE source_fingerprint IS NULL;
