-- 0011: every execution row version is written into each index of the table
-- (its updates change status and worker_id, which partial indexes read, so
-- none is HOT): executions_job_time_idx (job_id, scheduled_at) repeated the
-- unique index on (job_id, scheduled_at, attempt), which serves the same
-- ranges. One index insertion less per write (issue 14).
DROP INDEX executions_job_time_idx;
