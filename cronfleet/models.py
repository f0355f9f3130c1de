"""The records every role shares about a job: its spec (and each rule of it)
and the stored job. What happens to it (executions, dead letters, alerts,
stats) and users are in ``cronfleet.records``.

They are typed, frozen and transport-free. ``cronfleet.codec`` turns them
into API JSON, protobuf messages and Postgres rows and back; a new job field
is a field here (with its rule in :meth:`JobSpec.validate`), a field in the
proto, and a column only if SQL reads it.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cronfleet import cron, preview
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
MAX_NOTIFY_TARGETS = 10
MAX_COMMAND_BYTES = 64 * 1024
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "***"  # how every reply shows a secret env value


@dataclass(frozen=True, repr=False)
class Secret:
    """An env value marked secret (``{"value": v, "secret": true}``).

    ``value`` is the plaintext: held from the request until the gateway seals
    it, and from the scheduler opening it until the run. ``sealed`` is how it
    is stored (cronfleet.sealing). Neither set: "the value stored under this
    name", what a reply's ``"***"`` sent back in an update means. Every codec
    shows it as ``"***"``, and so does its repr (a log line cannot leak it).
    """

    value: str | None = None
    sealed: str | None = None

    def __repr__(self) -> str:
        return "Secret(***)"


EnvValue = str | Secret


def reveal_env(env: Mapping[str, EnvValue]) -> dict[str, str]:
    """The environment a run gets: secrets as their opened values."""
    out = {}
    for name, value in env.items():
        if isinstance(value, Secret):
            if value.value is None:
                raise ValueError(f"env {name}: the secret is not opened")
            out[name] = value.value
        else:
            out[name] = value
    return out


def secret_names(env: Mapping[str, EnvValue]) -> list[str]:
    return [name for name, value in env.items() if isinstance(value, Secret)]


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
class RetryPolicy:
    """How failed attempts are tried again: after ``backoff_seconds``, times
    ``multiplier`` per attempt, at most ``max_backoff_seconds``, each delay
    moved by up to ``jitter`` (a fraction) either way. Only failures of a class
    in ``on`` are retried, never an exit code in ``never_exit_codes``."""

    backoff_seconds: float = 2.0
    multiplier: float = 2.0
    max_backoff_seconds: float = 3600.0
    jitter: float = 0.0
    on: tuple[str, ...] = FAILURE_CLASSES
    never_exit_codes: tuple[int, ...] = ()

    def validate(self) -> None:
        if self.backoff_seconds < 0:
            raise InvalidSpec("must not be negative", field="retry.backoff_seconds")
        if self.multiplier < 1:
            raise InvalidSpec("must be at least 1", field="retry.multiplier")
        if self.max_backoff_seconds < self.backoff_seconds:
            raise InvalidSpec("must be at least backoff_seconds", field="retry.max_backoff_seconds")
        if not 0 <= self.jitter <= 1:
            raise InvalidSpec("must be 0-1 (a fraction of the delay)", field="retry.jitter")
        for i, klass in enumerate(self.on):
            if klass not in FAILURE_CLASSES:
                raise InvalidSpec(f"must be one of {', '.join(FAILURE_CLASSES)}", field=f"retry.on[{i}]")
        for i, code in enumerate(self.never_exit_codes):
            if not 0 <= code <= 255:
                raise InvalidSpec("must be an exit code 0-255", field=f"retry.never_exit_codes[{i}]")


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """Fire this job when a run of ``job_id`` ends ``on`` success, failure, or always."""

    job_id: str
    on: str = "success"


@dataclass(frozen=True, kw_only=True)
class HttpCall:
    """A job that calls an API instead of running a command."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    timeout_seconds: int | None = None  # None: the job's timeout_seconds
    expect_status: tuple[int, ...] = ()  # (): any 2xx

    def validate(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidSpec("must be an http:// or https:// URL", field="http.url")
        if self.method.upper() not in HTTP_METHODS:
            raise InvalidSpec(f"must be one of {', '.join(HTTP_METHODS)}", field="http.method")
        if self.timeout_seconds is not None and not 1 <= self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise InvalidSpec(f"must be 1-{MAX_TIMEOUT_SECONDS}", field="http.timeout_seconds")
        for i, status in enumerate(self.expect_status):
            if not 100 <= status <= 599:
                raise InvalidSpec("must be an HTTP status 100-599", field=f"http.expect_status[{i}]")
        if self.body is not None and len(self.body.encode()) > MAX_COMMAND_BYTES:
            raise InvalidSpec(f"must be at most {MAX_COMMAND_BYTES} bytes", field="http.body")


@dataclass(frozen=True, kw_only=True)
class Notify:
    """Where alerts of a job go: a webhook that gets JSON (signed with the
    owner's secret) or a Slack-compatible incoming webhook's message."""

    webhook: str
    on: tuple[str, ...] = ("failed", "dead", "timed_out", "recovered")
    format: str = "json"

    def validate(self, where: str) -> None:
        parsed = urllib.parse.urlsplit(self.webhook)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidSpec("must be an http:// or https:// URL", field=f"{where}.webhook")
        if len(self.webhook) > 2048:
            raise InvalidSpec("must be at most 2048 characters", field=f"{where}.webhook")
        if not self.on:
            raise InvalidSpec(f"must name at least one of {', '.join(NOTIFY_EVENTS)}", field=f"{where}.on")
        for i, event in enumerate(self.on):
            if event not in NOTIFY_EVENTS:
                raise InvalidSpec(f"must be one of {', '.join(NOTIFY_EVENTS)}", field=f"{where}.on[{i}]")
        if self.format not in NOTIFY_FORMATS:
            raise InvalidSpec(f"must be one of {', '.join(NOTIFY_FORMATS)}", field=f"{where}.format")
        if self.format == "slack" and not is_slack_webhook(parsed.path):
            raise InvalidSpec(
                "format slack needs an incoming-webhook URL (https://hooks.slack.com/services/..., "
                "or a Slack-compatible .../hooks/... or .../slack path)",
                field=f"{where}.webhook",
            )


def is_slack_webhook(path: str) -> bool:
    """The path shapes of Slack's incoming webhooks (/services/T/B/x) and of
    the services that accept their messages (Mattermost and Rocket.Chat
    /hooks/..., Discord .../slack)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        return False
    return parts[0] == "services" or "hooks" in parts[:-1] or parts[-1] == "slack"


def validate_notify(targets: tuple[Notify, ...], where: str = "notify") -> None:
    if len(targets) > MAX_NOTIFY_TARGETS:
        raise InvalidSpec(f"must have at most {MAX_NOTIFY_TARGETS} targets", field=where)
    for i, target in enumerate(targets):
        target.validate(f"{where}[{i}]")


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
        if len(self.name) > 200:
            raise InvalidSpec("must be at most 200 characters", field="name")
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
        if self.retry is not None:
            self.retry.validate()
        if self.misfire_policy not in MISFIRE_POLICIES:
            raise InvalidSpec(f"must be one of {', '.join(MISFIRE_POLICIES)}", field="misfire_policy")
        if self.delivery not in DELIVERY_GUARANTEES:
            raise InvalidSpec(f"must be one of {', '.join(DELIVERY_GUARANTEES)}", field="delivery")
        for i, upstream in enumerate(self.after):
            try:
                uuid.UUID(upstream.job_id)
            except ValueError as exc:
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
class RunBrief:
    """One of a job's latest runs, as a job list shows it (``recent=N``)."""

    id: int  # the execution's
    status: str
    scheduled_at: datetime
    finished_at: datetime | None = None
    exit_code: int | None = None


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
    paused_at: datetime | None = None
    # Said when the job is created or changed (cronfleet.preview), not kept.
    warnings: tuple[str, ...] = ()
    # Filled by a job list that asks for them, newest first; not kept.
    recent_runs: tuple[RunBrief, ...] = ()

    @property
    def schedule_description(self) -> str:
        return preview.describe_schedule(self.spec.schedule)

    @property
    def timing(self) -> Timing:
        return self.spec.timing(anchor=self.created_at)
