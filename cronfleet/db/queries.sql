-- Every statement cronfleet runs, by name. Named parameters only.
-- Array parameters are sent in binary (%(name)b): psycopg dumps a list as
-- text in Python, 8 us a fire for a claim's batch, against 1 us in binary.

-- ===================================================================== users

-- create_user --
INSERT INTO users (id, name, email, password_hash)
VALUES (%(id)s, %(name)s, %(email)s, %(password_hash)s)
RETURNING id, name, email, created_at, default_notify

-- user_by_email --
SELECT id, name, email, password_hash, created_at FROM users WHERE email = %(email)s

-- update_user --
UPDATE users SET
    name = coalesce(%(name)s, name),
    email = coalesce(%(email)s, email),
    password_hash = coalesce(%(password_hash)s, password_hash),
    default_notify = coalesce(%(notify)s, default_notify),
    updated_at = now()
WHERE id = %(id)s
RETURNING id, name, email, created_at, default_notify

-- create_token --
INSERT INTO api_tokens (token_hash, user_id, expires_at)
VALUES (%(token_hash)s, %(user_id)s, %(expires_at)s)

-- user_by_token --
SELECT u.id, u.name, u.email, u.created_at, u.default_notify
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL AND t.expires_at > now()

-- set_webhook_secret --
UPDATE users SET webhook_secret = %(secret)s, updated_at = now() WHERE id = %(id)s

-- lock_user --
-- Serialises one user's writes that a quota bounds (tokens and jobs only
-- take KEY SHARE locks on the row, which this does not block).
SELECT id FROM users WHERE id = %(id)s FOR NO KEY UPDATE

-- revoke_token --
UPDATE api_tokens SET revoked_at = now()
WHERE token_hash = %(token_hash)s AND revoked_at IS NULL

-- ====================================================================== jobs

-- insert_job --
INSERT INTO jobs (
    id, owner_id, name, spec, schedule, timezone, run_at, start_at, end_at,
    max_retries, timeout_seconds, priority, concurrency_policy, max_concurrency,
    shard_id, status, fires_per_minute)
VALUES (
    %(id)s, %(owner_id)s, %(name)s, %(spec)s, %(schedule)s, %(timezone)s, %(run_at)s,
    %(start_at)s, %(end_at)s, %(max_retries)s, %(timeout_seconds)s, %(priority)s,
    %(concurrency_policy)s, %(max_concurrency)s, %(shard_id)s, %(status)s, %(fires_per_minute)s)
RETURNING *, NULL::timestamptz AS next_run_at

-- update_job --
UPDATE jobs SET
    name = %(name)s, spec = %(spec)s, schedule = %(schedule)s, timezone = %(timezone)s,
    run_at = %(run_at)s, start_at = %(start_at)s, end_at = %(end_at)s,
    max_retries = %(max_retries)s, timeout_seconds = %(timeout_seconds)s,
    priority = %(priority)s, concurrency_policy = %(concurrency_policy)s,
    max_concurrency = %(max_concurrency)s, status = %(status)s,
    fires_per_minute = %(fires_per_minute)s, version = version + 1, updated_at = now()
WHERE id = %(id)s AND owner_id = %(owner_id)s AND status <> 'deleted'
RETURNING *, NULL::timestamptz AS next_run_at

-- set_job_status --
UPDATE jobs SET status = %(status)s, version = version + 1, updated_at = now(),
    paused_at = CASE WHEN %(status)s = 'paused' THEN now() END
WHERE id = %(id)s AND owner_id = %(owner_id)s AND status <> 'deleted'
RETURNING *, NULL::timestamptz AS next_run_at

-- lock_job --
SELECT j.*, (SELECT min(s.next_run_at) FROM schedule s WHERE s.job_id = j.id) AS next_run_at
FROM jobs j
WHERE j.id = %(id)s AND j.owner_id = %(owner_id)s
FOR NO KEY UPDATE OF j

-- get_job --
SELECT j.*, (SELECT min(s.next_run_at) FROM schedule s WHERE s.job_id = j.id) AS next_run_at
FROM jobs j
WHERE j.id = %(id)s AND j.owner_id = %(owner_id)s

-- list_jobs --
SELECT j.*, (SELECT min(s.next_run_at) FROM schedule s WHERE s.job_id = j.id) AS next_run_at
FROM jobs j
WHERE j.owner_id = %(owner_id)s
  AND (%(status)s::text IS NULL AND j.status <> 'deleted' OR j.status = %(status)s::text)
  AND (%(q)s::text IS NULL OR strpos(lower(j.name), lower(%(q)s::text)) > 0)
  AND (%(last_in)b::text[] IS NULL OR (
        SELECT e.status FROM executions e
        WHERE e.job_id = j.id AND e.status IN ('succeeded', 'failed', 'timed_out', 'lost')
        ORDER BY e.scheduled_at DESC, e.attempt DESC LIMIT 1) = ANY(%(last_in)b::text[]))
  AND (%(after_created)s::timestamptz IS NULL
       OR (j.created_at, j.id) > (%(after_created)s::timestamptz, %(after_id)s::uuid))
ORDER BY j.created_at, j.id
LIMIT %(limit)s

-- recent_runs_of_jobs --
-- The latest runs of each listed job, newest first (the unique index on
-- (job_id, scheduled_at, attempt)).
SELECT r.job_id, r.id, r.status, r.scheduled_at, r.finished_at, r.exit_code
FROM unnest(%(job_ids)b::uuid[]) AS j(id)
CROSS JOIN LATERAL (
    SELECT e.job_id, e.id, e.status, e.scheduled_at, e.finished_at, e.exit_code
    FROM executions e WHERE e.job_id = j.id
    ORDER BY e.scheduled_at DESC, e.attempt DESC, e.id DESC LIMIT %(per_job)s
) r

-- insert_schedule --
INSERT INTO schedule (job_id, shard_id, next_run_at)
VALUES (%(job_id)s, %(shard_id)s, %(next_run_at)s)

-- delete_schedule --
DELETE FROM schedule WHERE job_id = %(job_id)s

-- job_upstreams_of_owner --
-- Every "after" edge among one user's jobs (for the cycle check).
SELECT l.job_id, l.upstream_id FROM job_upstreams l JOIN jobs j ON j.id = l.job_id
WHERE j.owner_id = %(owner_id)s AND j.status <> 'deleted'

-- jobs_of_owner --
SELECT id, name, status FROM jobs WHERE owner_id = %(owner_id)s AND id = ANY(%(ids)b::uuid[])

-- unlink_upstreams --
DELETE FROM job_upstreams WHERE job_id = %(job_id)s

-- link_upstreams --
INSERT INTO job_upstreams (job_id, upstream_id, on_outcome)
SELECT %(job_id)s, u.upstream_id, u.on_outcome
FROM unnest(%(upstream_ids)b::uuid[], %(outcomes)b::text[]) AS u(upstream_id, on_outcome)
ON CONFLICT DO NOTHING

