-- 0015 (issue 14): every claim inserts an execution and every finish writes
-- its next version (never heap-only: status is in the partial indexes'
-- predicates), so each index of the table is written twice per fire.
-- Runs are now listed by fire time, newest first (then by id), and the two
-- indexes that listed them by id go: a job's runs come from the unique
-- (job_id, scheduled_at, attempt) index, a user's from owner_time_idx, which
-- gains id so that a page ends exactly where the next begins. The foreign
-- key to jobs goes too: its check was a trigger and a query per inserted
-- row, while every insert already reads the job row (a claim, a trigger, a
-- downstream run) or copies an existing run of it (a retry), and job rows are
-- never removed (a delete marks them). Backend CPU per fire, claim + finish
-- of 40,000 one-offs: 62.9 -> 51.1 us.
ALTER TABLE executions DROP CONSTRAINT executions_job_id_fkey;
DROP INDEX executions_job_idx;
DROP INDEX executions_owner_idx;
DROP INDEX executions_owner_time_idx;
CREATE INDEX executions_owner_time_idx ON executions (owner_id, scheduled_at, id);
