"""What a user may set on a job, :class:`JobSpec`, and its validation: the
first field that is wrong, named."""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cronfleet import cron
from cronfleet.errors import InvalidSpec
from cronfleet.models.bounds import (
    MAX_COMMAND_BYTES,
    MAX_CONCURRENCY,
    MAX_CPUS,
    MAX_ENV_NAME,
    MAX_ENV_VALUE,
    MAX_ENV_VARS,
    MAX_IMAGE,
    MAX_LIST,
    MAX_MEMORY_MB,
    MAX_NAME,
    MAX_PIDS,
    MAX_SCHEDULE,
    MAX_STEPS,
    MAX_TIMEOUT_SECONDS,
    MAX_TIMEZONE,
    check_moment,
    check_text,
)
from cronfleet.models.parts import HttpCall, Notify, Resources, RetryPolicy, Step, Upstream, validate_notify
from cronfleet.models.secret import EnvValue, Secret
from cronfleet.models.vocabulary import (
    CONCURRENCY_POLICIES,
    CONTAINER_MODES,
    DELIVERY_GUARANTEES,
    MISFIRE_POLICIES,
    UPSTREAM_OUTCOMES,
)
from cronfleet.schedule import Timing

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_script(text: str, field: str) -> None:
    check_text(text, field, MAX_COMMAND_BYTES)
    if len(text.encode()) > MAX_COMMAND_BYTES:
        raise InvalidSpec(f"must be at most {MAX_COMMAND_BYTES} bytes", field=field)


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
    # A value is a string, or a Secret: sealed at rest, "***" in every reply.
    env: dict[str, EnvValue] = field(default_factory=dict)
    max_retries: int = 0
    timeout_seconds: int = 3600
    priority: int = 5
    concurrency_policy: str = "allow"
    max_concurrency: int | None = None
    resources: Resources = field(default_factory=Resources)
    http: HttpCall | None = None
    # "per_run": a fresh container each run; "per_job": one long-lived
    # container for the job, a fresh process group each run (frequent jobs).
    container: str = "per_run"
    run_once: bool = False  # with a schedule: fire at the next match only, then complete
    retry: RetryPolicy | None = None  # None: the server's default policy
    misfire_policy: str = "run_once"
    delivery: str = "at_least_once"
    after: tuple[Upstream, ...] = ()
    notify: tuple[Notify, ...] = ()  # (): the owner's default notify

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
        check_text(self.name, "name", MAX_NAME)
        if self.image is not None:
            check_text(self.image, "image", MAX_IMAGE)
        given = [
            name for name, v in (("command", self.command), ("steps", self.steps), ("http", self.http)) if v
        ]
        if len(given) > 1:
            raise InvalidSpec(
                f"give one of command, steps or http, not {' and '.join(given)}", field=given[0]
            )
        if self.command is None and not self.steps and self.http is None:
            raise InvalidSpec("is required (or give steps, or http)", field="command")
        if self.http is not None:
            self.http.validate()
        if self.container not in CONTAINER_MODES:
            raise InvalidSpec(f"must be one of {', '.join(CONTAINER_MODES)}", field="container")
        if self.command is not None:
            if not self.command.strip():
                raise InvalidSpec("must not be empty", field="command")
            _check_script(self.command, "command")
        if len(self.steps) > MAX_STEPS:
            raise InvalidSpec(f"must have at most {MAX_STEPS} steps", field="steps")
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if not step.name.strip():
                raise InvalidSpec("is required", field=f"steps[{i}].name")
            check_text(step.name, f"steps[{i}].name", MAX_NAME)
            if step.name in seen:
                raise InvalidSpec(f"duplicate step name {step.name!r}", field=f"steps[{i}].name")
            seen.add(step.name)
            if not step.run.strip():
                raise InvalidSpec("must not be empty", field=f"steps[{i}].run")
            _check_script(step.run, f"steps[{i}].run")
        self._validate_env()

    def _validate_env(self) -> None:
        if len(self.env) > MAX_ENV_VARS:
            raise InvalidSpec(f"must have at most {MAX_ENV_VARS} variables", field="env")
        for name, value in self.env.items():
            if not _ENV_NAME.match(name) or len(name) > MAX_ENV_NAME:
                raise InvalidSpec(
                    f"{name[:50]!r} is not a valid variable name (at most {MAX_ENV_NAME} characters)",
                    field="env",
                )
            if isinstance(value, Secret):
                if value.value is not None:  # a plaintext being set (a sealed one was checked then)
                    check_text(value.value, f"env.{name}", MAX_ENV_VALUE)
            else:
                check_text(value, f"env.{name}", MAX_ENV_VALUE)

    def _validate_when(self) -> None:
        check_text(self.timezone, "timezone", MAX_TIMEZONE)
        cron.load_timezone(self.timezone)
        if self.schedule is not None:
            check_text(self.schedule, "schedule", MAX_SCHEDULE)
            cron.parse(self.schedule)
            if self.run_at is not None:
                raise InvalidSpec("is for one-off jobs; a scheduled job uses start_at", field="run_at")
        elif self.start_at is not None or self.end_at is not None:
            raise InvalidSpec("only applies to a job with a schedule", field="start_at")
        for name in ("run_at", "start_at", "end_at"):
            check_moment(getattr(self, name), name)
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise InvalidSpec("must be after start_at", field="end_at")

    def _validate_policies(self) -> None:
        if self.retry is not None:
            self.retry.validate()
        if self.misfire_policy not in MISFIRE_POLICIES:
            raise InvalidSpec(f"must be one of {', '.join(MISFIRE_POLICIES)}", field="misfire_policy")
        if self.delivery not in DELIVERY_GUARANTEES:
            raise InvalidSpec(f"must be one of {', '.join(DELIVERY_GUARANTEES)}", field="delivery")
        if len(self.after) > MAX_LIST:
            raise InvalidSpec(f"must have at most {MAX_LIST} upstreams", field="after")
        for i, upstream in enumerate(self.after):
            try:
                uuid.UUID(upstream.job_id)
            except (ValueError, TypeError) as exc:
                raise InvalidSpec("is not a job id", field=f"after[{i}].job_id") from exc
            if upstream.on not in UPSTREAM_OUTCOMES:
                raise InvalidSpec(f"must be one of {', '.join(UPSTREAM_OUTCOMES)}", field=f"after[{i}].on")
        validate_notify(self.notify)
        if not 0 <= self.max_retries <= 100:
            raise InvalidSpec("must be 0-100", field="max_retries")
        if not 1 <= self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise InvalidSpec(f"must be 1-{MAX_TIMEOUT_SECONDS}", field="timeout_seconds")
        if not 0 <= self.priority <= 9:
            raise InvalidSpec("must be 0-9", field="priority")
        if self.concurrency_policy not in CONCURRENCY_POLICIES:
            raise InvalidSpec(f"must be one of {', '.join(CONCURRENCY_POLICIES)}", field="concurrency_policy")
        if self.max_concurrency is not None:
            if not 1 <= self.max_concurrency <= MAX_CONCURRENCY:
                raise InvalidSpec(f"must be 1-{MAX_CONCURRENCY}", field="max_concurrency")
            if self.concurrency_policy != "allow":
                raise InvalidSpec('only applies with concurrency_policy "allow"', field="max_concurrency")

    def _validate_resources(self, limits: Resources | None) -> None:
        r = self.resources
        if r.cpus is not None and not (math.isfinite(r.cpus) and 0 < r.cpus <= MAX_CPUS):
            raise InvalidSpec(f"must be positive, at most {MAX_CPUS:g}", field="resources.cpus")
        if r.memory_mb is not None and not 4 <= r.memory_mb <= MAX_MEMORY_MB:
            raise InvalidSpec(f"must be 4-{MAX_MEMORY_MB}", field="resources.memory_mb")
        if r.pids is not None and not 1 <= r.pids <= MAX_PIDS:
            raise InvalidSpec(f"must be 1-{MAX_PIDS}", field="resources.pids")
        if limits is None:
            return
        for name in ("cpus", "memory_mb", "pids"):
            asked, most = getattr(r, name), getattr(limits, name)
            if asked is not None and most is not None and asked > most:
                raise InvalidSpec(
                    f"asks for {asked}; workers allow at most {most}", field=f"resources.{name}"
                )