-- fire_downstream --
-- Runs of the jobs whose "after" names an upstream run that just ended that
-- way (or "always"). Each inherits the upstream fire's time, so an upstream
-- run fires each downstream job once.
INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, attempt, run_at, status,
                        trigger, priority, upstream_execution_id)
SELECT j.id, j.owner_id, j.shard_id, u.scheduled_at, 1, now(), 'scheduled', 'upstream', j.priority,
       u.execution_id
FROM unnest(%(execution_ids)b::bigint[], %(upstream_ids)b::uuid[], %(scheduled)b::timestamptz[],
            %(outcomes)b::text[]) AS u(execution_id, upstream_id, scheduled_at, outcome)
JOIN job_upstreams l ON l.upstream_id = u.upstream_id AND l.on_outcome IN (u.outcome, 'always')
JOIN jobs j ON j.id = l.job_id AND j.status = 'active'
ON CONFLICT (job_id, scheduled_at, attempt) DO NOTHING
RETURNING id, shard_id

-- notify_due --
SELECT pg_notify('cronfleet_due', %(shard_id)s::text)

-- owner_usage --
-- What a user's quotas count: live jobs (active or paused), and the planned
-- fires per minute of the active ones, leaving out ``except_ids`` (a job
-- being changed).
SELECT count(*) AS live_jobs,
       coalesce(sum(coalesce(fires_per_minute, 1)) FILTER (WHERE status = 'active'), 0)
           AS fires_per_minute
FROM jobs
WHERE owner_id = %(owner_id)s AND status IN ('active', 'paused')
  AND id <> ALL(%(except_ids)b::uuid[])

-- owner_recent_runs --
-- The times of a user's runs due from ``since`` to ``until`` (executions),
-- and of the one-off fires not yet claimed up to ``until``, oldest first,
-- skipping the ``skip`` oldest: the runs-per-minute quota counts them.
WITH runs AS (
    SELECT scheduled_at AS at FROM executions
    WHERE owner_id = %(owner_id)s AND scheduled_at > %(since)s AND scheduled_at <= %(until)s
    UNION ALL
    SELECT s.next_run_at FROM schedule s JOIN jobs j ON j.id = s.job_id
    WHERE j.owner_id = %(owner_id)s AND j.schedule IS NULL AND s.next_run_at <= %(until)s
)
SELECT (SELECT count(*) FROM runs) AS n,
       (SELECT at FROM runs ORDER BY at OFFSET %(skip)s LIMIT 1) AS at

-- ================================================================ executions

-- insert_triggered_executions --
-- Runs outside the schedule (manual, replay, backfill, upstream), each the
-- first attempt of its fire. A fire that already has one is not run twice.
INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, attempt, run_at, status,
                        trigger, priority, upstream_execution_id)
SELECT j.id, j.owner_id, j.shard_id, t.scheduled_at, 1, %(run_at)s, 'scheduled', %(trigger)s,
       j.priority, t.upstream_id
FROM unnest(%(job_ids)b::uuid[], %(scheduled)b::timestamptz[], %(upstream_ids)b::bigint[])
    AS t(job_id, scheduled_at, upstream_id)
JOIN jobs j ON j.id = t.job_id
ON CONFLICT (job_id, scheduled_at, attempt) DO NOTHING
RETURNING *

-- get_execution --
SELECT * FROM executions WHERE id = %(id)s AND owner_id = %(owner_id)s

-- list_executions --
-- A user's runs (or one job's), newest fire first, then by id (so a fire's
-- retries above its first attempt); a page goes on below (before_at,
-- before_id). executions_owner_time_idx / the unique index find them in order.
SELECT * FROM executions
WHERE owner_id = %(owner_id)s
  AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s::uuid)
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(worker_id)s::text IS NULL OR worker_id = %(worker_id)s::text)
  AND (%(before_at)s::timestamptz IS NULL
       OR (scheduled_at, id) < (%(before_at)s::timestamptz, %(before_id)s::bigint))
ORDER BY scheduled_at DESC, id DESC
LIMIT %(limit)s

-- cancel_execution --
-- Not yet on a worker: cancelled here. On a worker: flagged, and the
-- shard's scheduler tells the worker to stop it.
UPDATE executions SET
    cancel_requested = true,
    withdrawn = false,
    status = CASE WHEN worker_id IS NULL THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN worker_id IS NULL THEN now() ELSE finished_at END
WHERE id = %(id)s AND owner_id = %(owner_id)s AND status IN ('scheduled', 'running')
RETURNING *

-- withdraw_job_runs --
-- A paused, edited or deleted job's runs that have not started never will:
-- cancelled here, or (on a worker) flagged for its scheduler to withdraw (a
-- run that started meanwhile goes on). Running ones are stopped too when
-- asked (delete with cancel_running).
UPDATE executions SET
    cancel_requested = true,
    withdrawn = NOT %(running)s,
    status = CASE WHEN worker_id IS NULL THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN worker_id IS NULL THEN now() ELSE finished_at END,
    error = CASE WHEN worker_id IS NULL THEN %(why)s ELSE error END
WHERE job_id = %(job_id)s
  AND (status = 'scheduled' OR (status = 'running' AND %(running)s))
RETURNING id, shard_id, worker_id, status

-- count_still_scheduled --
SELECT count(*) AS n FROM executions WHERE id = ANY(%(ids)b::bigint[]) AND status = 'scheduled'

-- ========================================================== idempotency keys

-- claim_idempotency_key --
-- Ours if new (or the old one expired); nothing back if a live one exists. A
-- concurrent request with the same key waits here for the first to commit.
INSERT INTO idempotency_keys (owner_id, key, request_hash, status_code, reply)
VALUES (%(owner_id)s, %(key)s, %(request_hash)s, 0, 'null')
ON CONFLICT (owner_id, key) DO UPDATE SET
    request_hash = excluded.request_hash, status_code = 0, reply = 'null', created_at = now()
WHERE idempotency_keys.created_at < now() - make_interval(secs => %(ttl)s)
RETURNING key

-- get_idempotency_key --
SELECT request_hash, status_code, reply FROM idempotency_keys
WHERE owner_id = %(owner_id)s AND key = %(key)s

-- save_idempotent_reply --
UPDATE idempotency_keys SET status_code = %(status_code)s, reply = %(reply)s
WHERE owner_id = %(owner_id)s AND key = %(key)s

-- prune_idempotency_keys --
DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => %(ttl)s)

-- ===================================================================== stats

-- stats_work_mem --
SET LOCAL work_mem = '64MB'

