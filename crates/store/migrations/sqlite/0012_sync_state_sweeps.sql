-- When the GUIDs in scope were last compared with the known users (a full read or a sweep for
-- deletes): incremental reads sweep for deletes every `delete_sweep_minutes`, not every cycle.
-- 0 for the states written before: their last full read counts as the last sweep.
ALTER TABLE sync_states ADD COLUMN last_sweep_ms INTEGER NOT NULL DEFAULT 0;
