-- 0010: the log-bytes-kept quota (issue 13). How many bytes each run's stored
-- log holds, as its worker uploaded it; when the coordinator removed it
-- because its owner's logs passed the quota (the oldest go first).
ALTER TABLE executions ADD COLUMN log_bytes bigint;
ALTER TABLE executions ADD COLUMN log_removed_at timestamptz;