-- stats --
-- One user's figures, or one job's (job_id set), over executions by the time
-- they were due, in the last day: one pass over them (counts per status and
-- window as FILTERed counts, the two percentile sorts), plus the last hour's
-- starts per minute. executions_owner_time_idx / the unique (job_id, scheduled_at, attempt) index
-- find the rows; run with a larger work_mem (gateway.service.stats).
SELECT
    (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb) FROM (
        SELECT status, count(*) AS n FROM jobs
        WHERE owner_id = %(owner_id)s AND %(job_id)s::uuid IS NULL AND status <> 'deleted'
        GROUP BY status) s) AS jobs,
    count(*) FILTER (WHERE e.status = 'scheduled' AND e.scheduled_at > %(now)s - interval '1 hour') AS hour_scheduled,
    count(*) FILTER (WHERE e.status = 'running' AND e.scheduled_at > %(now)s - interval '1 hour') AS hour_running,
    count(*) FILTER (WHERE e.status = 'succeeded' AND e.scheduled_at > %(now)s - interval '1 hour') AS hour_succeeded,
    count(*) FILTER (WHERE e.status = 'failed' AND e.scheduled_at > %(now)s - interval '1 hour') AS hour_failed,
    count(*) FILTER (WHERE e.status = 'timed_out' AND e.scheduled_at > %(now)s - interval '1 hour') AS hour_timed_out,
    count(*) FILTER (WHERE e.status = 'cancelled' AND e.scheduled_at > %(now)s - interval '1 hour') AS hour_cancelled,
    count(*) FILTER (WHERE e.status = 'lost' AND e.scheduled_at > %(now)s - interval '1 hour') AS hour_lost,
    count(*) FILTER (WHERE e.status = 'skipped' AND e.scheduled_at > %(now)s - interval '1 hour') AS hour_skipped,
    count(*) FILTER (WHERE e.status = 'scheduled') AS day_scheduled,
    count(*) FILTER (WHERE e.status = 'running') AS day_running,
    count(*) FILTER (WHERE e.status = 'succeeded') AS day_succeeded,
    count(*) FILTER (WHERE e.status = 'failed') AS day_failed,
    count(*) FILTER (WHERE e.status = 'timed_out') AS day_timed_out,
    count(*) FILTER (WHERE e.status = 'cancelled') AS day_cancelled,
    count(*) FILTER (WHERE e.status = 'lost') AS day_lost,
    count(*) FILTER (WHERE e.status = 'skipped') AS day_skipped,
    percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY e.lateness_ms) AS lateness,
    max(e.lateness_ms) AS lateness_max,
    percentile_cont(ARRAY[0.5, 0.95, 0.99])
        WITHIN GROUP (ORDER BY extract(epoch FROM e.finished_at - e.started_at) * 1000) AS duration,
    max(extract(epoch FROM e.finished_at - e.started_at) * 1000)::float8 AS duration_max,
    (SELECT coalesce(jsonb_object_agg(m, n), '{}'::jsonb) FROM (
        SELECT extract(epoch FROM date_trunc('minute', started_at))::bigint AS m, count(*) AS n
        FROM executions
        WHERE owner_id = %(owner_id)s
          AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s::uuid)
          AND scheduled_at > %(now)s - interval '1 day' AND scheduled_at <= %(now)s
          AND started_at > %(now)s - interval '1 hour'
        GROUP BY 1) s) AS per_minute,
    (SELECT coalesce(jsonb_agg(status ORDER BY scheduled_at DESC), '[]'::jsonb) FROM (
        SELECT status, scheduled_at FROM executions
        WHERE owner_id = %(owner_id)s
          AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s::uuid)
          AND scheduled_at <= %(now)s
        ORDER BY scheduled_at DESC LIMIT 20) l) AS last
FROM executions e
WHERE e.owner_id = %(owner_id)s
  AND (%(job_id)s::uuid IS NULL OR e.job_id = %(job_id)s::uuid)
  AND e.scheduled_at > %(now)s - interval '1 day' AND e.scheduled_at <= %(now)s

-- ============================================================== dead letters

-- list_dead_letters --
SELECT d.*, j.name AS job_name FROM dead_letters d JOIN jobs j ON j.id = d.job_id
WHERE d.owner_id = %(owner_id)s
  AND (%(job_id)s::uuid IS NULL OR d.job_id = %(job_id)s::uuid)
  AND (%(before_id)s::bigint IS NULL OR d.id < %(before_id)s::bigint)
ORDER BY d.id DESC
LIMIT %(limit)s

-- take_dead_letter --
DELETE FROM dead_letters WHERE id = %(id)s AND owner_id = %(owner_id)s
RETURNING *

-- notify_cancel --
SELECT pg_notify('cronfleet_cancel', %(shard_id)s::text)

-- ==================================================================== alerts

