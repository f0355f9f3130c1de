-- 0002: per-step results of multi-step runs, and whether a run started cold
-- (its container could not be armed before the fire time).
ALTER TABLE executions ADD COLUMN steps jsonb;
ALTER TABLE executions ADD COLUMN cold_start boolean NOT NULL DEFAULT false;
