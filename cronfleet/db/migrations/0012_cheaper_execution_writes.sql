-- 0012 (issue 14, what pg_stat_statements showed under load):
-- executions_id_idx (id) repeated the primary key (id, scheduled_at), whose
-- leading column serves every lookup by id: one index insertion less per
-- execution write. The scan for cancel requests read every execution of the
-- scheduler's shards (120 us per fire at 10k fires); this partial index
-- holds only the runs someone asked to stop, normally none.
DROP INDEX executions_id_idx;
CREATE INDEX executions_cancel_idx ON executions (shard_id)
    WHERE cancel_requested AND status IN ('scheduled', 'running');