-- insert_alerts --
-- One alert per (execution, kind) for the jobs whose notify (or, when they set
-- none, their owner's default notify) asks for that kind, and one delivery
-- per such target. The body is fixed here, so every attempt sends the same
-- bytes. ON CONFLICT: an event alerts once, however often it is recorded.
WITH ev AS (
    SELECT * FROM unnest(%(execution_ids)b::bigint[], %(kinds)b::text[], %(details)b::text[])
        AS ev(execution_id, kind, detail)
), wanted AS (
    SELECT ev.kind, ev.detail, e.id AS execution_id, e.job_id, j.owner_id, j.name AS job_name,
           e.attempt, e.status, e.trigger, e.scheduled_at, e.started_at, e.finished_at,
           e.exit_code, e.error, e.lateness_ms, e.worker_id, t.targets
    FROM ev
    JOIN executions e ON e.id = ev.execution_id
    JOIN jobs j ON j.id = e.job_id AND j.status <> 'deleted'
    JOIN users u ON u.id = j.owner_id
    CROSS JOIN LATERAL (
        SELECT jsonb_agg(x) AS targets
        FROM jsonb_array_elements(coalesce(nullif(j.spec->'notify', '[]'::jsonb), u.default_notify)) x
        WHERE x->'on' ? ev.kind
    ) t
    WHERE t.targets IS NOT NULL
), made AS (
    INSERT INTO alerts (owner_id, job_id, execution_id, kind, payload)
    SELECT w.owner_id, w.job_id, w.execution_id, w.kind, jsonb_strip_nulls(jsonb_build_object(
        'kind', w.kind, 'detail', w.detail,
        'job_id', w.job_id, 'job_name', w.job_name,
        'execution_id', w.execution_id::text, 'attempt', w.attempt, 'status', w.status,
        'trigger', w.trigger, 'exit_code', w.exit_code, 'error', w.error,
        'lateness_ms', w.lateness_ms, 'worker_id', w.worker_id,
        'scheduled_at', to_char(w.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'started_at', to_char(w.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'finished_at', to_char(w.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))
    FROM wanted w
    ON CONFLICT (execution_id, kind) DO NOTHING
    RETURNING id, execution_id, kind
)
INSERT INTO deliveries (alert_id, target, format)
SELECT m.id, x->>'webhook', coalesce(x->>'format', 'json')
FROM made m
JOIN wanted w ON w.execution_id = m.execution_id AND w.kind = m.kind
CROSS JOIN LATERAL jsonb_array_elements(w.targets) x
ON CONFLICT (alert_id, target) DO NOTHING
RETURNING alert_id

-- recoveries --
-- Of these succeeded runs (by id and fire: one partition each), those whose
-- job's previous ended run (by fire time and attempt) failed or timed out,
-- where someone wants to hear it. Who wants to is asked first: it is one
-- job row each, while the previous run is a search of every day partition,
-- and few runs of a batch have anyone to tell (19 of its 20 us per fire).
-- Workers' reports come here already asked (record_finished's tells_recovery,
-- the same question): only the runs someone hears of.
WITH told AS MATERIALIZED (
    SELECT r.id, r.scheduled_at
    FROM unnest(%(ids)b::bigint[], %(scheduled)b::timestamptz[], %(job_ids)b::uuid[])
        AS r(id, scheduled_at, job_id)
    WHERE (SELECT coalesce(nullif(j.spec->'notify', '[]'::jsonb), u.default_notify)
                  @? '$[*].on[*] ? (@ == "recovered")'
           FROM jobs j JOIN users u ON u.id = j.owner_id WHERE j.id = r.job_id)
)
SELECT e.id
FROM told t
JOIN executions e ON e.id = t.id AND e.scheduled_at = t.scheduled_at
CROSS JOIN LATERAL (
    SELECT p.status FROM executions p
    WHERE p.job_id = e.job_id AND p.status IN ('succeeded', 'failed', 'timed_out')
      AND (p.scheduled_at, p.attempt) < (e.scheduled_at, e.attempt)
    ORDER BY p.scheduled_at DESC, p.attempt DESC
    LIMIT 1
) prev
WHERE prev.status IN ('failed', 'timed_out')

-- list_alerts --
-- A user's alerts (or one job's), newest first, each with its deliveries.
SELECT a.*, coalesce((
    SELECT jsonb_agg(jsonb_build_object(
        'target', d.target, 'format', d.format, 'status', d.status, 'attempts', d.attempts,
        'next_attempt_at', d.next_attempt_at, 'last_error', d.last_error,
        'last_status_code', d.last_status_code, 'delivered_at', d.delivered_at) ORDER BY d.id)
    FROM deliveries d WHERE d.alert_id = a.id), '[]'::jsonb) AS deliveries
FROM alerts a
WHERE a.owner_id = %(owner_id)s
  AND (%(job_id)s::uuid IS NULL OR a.job_id = %(job_id)s::uuid)
  AND (%(before_id)s::bigint IS NULL OR a.id < %(before_id)s::bigint)
ORDER BY a.id DESC
LIMIT %(limit)s

-- take_deliveries --
-- Due deliveries, held by this sender: next_attempt_at moves past the time a
-- try may take, so a sender that dies mid-request leaves them to another
-- after that (the receiver tells a second copy by the alert id).
UPDATE deliveries d SET attempts = d.attempts + 1,
    next_attempt_at = now() + make_interval(secs => %(hold_seconds)s)
FROM (
    SELECT id FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) due, alerts a, users u
WHERE d.id = due.id AND a.id = d.alert_id AND u.id = a.owner_id
RETURNING d.id, d.target, d.format, d.attempts, a.id AS alert_id, a.kind, a.payload,
          a.created_at, u.webhook_secret

-- delivery_done --
-- How a try went: delivered, failed for good, or pending again in retry_in
-- seconds (by the database's clock, as the hold is). Only the sender of the
-- latest try may say (a try that outlived its hold lost it to another).
UPDATE deliveries SET status = %(status)s, last_error = %(error)s,
    last_status_code = %(status_code)s,
    delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END,
    next_attempt_at = CASE WHEN %(retry_in)s::float8 IS NULL THEN next_attempt_at
                           ELSE now() + make_interval(secs => %(retry_in)s::float8) END
WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempts)s

-- give_back_deliveries --
-- Taken but not tried (their receiver has as many tries in flight as it may):
-- due again shortly, the take not counted.
UPDATE deliveries SET attempts = attempts - 1,
    next_attempt_at = now() + make_interval(secs => %(after_seconds)s)
WHERE id = ANY(%(ids)b::bigint[]) AND status = 'pending'

-- pending_deliveries --
SELECT count(*) AS n FROM deliveries WHERE status = 'pending'

-- prune_alerts --
DELETE FROM alerts a
WHERE a.created_at < now() - make_interval(secs => %(ttl)s)
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.status = 'pending')

-- ================================================================= scheduler

-- select_due_fires --
-- Locks due schedule rows of the shards this scheduler owns at this epoch.
-- A job the API is changing right now (its row locked) is skipped until the
-- next claim (SKIP LOCKED on both: the claim never waits for such a lock).
-- The fence: the shard_owners rows of the shards the batch took are locked
-- FOR SHARE (in shard order, as the leader writes them), so a concurrent
-- reassignment of them waits for this transaction, and a row of a shard
-- that moved meanwhile is dropped (its owner row, read again under the
-- lock, names another scheduler or epoch; the batch comes back that much
-- short, its rows locked until the claim ends). Only those shards: locking
-- every owned one wrote a WAL record per shard per claim (128 a claim with
-- two schedulers: most of an idle cluster's WAL, 14 kB a second). While it
-- waits for the leader, the claim holds its batch's schedule and job rows
-- (an API write to them waits too); the leader waits on nothing of theirs.
-- The batch is picked from the schedule's keys
-- alone, before any job row is read: joining first read the whole backlog's
-- jobs on every claim (50,000 due on a scheduler: 530 ms a claim, now 25).
-- The spec comes as its text (spec_text), not as a document: the scheduler
-- keys its prepared jobs on it and parses it only for content it has not
-- seen (parsing it on every row was a twentieth of a scheduler's time).
-- The columns: what the claim reads, and rows.JOB_COLUMNS for a new content.
-- Each job row is read and locked by its key, in a lateral subquery (a
-- subquery that locks is never flattened into a join, so it stays a probe
-- of jobs_pkey per due row): joined, the planner hashed the whole jobs
-- table on each claim once statistics showed a backlog (30,000 due and
-- analyzed: 40 ms a claim of 2,000, against 22 by key).
WITH owned AS MATERIALIZED (
    SELECT shard_id FROM shard_owners
    WHERE scheduler_id = %(scheduler_id)s AND epoch = %(epoch)s
), due AS MATERIALIZED (
    SELECT s.job_id, s.next_run_at, s.shard_id FROM schedule s
    WHERE s.next_run_at <= %(horizon)s AND s.shard_id = ANY(ARRAY(SELECT shard_id FROM owned))
    ORDER BY s.next_run_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), held AS MATERIALIZED (
    SELECT o.shard_id FROM shard_owners o
    WHERE o.scheduler_id = %(scheduler_id)s AND o.epoch = %(epoch)s
      AND o.shard_id IN (SELECT shard_id FROM due)
    ORDER BY o.shard_id
    FOR SHARE OF o
)
SELECT d.next_run_at, j.*
FROM (SELECT * FROM due WHERE shard_id IN (SELECT shard_id FROM held)) d
CROSS JOIN LATERAL (
    SELECT j.id, j.owner_id, j.name, j.spec::text AS spec_text, j.schedule, j.timezone,
           j.run_at, j.start_at, j.end_at, j.max_retries, j.timeout_seconds, j.priority,
           j.concurrency_policy, j.max_concurrency, j.shard_id, j.version, j.created_at
    FROM jobs j WHERE j.id = d.job_id
    FOR NO KEY UPDATE SKIP LOCKED
) j
ORDER BY d.next_run_at

-- record_fires --
-- One statement per batch: advance (or retire) each schedule row and insert
-- one execution per fire; ON CONFLICT keeps a fire from ever doubling.
-- A fire that is not to run (a misfire skipped by the job's policy) is
-- still recorded, as skipped with the reason: every due fire leaves a row.
-- A fire to run with a worker chosen ('' for none) is recorded assigned to
-- it: fenced as mark_assigned is (select_due_fires holds the shard of each
-- fire it returned, at this scheduler's epoch), one execution write less
-- than assigning after.
-- The job's columns it needs (owner, shard, priority, concurrency limit)
-- come with each fire from select_due_fires, whose lock on the job row holds
-- them: joined to jobs here, the planner hashed the whole table on every
-- claim below some 150k jobs (100k jobs: 25 us a fire, against 10 probing
-- the key and none this way).
-- All but job_ids, scheduled, owners and shards may be NULL arrays
-- (rows.sparse: every fire's value is the default), padded with NULLs and
-- read as the default (5 and 2147483647: scheduler.claim's DEFAULT_PRIORITY
-- and UNLIMITED).
WITH fired AS (
    SELECT f.job_id, f.scheduled_at, f.next_run_at, coalesce(f.run, true) AS run,
           coalesce(f.trigger, 'schedule') AS trigger, f.note, coalesce(f.worker, '') AS worker,
           f.owner_id, f.shard_id, coalesce(f.priority, 5) AS priority,
           coalesce(f.max_live, 2147483647) AS max_live
    FROM unnest(%(job_ids)b::uuid[], %(scheduled)b::timestamptz[],
                %(next)b::timestamptz[], %(runs)b::bool[], %(triggers)b::text[],
                %(notes)b::text[], %(workers)b::text[], %(owners)b::uuid[], %(shards)b::int[],
                %(priorities)b::int[], %(max_live)b::int[])
        AS f(job_id, scheduled_at, next_run_at, run, trigger, note, worker, owner_id, shard_id,
             priority, max_live)
), advanced AS (
    -- The keys also as lists: a plan made for the values keeps only the
    -- partitions of the batch's fire times (and reads them by key once they
    -- are large); the generic plan psycopg's prepared statement may settle
    -- on reads each partition by its primary key. Without them it hashed
    -- every partition whole (100k recurring jobs, 2,000 fires: 94-104 ->
    -- 71-76 ms a claim statement; the advance itself 33 -> 9 ms, 3 generic).
    -- retired keeps its join alone: planned for a few rows, it probes the
    -- primary key of the one partition each fire prunes to.
    UPDATE schedule s SET next_run_at = f.next_run_at
    FROM fired f
    WHERE s.job_id = f.job_id AND s.next_run_at = f.scheduled_at AND f.next_run_at IS NOT NULL
      AND s.job_id = ANY(%(job_ids)b::uuid[]) AND s.next_run_at = ANY(%(scheduled)b::timestamptz[])
), retired AS (
    DELETE FROM schedule s USING fired f
    WHERE s.job_id = f.job_id AND s.next_run_at = f.scheduled_at AND f.next_run_at IS NULL
    RETURNING s.job_id
), completed AS (
    UPDATE jobs SET status = 'completed', updated_at = now()
    WHERE id IN (SELECT job_id FROM retired) AND status = 'active'
)
INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, attempt, run_at, status,
                        trigger, priority, scheduler_id, finished_at, error, worker_id, assigned_at)
SELECT c.job_id, c.owner_id, c.shard_id, c.scheduled_at, 1, c.scheduled_at,
       CASE WHEN c.why IS NULL THEN 'scheduled' ELSE 'skipped' END,
       c.trigger, c.priority, %(scheduler_id)s,
       CASE WHEN c.why IS NOT NULL THEN now() END,
       c.why,
       CASE WHEN c.why IS NULL THEN nullif(c.worker, '') END,
       CASE WHEN c.why IS NULL AND c.worker <> '' THEN now() END
FROM (
    SELECT f.job_id, f.owner_id, f.shard_id, f.scheduled_at, f.trigger, f.priority, f.worker,
           CASE WHEN NOT f.run THEN f.note
                WHEN live.n >= f.max_live THEN 'concurrency limit reached (' || f.max_live || ' running)'
                -- The owner's quota of concurrent runs: what runs now, plus
                -- this batch's earlier fires of theirs (CRONFLEET_QUOTA_CONCURRENT_RUNS).
                WHEN owned.n + count(*) FILTER (WHERE f.run) OVER (
                         PARTITION BY f.owner_id ORDER BY f.scheduled_at, f.job_id) > %(user_quota)s
                     THEN 'quota reached: ' || %(user_quota)s || ' concurrent runs per user' END AS why
    FROM fired f
    CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM executions e
        WHERE e.job_id = f.job_id AND e.status IN ('scheduled', 'running')
          AND f.max_live < 2147483647
    ) live
    CROSS JOIN LATERAL (
        SELECT count(*) AS n FROM executions e
        WHERE e.owner_id = f.owner_id AND e.status IN ('scheduled', 'running')
          AND %(user_quota)s < 2147483647
    ) owned
) c
ON CONFLICT (job_id, scheduled_at, attempt) DO NOTHING
RETURNING id, job_id, shard_id, scheduled_at, attempt, run_at, status, priority, worker_id

-- replace_running --
-- concurrency_policy "replace": a new fire stops the job's older live runs.
UPDATE executions e SET
    cancel_requested = true,
    status = CASE WHEN e.worker_id IS NULL THEN 'cancelled' ELSE e.status END,
    finished_at = CASE WHEN e.worker_id IS NULL THEN now() ELSE e.finished_at END,
    error = 'replaced by a newer run'
FROM unnest(%(job_ids)b::uuid[], %(scheduled)b::timestamptz[]) AS n(job_id, scheduled_at)
WHERE e.job_id = n.job_id AND e.scheduled_at < n.scheduled_at
  AND e.status IN ('scheduled', 'running')
RETURNING e.id, e.shard_id

-- upcoming_by_profile --
-- Jobs of this scheduler's shards due within the horizon, by what their
-- containers need (the warm pool's forecast). HTTP jobs need none; per_job
-- jobs run in their own long-lived containers, not the pool's.
SELECT coalesce(j.spec->>'image', '') AS image,
       coalesce((j.spec->'resources'->>'cpus')::float8, 0) AS cpus,
       coalesce((j.spec->'resources'->>'memory_mb')::int, 0) AS memory_mb,
       coalesce((j.spec->'resources'->>'pids')::int, 0) AS pids,
       count(*) AS n
FROM shard_owners o
JOIN schedule s ON s.shard_id = o.shard_id
JOIN jobs j ON j.id = s.job_id
WHERE o.scheduler_id = %(scheduler_id)s AND o.epoch = %(epoch)s
  AND s.next_run_at <= %(horizon)s AND j.spec->'http' IS NULL
  AND coalesce(j.spec->>'container', 'per_run') <> 'per_job'
GROUP BY 1, 2, 3, 4

-- next_due --
-- When an idle scheduler next has something to claim before %(until)s
-- (NULL: nothing): the soonest fire on its shards, or the soonest attempt
-- no worker holds (one waiting for room is due now). The reads of an empty
-- claim (select_due_fires, select_pending), bounded the same way, without
-- their locks: a probe a shard each per partition up to %(until)s.
WITH owned AS MATERIALIZED (
    SELECT shard_id FROM shard_owners WHERE scheduler_id = %(scheduler_id)s AND epoch = %(epoch)s
)
SELECT least(
    (SELECT s.next_run_at FROM schedule s
     WHERE s.next_run_at < %(until)s AND s.shard_id = ANY(ARRAY(SELECT shard_id FROM owned))
     ORDER BY s.next_run_at LIMIT 1),
    (SELECT min(e.run_at) FROM executions e
     WHERE e.shard_id = ANY(ARRAY(SELECT shard_id FROM owned))
       AND e.status = 'scheduled' AND e.worker_id IS NULL AND e.run_at < %(until)s)
) AS at

-- select_pending --
-- Attempts that no worker holds and this scheduler has not queued: retries,
-- manual runs, backfills, and what a dead scheduler had claimed. A job with
-- a concurrency limit gets only as many as it has room for, counting its
-- runs on workers and those already queued here (oldest first).
WITH pending AS (
    SELECT e.id, e.job_id, e.shard_id, e.scheduled_at, e.attempt, e.run_at, e.status, e.priority,
           e.checkpoint, row_number() OVER (PARTITION BY e.job_id ORDER BY e.run_at, e.id) AS nth
    FROM shard_owners o
    JOIN executions e ON e.shard_id = o.shard_id
    WHERE o.scheduler_id = %(scheduler_id)s AND o.epoch = %(epoch)s
      AND e.status = 'scheduled' AND e.worker_id IS NULL AND e.run_at <= %(horizon)s
      AND NOT (e.id = ANY(%(queued)b::bigint[]))
)
SELECT p.*
FROM pending p
JOIN jobs j ON j.id = p.job_id
WHERE j.concurrency_policy = 'replace'
   OR (j.concurrency_policy = 'allow' AND j.max_concurrency IS NULL)
   OR p.nth + (SELECT count(*) FROM executions r
               WHERE r.job_id = p.job_id AND r.status IN ('scheduled', 'running')
                 AND (r.worker_id IS NOT NULL OR r.id = ANY(%(queued)b::bigint[])))
      <= CASE WHEN j.concurrency_policy = 'forbid' THEN 1 ELSE j.max_concurrency END
ORDER BY p.run_at
LIMIT %(batch)s

-- jobs_by_id --
SELECT * FROM jobs WHERE id = ANY(%(ids)b::uuid[])

-- shards_owned_at --
-- Which shards Postgres says this scheduler owns at this epoch (the fence).
SELECT shard_id FROM shard_owners WHERE scheduler_id = %(scheduler_id)s AND epoch = %(epoch)s

-- mark_assigned --
-- Fenced: only attempts of shards this scheduler still owns at this epoch.
UPDATE executions e SET worker_id = a.worker_id, assigned_at = now(),
                        scheduler_id = %(scheduler_id)s
FROM unnest(%(ids)b::bigint[], %(scheduled)b::timestamptz[], %(workers)b::text[])
    AS a(id, scheduled_at, worker_id)
WHERE e.id = a.id AND e.scheduled_at = a.scheduled_at
  AND e.status = 'scheduled' AND e.worker_id IS NULL
  AND EXISTS (SELECT 1 FROM shard_owners o
              WHERE o.shard_id = e.shard_id AND o.scheduler_id = %(scheduler_id)s
                AND o.epoch = %(epoch)s)
RETURNING e.id

-- execution_fires --
-- The fires of executions named by id alone (events of workers that do not
-- report them): every partition is searched.
SELECT id, scheduled_at FROM executions WHERE id = ANY(%(ids)b::bigint[])

-- record_started --
-- The events' writes name each row by id and fire (scheduled_at, the
-- partition key): by id alone, each would search every partition's index.
UPDATE executions e SET status = 'running', started_at = v.at, lateness_ms = v.lateness_ms,
                        worker_id = v.worker_id, container_id = nullif(v.container_id, '')
FROM unnest(%(ids)b::bigint[], %(scheduled)b::timestamptz[], %(ats)b::timestamptz[],
            %(lateness)b::float8[], %(workers)b::text[], %(containers)b::text[])
    AS v(id, scheduled_at, at, lateness_ms, worker_id, container_id)
WHERE e.id = v.id AND e.scheduled_at = v.scheduled_at AND e.status = 'scheduled'

-- record_finished --
UPDATE executions e SET
    status = v.status, finished_at = v.at, exit_code = v.exit_code,
    error = nullif(v.error, ''), log_url = nullif(v.log_url, ''),
    log_bytes = CASE WHEN coalesce(v.log_url, '') = '' THEN NULL ELSE coalesce(v.log_bytes, 0) END,
    worker_id = v.worker_id,
    started_at = coalesce(e.started_at, v.started_at),
    lateness_ms = coalesce(e.lateness_ms, v.lateness_ms),
    steps = v.steps, cold_start = coalesce(v.cold_start, false),
    checkpoint = coalesce(v.checkpoint, e.checkpoint),
    container_id = coalesce(nullif(v.container_id, ''), e.container_id),
    checkpoint_truncated = CASE WHEN v.checkpoint IS NULL THEN e.checkpoint_truncated
                                ELSE coalesce(v.checkpoint_truncated, false) END
-- Arrays other than ids, scheduled, statuses, ats and workers may be NULL
-- (rows.sparse: every run's value is the default), padded with NULLs.
FROM unnest(%(ids)b::bigint[], %(scheduled)b::timestamptz[], %(statuses)b::text[],
            %(ats)b::timestamptz[], %(exit_codes)b::int[], %(errors)b::text[], %(log_urls)b::text[],
            %(workers)b::text[], %(started)b::timestamptz[], %(lateness)b::float8[],
            %(steps)b::jsonb[], %(cold)b::bool[], %(checkpoints)b::bytea[],
            %(truncated)b::bool[], %(containers)b::text[], %(log_bytes)b::bigint[])
    AS v(id, scheduled_at, status, at, exit_code, error, log_url, worker_id, started_at, lateness_ms,
         steps, cold_start, checkpoint, checkpoint_truncated, container_id, log_bytes)
WHERE e.id = v.id AND e.scheduled_at = v.scheduled_at AND e.status IN ('scheduled', 'running')
-- What settling a success needs; the whole row of the others is read after
-- (executions_by_fire): most runs succeed, and every column of each cost
-- the scheduler more than the rest of this write. Whether a job runs after
-- it, and whether anyone hears of its job's recovery (as recoveries asks),
-- are asked here, row by row: fire_downstream and recoveries then get only
-- the few runs that need them, not two more arrays of every run.
RETURNING e.id, e.job_id, e.scheduled_at, e.status,
    EXISTS (SELECT 1 FROM job_upstreams l WHERE l.upstream_id = e.job_id) AS has_downstream,
    e.status = 'succeeded' AND (
        SELECT coalesce(nullif(j.spec->'notify', '[]'::jsonb), u.default_notify)
               @? '$[*].on[*] ? (@ == "recovered")'
        FROM jobs j JOIN users u ON u.id = j.owner_id WHERE j.id = e.job_id) AS tells_recovery

-- executions_by_fire --
SELECT e.* FROM unnest(%(ids)b::bigint[], %(scheduled)b::timestamptz[]) AS r(id, scheduled_at)
JOIN executions e ON e.id = r.id AND e.scheduled_at = r.scheduled_at

-- return_unstarted --
-- Runs a stopping worker hands back, never started: no worker holds them
-- now, so their shard's scheduler assigns them again (select_pending), as
-- the same attempt, and is woken for it. One whose cancel or withdrawal was
-- on its way to the worker is cancelled here instead. Only an assignment
-- made before the worker said so is undone: a word resent late must not
-- take the run back from the same worker id restarted and given it again.
WITH returned AS (
    UPDATE executions e SET
        worker_id = CASE WHEN e.cancel_requested THEN e.worker_id END,
        assigned_at = CASE WHEN e.cancel_requested THEN e.assigned_at END,
        scheduler_id = CASE WHEN e.cancel_requested THEN e.scheduler_id END,
        status = CASE WHEN e.cancel_requested THEN 'cancelled' ELSE e.status END,
        finished_at = CASE WHEN e.cancel_requested THEN now() END,
        error = CASE WHEN e.cancel_requested THEN 'stopped before its time: cancelled' END
    FROM unnest(%(ids)b::bigint[], %(scheduled)b::timestamptz[], %(workers)b::text[],
                %(ats)b::timestamptz[])
        AS v(id, scheduled_at, worker_id, at)
    WHERE e.id = v.id AND e.scheduled_at = v.scheduled_at
      AND e.status = 'scheduled' AND e.worker_id = v.worker_id AND e.assigned_at < v.at
    RETURNING e.shard_id, e.status
)
SELECT pg_notify('cronfleet_due', shard_id::text)
FROM (SELECT DISTINCT shard_id FROM returned WHERE status = 'scheduled') AS s

-- record_checkpoints --
-- What live runs have written to $CRONFLEET_CHECKPOINT so far.
UPDATE executions e SET checkpoint = v.checkpoint, checkpoint_truncated = v.truncated
FROM unnest(%(ids)b::bigint[], %(scheduled)b::timestamptz[], %(checkpoints)b::bytea[],
            %(truncated)b::bool[])
    AS v(id, scheduled_at, checkpoint, truncated)
WHERE e.id = v.id AND e.scheduled_at = v.scheduled_at AND e.status IN ('scheduled', 'running')

-- insert_retries --
-- The next attempts of failed ones, at the times the jobs' retry policies
-- chose (cronfleet.outcomes). ON CONFLICT: an attempt is never doubled.
INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, attempt, run_at, status,
                        trigger, priority, checkpoint)
SELECT e.job_id, e.owner_id, e.shard_id, e.scheduled_at, e.attempt + 1, r.run_at, 'scheduled',
       'retry', e.priority, e.checkpoint
FROM unnest(%(ids)b::bigint[], %(run_ats)b::timestamptz[]) AS r(id, run_at)
JOIN executions e ON e.id = r.id
ON CONFLICT (job_id, scheduled_at, attempt) DO NOTHING
RETURNING id, shard_id

-- lost_attempts_of_fires --
-- Lost attempts use none of a job's retries (cronfleet.outcomes).
SELECT e.job_id, e.scheduled_at, count(*) AS lost
FROM unnest(%(job_ids)b::uuid[], %(scheduled)b::timestamptz[]) AS f(job_id, scheduled_at)
JOIN executions e ON e.job_id = f.job_id AND e.scheduled_at = f.scheduled_at
WHERE e.status = 'lost'
GROUP BY e.job_id, e.scheduled_at

-- insert_dead_letters --
INSERT INTO dead_letters (owner_id, job_id, execution_id, scheduled_at, reason, attempts)
SELECT e.owner_id, e.job_id, e.id, e.scheduled_at, d.reason, e.attempt
FROM unnest(%(ids)b::bigint[], %(reasons)b::text[]) AS d(id, reason)
JOIN executions e ON e.id = d.id
ON CONFLICT (execution_id) DO NOTHING
RETURNING id

-- lose_unheld_runs --
-- A worker said on (re)connecting which runs it holds: those this scheduler
-- (under its id: a previous process of it too) gave it and that are not
-- among them are lost (its old process had them, or they were in flight on
-- a stream that broke). Our own, and those of schedulers that are no longer
-- members (the parameter live; NULL when etcd could not say): a live scheduler's
-- assignment may be on its way to the worker on another stream, a gone
-- one's cannot.
UPDATE executions e SET status = 'lost', finished_at = now(),
    error = 'worker ' || e.worker_id || ' came back without it (restarted, or its stream broke)'
WHERE (e.scheduler_id = %(scheduler_id)s
       OR (%(live)b::text[] IS NOT NULL AND NOT (coalesce(e.scheduler_id, '') = ANY(%(live)b::text[]))))
  AND e.worker_id = %(worker_id)s AND e.status IN ('scheduled', 'running')
  AND NOT (e.id = ANY(%(holding)b::bigint[]))
RETURNING e.*

-- select_cancel_requests --
-- Every run on a worker that someone asked to stop, on any shard: the
-- scheduler keeps those of its own shards (scheduler.cancels). Read whole
-- from executions_cancel_idx, empty nearly always (a page a partition):
-- joined to shard_owners it was probed once per owned shard in every day
-- partition (128 x 10 probes, 1,400 pages, 0.5-8 ms a scan, each scheduler
-- once a second and at each NOTIFY). The price: while many runs wait to be
-- stopped (a mass cancel), every scheduler reads all of them each scan.
SELECT e.id, e.shard_id, e.worker_id, e.withdrawn FROM executions e
WHERE e.cancel_requested AND e.status IN ('scheduled', 'running') AND e.worker_id IS NOT NULL
  AND (NOT e.withdrawn OR e.status = 'scheduled')  -- a withdrawn run that started goes on

-- =============================================================== coordinator

-- claim_epoch --
-- Succeeds only for the newest epoch: a deposed leader's write is refused.
INSERT INTO cluster_epoch (singleton, epoch) VALUES (true, %(epoch)s)
ON CONFLICT (singleton) DO UPDATE SET epoch = excluded.epoch
WHERE cluster_epoch.epoch <= excluded.epoch
RETURNING epoch

-- shard_owners --
SELECT shard_id, scheduler_id, epoch FROM shard_owners ORDER BY shard_id

-- write_shard_owners --
INSERT INTO shard_owners (shard_id, scheduler_id, epoch)
SELECT * FROM unnest(%(shard_ids)b::int[], %(scheduler_ids)b::text[])
    AS a(shard_id, scheduler_id), LATERAL (SELECT %(epoch)s::bigint) e
ON CONFLICT (shard_id) DO UPDATE SET scheduler_id = excluded.scheduler_id,
    epoch = excluded.epoch, updated_at = now()
WHERE shard_owners.scheduler_id <> excluded.scheduler_id
   OR shard_owners.epoch <> excluded.epoch

-- delete_shard_owners_beyond --
DELETE FROM shard_owners WHERE shard_id >= %(shards)s

-- analyze_shard_owners --
-- After the leader rewrites the owners: statistics of a table that was never
-- analyzed (a new cluster), or whose every row has just taken a new epoch,
-- put a scheduler's shards at one row, and select_pending, joining them to
-- the executions' partial index, then probed each owned shard in every day
-- partition (1,280 probes, 1.4 ms a claim) rather than read the small index
-- once (11 pages, 0.5 ms). 256 rows: a millisecond. A role that does not own
-- the table gets a warning, not an error, and the old plans.
ANALYZE shard_owners

-- brief_lock_timeout --
-- For this transaction: give up on a lock after a second rather than queue
-- behind whoever holds it (a vacuum, for ANALYZE).
SET LOCAL lock_timeout = '1s'

-- mark_lost --
-- Runs held by workers that are no longer members. The grace covers a worker
-- that registered a moment ago and is not yet in the coordinator's view.
-- Fenced: only the leader of the newest epoch declares anything lost.
UPDATE executions SET status = 'lost', finished_at = now(),
    error = 'worker ' || worker_id || ' stopped answering'
WHERE status IN ('scheduled', 'running') AND worker_id IS NOT NULL
  AND NOT (worker_id = ANY(%(live_workers)b::text[]))
  AND assigned_at < now() - make_interval(secs => %(grace)s)
  AND EXISTS (SELECT 1 FROM cluster_epoch WHERE epoch = %(epoch)s)
RETURNING *

-- running_by_worker --
SELECT worker_id, count(*) AS running FROM executions
WHERE status IN ('scheduled', 'running') AND worker_id IS NOT NULL
GROUP BY worker_id

-- ensure_day_partition --
SELECT cronfleet_ensure_day_partition(%(table)s, %(day)s) AS created

-- ping --
SELECT 1 AS ok

-- ================================================================= throttles

-- take_token --
-- One token from the bucket ``key`` (refilled evenly at ``per_second`` up to
-- ``capacity``) if it holds one; nothing back when it is empty.
INSERT INTO throttles AS t (key, tokens, capacity, per_second, updated_at)
VALUES (%(key)s, %(capacity)s - 1, %(capacity)s, %(per_second)s, now())
ON CONFLICT (key) DO UPDATE SET
    tokens = least(excluded.capacity,
                   t.tokens + extract(epoch FROM now() - t.updated_at) * excluded.per_second) - 1,
    capacity = excluded.capacity, per_second = excluded.per_second, updated_at = now()
WHERE least(excluded.capacity,
            t.tokens + extract(epoch FROM now() - t.updated_at) * excluded.per_second) >= 1
RETURNING tokens

-- throttle_wait --
-- Seconds until the bucket ``key`` holds a token again.
SELECT greatest(0, (1 - least(capacity, tokens + extract(epoch FROM now() - updated_at) * per_second))
                   / per_second) AS seconds
FROM throttles WHERE key = %(key)s

-- give_token --
-- A token back (the attempt it paid for succeeded).
UPDATE throttles SET
    tokens = least(capacity, tokens + extract(epoch FROM now() - updated_at) * per_second + 1),
    updated_at = now()
WHERE key = %(key)s

-- prune_throttles --
-- Buckets that have refilled are the same as none.
DELETE FROM throttles WHERE tokens + extract(epoch FROM now() - updated_at) * per_second >= capacity

-- owners_over_log_quota --
-- Users whose stored logs (not yet removed) pass the log-bytes-kept quota.
SELECT owner_id, sum(log_bytes)::bigint AS kept
FROM executions
WHERE log_bytes > 0 AND log_removed_at IS NULL
GROUP BY owner_id
HAVING sum(log_bytes) > %(quota)s

-- remove_oldest_logs --
-- One user's logs past the quota, newest kept first: each log whose bytes,
-- with every newer one's, pass it is marked removed (its object is deleted
-- after the commit). Returned: what names each object.
WITH ranked AS (
    SELECT id, scheduled_at,
           sum(log_bytes) OVER (ORDER BY finished_at DESC, id DESC) AS with_newer
    FROM executions
    WHERE owner_id = %(owner_id)s AND log_bytes > 0 AND log_removed_at IS NULL
)
UPDATE executions e SET log_removed_at = now()
FROM ranked r
WHERE e.id = r.id AND e.scheduled_at = r.scheduled_at AND r.with_newer > %(quota)s
RETURNING e.id, e.job_id, e.owner_id, e.attempt, e.log_bytes
