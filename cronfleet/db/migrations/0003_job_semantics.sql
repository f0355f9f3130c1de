-- 0003: job semantics: dead letters, idempotency keys, chaining, checkpoints,
-- and when a job was paused (its misfire policy decides what resume runs).
ALTER TABLE jobs ADD COLUMN paused_at timestamptz;
ALTER TABLE executions ADD COLUMN upstream_execution_id bigint;
ALTER TABLE executions ADD COLUMN checkpoint bytea;
ALTER TABLE executions ADD COLUMN checkpoint_truncated boolean NOT NULL DEFAULT false;

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

CREATE TABLE idempotency_keys (
    owner_id uuid NOT NULL,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    status_code integer NOT NULL,
    reply jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, key)
);

CREATE TABLE job_upstreams (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    upstream_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    on_outcome text NOT NULL,
    PRIMARY KEY (job_id, upstream_id, on_outcome)
);
CREATE INDEX job_upstreams_upstream_idx ON job_upstreams (upstream_id);
