"""What the service records and reports: a run (an execution) and how its
steps ended, dead letters, alerts and their deliveries, stats, a user.
Typed, frozen and transport-free, like the job's records in
``cronfleet.models``; ``cronfleet.codec`` turns them into API JSON,
protobuf messages and Postgres rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from cronfleet.models import FINAL_STATUSES, Notify


@dataclass(frozen=True)
class StepResult:
    """How one step of a run ended."""

    name: str
    exit_code: int
    duration_ms: float


@dataclass(frozen=True)
class Execution:
    """One attempt of one fire: (job_id, scheduled_at, attempt) is unique.

    ``log_url`` is where the output was stored, as the worker reported it;
    the gateway swaps in a link the user can open.
    """

    id: int
    job_id: uuid.UUID
    owner_id: uuid.UUID
    shard_id: int
    attempt: int
    status: str
    trigger: str
    scheduled_at: datetime
    run_at: datetime
    priority: int = 5
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    worker_id: str | None = None
    log_url: str | None = None
    error: str | None = None
    lateness_ms: float | None = None
    steps: tuple[StepResult, ...] = ()
    cold_start: bool = False
    upstream_execution_id: int | None = None
    checkpoint: bytes | None = None  # what the run left in $CRONFLEET_CHECKPOINT
    checkpoint_truncated: bool = False
    container_id: str | None = None  # the container it ran in (docker runtime)
    log_bytes: int | None = None  # the stored log's size
    log_removed_at: datetime | None = None  # removed: past the owner's log-bytes-kept quota

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def failure_class(self) -> str | None:
        """How it failed, as a retry policy names it; None if it did not fail."""
        if self.status not in ("failed", "timed_out", "lost"):
            return None
        return "oom_killed" if self.error == "oom_killed" else self.status


# What a user sees of an execution (its owner, shard and priority stay inside).
PUBLIC_EXECUTION_FIELDS = (
    "id",
    "job_id",
    "attempt",
    "status",
    "trigger",
    "scheduled_at",
    "run_at",
    "started_at",
    "finished_at",
    "exit_code",
    "worker_id",
    "log_url",
    "error",
    "lateness_ms",
    "steps",
    "cold_start",
    "upstream_execution_id",
    "checkpoint",
    "checkpoint_truncated",
    "container_id",
    "log_bytes",
    "log_removed_at",
)


class Succeeded(NamedTuple):
    """What settling needs of a run that succeeded (most runs): its keys,
    not a record of every column; and, where the finish's write said so,
    whether any job runs after its job, and whether anyone is told of its
    job's recovery (False: the statements that would look are skipped)."""

    id: int
    job_id: uuid.UUID
    scheduled_at: datetime
    has_downstream: bool = True
    tells_recovery: bool = True


@dataclass(frozen=True)
class DeadLetter:
    """An attempt that failed for good: kept until replayed or discarded."""

    id: int
    job_id: uuid.UUID
    execution_id: int
    reason: str
    attempts: int
    created_at: datetime
    job_name: str = ""  # in lists, so a deleted job's dead letters still say whose they are


@dataclass(frozen=True)
class RunsInMinute:
    minute: datetime
    runs: int


@dataclass(frozen=True)
class Stats:
    """A user's (or one job's) figures (GET /stats, GET /jobs/{id}/stats)."""

    # API.md's job stats, over executions due in the last day:
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None  # succeeded / ended (succeeded, failed, timed_out, lost); None: none ended
    duration_ms: dict[str, float | None]  # p50, p95, p99, max of runs ended
    lateness_ms: dict[str, float | None]  # the same, of runs started
    last: tuple[str, ...]  # the statuses of the latest 20 executions due, newest first
    # And for people watching:
    success_rate_last_hour: float | None
    jobs: dict[str, int]  # by status, deleted ones left out ({} for one job)
    executions: dict[str, dict[str, int]]  # "last_hour" / "last_day" -> status -> count
    runs_per_minute: tuple[RunsInMinute, ...]  # runs started, the last 60 minutes, oldest first


@dataclass(frozen=True)
class Delivery:
    """One alert to one target: ``pending`` (tried again at ``next_attempt_at``),
    ``delivered``, or ``failed`` (attempts spent, or refused)."""

    target: str
    format: str
    status: str
    attempts: int
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    last_status_code: int | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Alert:
    """Something a job's owner asked to be told (a ``NOTIFY_EVENTS`` kind),
    and how its deliveries went. ``payload`` is the JSON body every target
    gets (a Slack target gets a message made from it)."""

    id: int
    job_id: uuid.UUID
    execution_id: int
    kind: str
    created_at: datetime
    payload: dict[str, Any]
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    name: str
    email: str
    created_at: datetime
    notify: tuple[Notify, ...] = ()  # for the user's jobs that set none
