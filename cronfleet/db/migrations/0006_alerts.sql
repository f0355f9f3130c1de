-- 0006: alerts (issue 10). A user's signing secret and default notify;
-- alerts and their deliveries, an outbox the coordinators send from.
ALTER TABLE users ADD COLUMN webhook_secret text;
ALTER TABLE users ADD COLUMN default_notify jsonb NOT NULL DEFAULT '[]';

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
