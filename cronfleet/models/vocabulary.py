"""The words a job and its runs are told in: their statuses, the policies a
spec may name, how an attempt fails, what starts a run, what ``notify``
targets hear about. A field's rule checks its value is one of these."""

from __future__ import annotations

JOB_STATUSES = ("active", "paused", "completed", "deleted")
EXECUTION_STATUSES = (
    "scheduled",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "lost",
    "skipped",
)
FINAL_STATUSES = frozenset(EXECUTION_STATUSES) - {"scheduled", "running"}
CONCURRENCY_POLICIES = ("allow", "forbid", "replace")
MISFIRE_POLICIES = ("run_once", "run_all", "skip")
DELIVERY_GUARANTEES = ("at_least_once", "at_most_once")
# How an attempt can fail, as a retry policy names it ("oom_killed" is a
# failed run the kernel killed for memory).
FAILURE_CLASSES = ("failed", "timed_out", "lost", "oom_killed")
UPSTREAM_OUTCOMES = ("success", "failure", "always")
# "misfire": a fire run late by the job's misfire policy after it was missed.
TRIGGERS = ("schedule", "manual", "retry", "backfill", "replay", "upstream", "misfire")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
CONTAINER_MODES = ("per_run", "per_job")
# What a job's ``notify`` targets may be told about (API.md): a failed or
# timed-out run, a dead letter, the first success after a failure, a fire
# missed (skipped, or run later than the misfire grace).
NOTIFY_EVENTS = ("failed", "dead", "timed_out", "recovered", "missed")
NOTIFY_FORMATS = ("json", "slack")
