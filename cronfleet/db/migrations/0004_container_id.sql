-- 0004: the container a run had (pooled containers carry no per-run labels).
ALTER TABLE executions ADD COLUMN container_id text;
