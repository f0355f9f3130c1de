-- 0008: a user's live runs, counted by the claim for the concurrent-runs quota.
CREATE INDEX executions_owner_live_idx ON executions (owner_id)
    WHERE status IN ('scheduled', 'running');
