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
import ipaddress
import math
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cronfleet import cron, preview
from cronfleet.errors import CronfleetError, InvalidSpec
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


# Bounds of every string and list a job holds (characters, or entries), so
# that no field can make a job, a reply or a worker's message unbounded.
MAX_NAME = 200
MAX_SCHEDULE = 1024
MAX_TIMEZONE = 64
MAX_IMAGE = 512
MAX_STEPS = 100
MAX_ENV_VARS = 200
MAX_ENV_NAME = 256
MAX_ENV_VALUE = 32 * 1024
MAX_URL = 2048
MAX_HEADERS = 50
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 8 * 1024
MAX_LIST = 50  # expect_status, after, retry.on
MAX_EXIT_CODES = 256
MAX_CONCURRENCY = 10_000
MAX_BACKOFF_SECONDS = 7 * 24 * 3600.0
MAX_MULTIPLIER = 100.0
# Without the workers' maximums (a test's service), what a run may still not ask.
MAX_CPUS = 1024.0
MAX_MEMORY_MB = 1 << 20
MAX_PIDS = 1 << 20
# Times a job (or a preview, or a backfill) may name: far enough for any
# job, and far enough from datetime's own ends that the fires after and the
# minutes before them are still dates.
EARLIEST_YEAR = 1970
LATEST_YEAR = 9000
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token


def storable(text: str) -> bool:
    """Text Postgres and UTF-8 can hold: no NUL, no unpaired surrogate."""
    if "\0" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_text(
    value: str, field: str, most: int, error: type[CronfleetError] = InvalidSpec, *, what: str = "characters"
) -> None:
    """At most ``most`` characters of storable text, or ``error`` naming ``field``."""
    if len(value) > most:
        raise error(f"must be at most {most:,} {what}", field=field)
    if not storable(value):
        raise error("must be text without NUL characters", field=field)


def check_moment(moment: datetime | None, field: str) -> None:
    """A time from the years cronfleet computes fires in, or InvalidSpec naming ``field``."""
    if moment is not None and not EARLIEST_YEAR <= moment.year < LATEST_YEAR:
        raise InvalidSpec(f"must be in the years {EARLIEST_YEAR}-{LATEST_YEAR - 1}", field=field)


def _check_number(value: float, field: str, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidSpec(f"must be {low:g}-{high:g}", field=field)


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
        _check_number(self.backoff_seconds, "retry.backoff_seconds", 0, MAX_BACKOFF_SECONDS)
        _check_number(self.multiplier, "retry.multiplier", 1, MAX_MULTIPLIER)
        _check_number(self.max_backoff_seconds, "retry.max_backoff_seconds", 0, MAX_BACKOFF_SECONDS)
        if self.max_backoff_seconds < self.backoff_seconds:
            raise InvalidSpec("must be at least backoff_seconds", field="retry.max_backoff_seconds")
        if not (math.isfinite(self.jitter) and 0 <= self.jitter <= 1):
            raise InvalidSpec("must be 0-1 (a fraction of the delay)", field="retry.jitter")
        if len(self.on) > MAX_LIST:
            raise InvalidSpec(f"must have at most {MAX_LIST} entries", field="retry.on")
        if len(self.never_exit_codes) > MAX_EXIT_CODES:
            raise InvalidSpec(f"must have at most {MAX_EXIT_CODES} entries", field="retry.never_exit_codes")
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
        check_text(self.url, "http.url", MAX_URL)
        try:
            parsed = urllib.parse.urlsplit(self.url)
            host = parsed.hostname
        except ValueError as exc:  # a malformed IPv6 host, a bad port
            raise InvalidSpec("must be an http:// or https:// URL", field="http.url") from exc
        if parsed.scheme not in ("http", "https") or not host or not _resolvable(host):
            raise InvalidSpec("must be an http:// or https:// URL", field="http.url")
        if len(self.headers) > MAX_HEADERS:
            raise InvalidSpec(f"must have at most {MAX_HEADERS} headers", field="http.headers")
        for name, value in self.headers.items():
            if not _HEADER_NAME.match(name) or len(name) > MAX_HEADER_NAME:
                raise InvalidSpec(
                    f"{name[:50]!r} is not a header name (at most {MAX_HEADER_NAME} token characters)",
                    field="http.headers",
                )
            check_text(value, f"http.headers.{name}", MAX_HEADER_VALUE)
            if "\r" in value or "\n" in value:
                raise InvalidSpec("must be one line", field=f"http.headers.{name}")
        if len(self.expect_status) > MAX_LIST:
            raise InvalidSpec(f"must have at most {MAX_LIST} entries", field="http.expect_status")
        if self.method.upper() not in HTTP_METHODS:
            raise InvalidSpec(f"must be one of {', '.join(HTTP_METHODS)}", field="http.method")
        if self.timeout_seconds is not None and not 1 <= self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise InvalidSpec(f"must be 1-{MAX_TIMEOUT_SECONDS}", field="http.timeout_seconds")
        for i, status in enumerate(self.expect_status):
            if not 100 <= status <= 599:
                raise InvalidSpec("must be an HTTP status 100-599", field=f"http.expect_status[{i}]")
        if self.body is not None:
            check_text(self.body, "http.body", MAX_COMMAND_BYTES)
            if len(self.body.encode()) > MAX_COMMAND_BYTES:
                raise InvalidSpec(f"must be at most {MAX_COMMAND_BYTES} bytes", field="http.body")


@dataclass(frozen=True, kw_only=True)
class Notify:
    """Where alerts of a job go: a webhook that gets JSON (signed with the
    owner's secret) or a Slack-compatible incoming webhook's message."""

    webhook: str
    on: tuple[str, ...] = ("failed", "dead", "timed_out", "recovered")
    format: str = "json"

    def validate(self, where: str) -> None:
        check_text(self.webhook, f"{where}.webhook", MAX_URL)
        try:
            parsed = urllib.parse.urlsplit(self.webhook)
            host = parsed.hostname
        except ValueError as exc:
            raise InvalidSpec("must be an http:// or https:// URL", field=f"{where}.webhook") from exc
        if parsed.scheme not in ("http", "https") or not host or not _resolvable(host):
            raise InvalidSpec("must be an http:// or https:// URL", field=f"{where}.webhook")
        if len(self.on) > MAX_LIST:
            raise InvalidSpec(f"must have at most {MAX_LIST} entries", field=f"{where}.on")
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


def _resolvable(host: str) -> bool:
    """A host name DNS can be asked about (IDNA: labels of 1-63 characters),
    or an IP address; the worker resolves it when the call is armed."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


def _check_script(text: str, field: str) -> None:
    check_text(text, field, MAX_COMMAND_BYTES)
    if len(text.encode()) > MAX_COMMAND_BYTES:
        raise InvalidSpec(f"must be at most {MAX_COMMAND_BYTES} bytes", field=field)


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
