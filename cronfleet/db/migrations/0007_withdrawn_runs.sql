-- 0007: a run withdrawn (its job paused, edited or deleted) is dropped only if
-- it has not started; a user's cancel stops it even once started.
ALTER TABLE executions ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;
