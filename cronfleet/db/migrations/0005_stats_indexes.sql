-- 0005: a user's (or a job's) executions by the time they were due: the stats
-- routes read the last day of them.
CREATE INDEX executions_owner_time_idx ON executions (owner_id, scheduled_at);
CREATE INDEX executions_job_time_idx ON executions (job_id, scheduled_at);
