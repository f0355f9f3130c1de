-- cronfleet: the whole schema as of the newest migration.
-- tests/integration/test_migrations.py checks that applying every file in
-- migrations/ gives exactly this schema.

CREATE TABLE users (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Signs this user's alert deliveries (HMAC-SHA256); shown once when made.
    webhook_secret text,
    -- Notify targets for the user's jobs that set none.
    default_notify jsonb NOT NULL DEFAULT '[]'
);

-- Only a hash of each token is kept; logout sets revoked_at.
CREATE TABLE api_tokens (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE jobs (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES users (id),
    name text NOT NULL,
    -- What to run: command or steps, image, env, resources, timeout.
    spec jsonb NOT NULL,
    schedule text,
    timezone text NOT NULL DEFAULT 'UTC',
    run_at timestamptz,
    start_at timestamptz,
    end_at timestamptz,
    max_retries integer NOT NULL DEFAULT 0,
    timeout_seconds integer NOT NULL DEFAULT 3600,
    priority smallint NOT NULL DEFAULT 5,
    concurrency_policy text NOT NULL DEFAULT 'allow',
    max_concurrency integer,
    -- hash(id) mod shards, fixed for the job's life.
    shard_id integer NOT NULL,
    status text NOT NULL DEFAULT 'active',
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Set when paused: resume runs what was missed since, by the misfire policy.
    paused_at timestamptz,
    -- Fires in the minute from the job's next fire (0 for a one-off); NULL for
    -- jobs made before this column, counted as 1 until they are changed.
    fires_per_minute integer
) WITH (fillfactor = 50);  -- room for each row's next version (migration 0014)
CREATE INDEX jobs_owner_idx ON jobs (owner_id, created_at, id);

-- One row per live job: its next fire. Range-partitioned by next_run_at in
-- day partitions (coarse, so a frequent job's row stays in its partition).
CREATE TABLE schedule (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    shard_id integer NOT NULL,
    next_run_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, next_run_at)
) PARTITION BY RANGE (next_run_at);
CREATE INDEX schedule_due_idx ON schedule (shard_id, next_run_at);
CREATE TABLE schedule_default PARTITION OF schedule DEFAULT;

-- One row per attempt of a fire, identified by (job_id, scheduled_at, attempt).
-- job_id names a row of jobs, which are never removed (a delete marks them);
-- not a foreign key: its check was a trigger and a query per inserted run,
-- and every insert reads the job row already (or copies a run of it).
CREATE TABLE executions (
    id bigserial,
    job_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    shard_id integer NOT NULL,
    scheduled_at timestamptz NOT NULL,
    attempt integer NOT NULL DEFAULT 1,
    -- When this attempt may start: scheduled_at, or later for a retry.
    run_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'scheduled',
    trigger text NOT NULL DEFAULT 'schedule',
    priority smallint NOT NULL DEFAULT 5,
    scheduler_id text,
    worker_id text,
    assigned_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    exit_code integer,
    lateness_ms double precision,
    log_url text,
    error text,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- [{name, exit_code, duration_ms}] for each step that ran.
    steps jsonb,
    -- The run could not be armed before its fire time and started cold.
    cold_start boolean NOT NULL DEFAULT false,
    -- trigger "upstream": the run whose end fired this one.
    upstream_execution_id bigint,
    -- What the run left in $CRONFLEET_CHECKPOINT (handed to the next attempt).
    checkpoint bytea,
    checkpoint_truncated boolean NOT NULL DEFAULT false,
    -- The container it ran in (docker runtime).
    container_id text,
    -- Withdrawn (job paused, edited, deleted): dropped only if not started.
    withdrawn boolean NOT NULL DEFAULT false,
    -- The stored log's size; when it was removed, the owner's logs past the
    -- log-bytes-kept quota (oldest first).
    log_bytes bigint,
    log_removed_at timestamptz,
    PRIMARY KEY (id, scheduled_at),
    UNIQUE (job_id, scheduled_at, attempt)
) PARTITION BY RANGE (scheduled_at);
-- Each index is written twice per fire (the claim's insert, the finish's
-- update), so there are few. A user's runs by fire time: the list (newest
-- first, then by id) and the stats routes' last day. A job's come from the
-- unique index.
CREATE INDEX executions_owner_time_idx ON executions (owner_id, scheduled_at, id);
-- Attempts no worker holds yet: retries, manual runs, a dead scheduler's queue.
CREATE INDEX executions_pending_idx ON executions (shard_id, run_at)
    WHERE status = 'scheduled' AND worker_id IS NULL;
