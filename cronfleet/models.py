"""The records every role shares: a job and its spec, an execution, a user.

They are typed, frozen and transport-free. ``cronfleet.codec`` turns them
into API JSON, protobuf messages and Postgres rows and back; a new job field
is a field here (with its rule in :meth:`JobSpec.validate`), a field in the
proto, and a column only if SQL reads it.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cronfleet import cron
from cronfleet.errors import InvalidSpec
from cronfleet.schedule import Timing

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
MAX_COMMAND_BYTES = 64 * 1024
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step of a multi-step job; steps run in order in one container.
    An unnamed step is called ``step-N`` (see :func:`name_steps`)."""

    name: str = ""
    run: str


def name_steps(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """Steps as given, an unnamed one called ``step-N`` (1-based)."""
    return tuple(s if s.name else Step(name=f"step-{i + 1}", run=s.run) for i, s in enumerate(steps))


@dataclass(frozen=True)
class Resources:
    """What one run may use; None takes the worker's default."""

    cpus: float | None = None
    memory_mb: int | None = None
    pids: int | None = None


@dataclass(frozen=True)
class JobSpec:
    """What a user may set on a job (API.md). Defaults are the server's."""

    name: str = ""
    command: str | None = None
    steps: tuple[Step, ...] = ()
    schedule: str | None = None
    run_at: datetime | None = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    max_retries: int = 0
    timeout_seconds: int = 3600
    priority: int = 5
    concurrency_policy: str = "allow"
    max_concurrency: int | None = None
    resources: Resources = field(default_factory=Resources)

    def with_changes(self, changes: Mapping[str, Any]) -> JobSpec:
        """This spec with the named fields changed (PATCH); None resets a field
        to its default."""
        defaults = JobSpec()
        return dataclasses.replace(
            self, **{k: getattr(defaults, k) if v is None else v for k, v in changes.items()}
        )

    def timing(self, anchor: datetime | None = None) -> Timing:
        """When this job fires; ``anchor`` is where ``@every`` counts from."""
        return Timing(self.schedule, self.timezone, self.run_at, self.start_at, self.end_at, anchor)

    def validate(self, limits: Resources | None = None) -> None:
        """Raise InvalidSpec naming the first field that is wrong.

        ``limits`` are the most a run may ask for (the workers' maximums).
        """
        self._validate_what()
        self._validate_when()
        self._validate_policies()
        self._validate_resources(limits)

    def _validate_what(self) -> None:
        if not self.name or not self.name.strip():
            raise InvalidSpec("is required", field="name")
        if len(self.name) > 200:
            raise InvalidSpec("must be at most 200 characters", field="name")
        if self.command is not None and self.steps:
            raise InvalidSpec("give either command or steps, not both", field="command")
        if self.command is None and not self.steps:
            raise InvalidSpec("is required (or give steps)", field="command")
        if self.command is not None:
            if not self.command.strip():
                raise InvalidSpec("must not be empty", field="command")
            if len(self.command.encode()) > MAX_COMMAND_BYTES:
                raise InvalidSpec(f"must be at most {MAX_COMMAND_BYTES} bytes", field="command")
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if not step.name.strip():
                raise InvalidSpec("is required", field=f"steps[{i}].name")
            if step.name in seen:
                raise InvalidSpec(f"duplicate step name {step.name!r}", field=f"steps[{i}].name")
            seen.add(step.name)
            if not step.run.strip():
                raise InvalidSpec("must not be empty", field=f"steps[{i}].run")
        for name in self.env:
            if not _ENV_NAME.match(name):
                raise InvalidSpec(f"{name!r} is not a valid variable name", field="env")

    def _validate_when(self) -> None:
        cron.load_timezone(self.timezone)
        if self.schedule is not None:
            cron.parse(self.schedule)
            if self.run_at is not None:
                raise InvalidSpec("is for one-off jobs; a scheduled job uses start_at", field="run_at")
        elif self.start_at is not None or self.end_at is not None:
            raise InvalidSpec("only applies to a job with a schedule", field="start_at")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise InvalidSpec("must be after start_at", field="end_at")

    def _validate_policies(self) -> None:
        if not 0 <= self.max_retries <= 100:
            raise InvalidSpec("must be 0-100", field="max_retries")
        if not 1 <= self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise InvalidSpec(f"must be 1-{MAX_TIMEOUT_SECONDS}", field="timeout_seconds")
        if not 0 <= self.priority <= 9:
            raise InvalidSpec("must be 0-9", field="priority")
        if self.concurrency_policy not in CONCURRENCY_POLICIES:
            raise InvalidSpec(f"must be one of {', '.join(CONCURRENCY_POLICIES)}", field="concurrency_policy")
        if self.max_concurrency is not None:
            if self.max_concurrency < 1:
                raise InvalidSpec("must be at least 1", field="max_concurrency")
            if self.concurrency_policy != "allow":
                raise InvalidSpec('only applies with concurrency_policy "allow"', field="max_concurrency")

    def _validate_resources(self, limits: Resources | None) -> None:
        r = self.resources
        if r.cpus is not None and r.cpus <= 0:
            raise InvalidSpec("must be positive", field="resources.cpus")
        if r.memory_mb is not None and r.memory_mb < 4:
            raise InvalidSpec("must be at least 4", field="resources.memory_mb")
        if r.pids is not None and r.pids < 1:
            raise InvalidSpec("must be at least 1", field="resources.pids")
        if limits is None:
            return
        for name in ("cpus", "memory_mb", "pids"):
            asked, most = getattr(r, name), getattr(limits, name)
            if asked is not None and most is not None and asked > most:
                raise InvalidSpec(
                    f"asks for {asked}; workers allow at most {most}", field=f"resources.{name}"
                )


@dataclass(frozen=True)
class Job:
    """A stored job: the user's spec plus what the server keeps about it."""

    id: uuid.UUID
    owner_id: uuid.UUID
    spec: JobSpec
    status: str
    shard_id: int
    version: int
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None

    @property
    def timing(self) -> Timing:
        return self.spec.timing(anchor=self.created_at)


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

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    name: str
    email: str
    created_at: datetime
