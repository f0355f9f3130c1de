-- 0013 (issue 14): schedule_job_idx (job_id) repeated the primary key
-- (job_id, next_run_at), whose leading column serves every lookup by job
-- (and the cascade from jobs). Each fire writes the schedule row (advanced:
-- a new row version, since next_run_at is in the key; or deleted), so one
-- index insertion less per fire.
DROP INDEX schedule_job_idx;
