-- 0009: the hardened surface (issue 13). Token buckets for login and signup
-- throttling, shared by every gateway; each job's planned fire rate, summed
-- for the runs-per-minute quota.
CREATE UNLOGGED TABLE throttles (
    key text PRIMARY KEY,
    tokens double precision NOT NULL,
    capacity double precision NOT NULL,
    per_second double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Fires in the minute from the job's next fire (0 for a one-off); NULL for
-- jobs made before this migration, counted as 1 until they are changed.
ALTER TABLE jobs ADD COLUMN fires_per_minute integer;