CREATE INDEX executions_live_idx ON executions (worker_id)
    WHERE status IN ('scheduled', 'running');
-- A user's live runs (the claim's concurrent-runs quota).
CREATE INDEX executions_owner_live_idx ON executions (owner_id)
    WHERE status IN ('scheduled', 'running');
-- Runs someone asked to stop (the scheduler forwards those on its shards).
CREATE INDEX executions_cancel_idx ON executions (shard_id)
    WHERE cancel_requested AND status IN ('scheduled', 'running');
CREATE TABLE executions_default PARTITION OF executions DEFAULT;

-- Runs whose retries are spent (or that may not be retried): kept until a
-- person replays or discards them.
CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    owner_id uuid NOT NULL,
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    execution_id bigint NOT NULL UNIQUE,
    scheduled_at timestamptz NOT NULL,
    reason text NOT NULL,
    attempts integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_owner_idx ON dead_letters (owner_id, id);

-- The first reply to each Idempotency-Key, per user, kept 24 hours.
CREATE TABLE idempotency_keys (
    owner_id uuid NOT NULL,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    status_code integer NOT NULL,
    reply jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, key)
);

-- Alerts and their deliveries: an outbox written in the transaction that
-- records what happened, sent by the coordinators (coordinator.alert_delivery).
CREATE TABLE alerts (
    id bigserial PRIMARY KEY,
    owner_id uuid NOT NULL,
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    execution_id bigint NOT NULL,
    kind text NOT NULL,
    -- The JSON body every target gets, fixed when the alert is made.
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (execution_id, kind)
);
CREATE INDEX alerts_owner_idx ON alerts (owner_id, id);
CREATE INDEX alerts_job_idx ON alerts (job_id, id);
CREATE INDEX alerts_created_idx ON alerts (created_at);

CREATE TABLE deliveries (
    id bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    target text NOT NULL,
    format text NOT NULL,
    -- pending (tried at next_attempt_at; a sender holds it by moving that
    -- past its request timeout), delivered, failed.
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    last_status_code integer,
    delivered_at timestamptz,
    UNIQUE (alert_id, target)
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';

-- A job's "after": fire job_id when a run of upstream_id ends on_outcome.
-- Derived from jobs.spec, kept for the lookup by upstream.
CREATE TABLE job_upstreams (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    upstream_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    on_outcome text NOT NULL,
    PRIMARY KEY (job_id, upstream_id, on_outcome)
);
CREATE INDEX job_upstreams_upstream_idx ON job_upstreams (upstream_id);

-- Who may claim each shard. The claim joins this table, so a deposed
-- scheduler (or one fenced by a newer coordinator epoch) claims nothing.
CREATE TABLE shard_owners (
    shard_id integer PRIMARY KEY,
    scheduler_id text NOT NULL,
    epoch bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The newest coordinator epoch that wrote shard_owners; older leaders' writes
-- are rejected.
CREATE TABLE cluster_epoch (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch bigint NOT NULL
);

-- Creates the day partition of `parent` that holds `day`, moving any of its
-- rows out of the default partition first (attach refuses otherwise).
CREATE FUNCTION cronfleet_ensure_day_partition(parent text, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := format('%s_%s', parent, to_char(day, 'YYYYMMDD'));
    key text := CASE parent WHEN 'schedule' THEN 'next_run_at' ELSE 'scheduled_at' END;
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', parent);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
    EXECUTE format(
        'WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
        parent || '_default', key, lo, key, hi, part);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
    RETURN true;
END;
$$;

-- Token buckets for login and signup throttling (gateway.service.limits),
-- shared by every gateway. Unlogged: a crash only forgets recent attempts.
CREATE UNLOGGED TABLE throttles (
    key text PRIMARY KEY,
    tokens double precision NOT NULL,
    capacity double precision NOT NULL,
    per_second double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
