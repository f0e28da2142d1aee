-- The target's version (ETag) of each user after our last write, sent as If-Match.
ALTER TABLE records ADD COLUMN target_version TEXT;
