"""The parts a :class:`~cronfleet.models.spec.JobSpec` is made of (steps,
resources, the retry policy, upstreams, an HTTP call, notify targets), each
with its own rule."""

from __future__ import annotations

import ipaddress
import math
import re
import urllib.parse
from dataclasses import dataclass, field

from cronfleet.errors import InvalidSpec
from cronfleet.models.bounds import (
    MAX_BACKOFF_SECONDS,
    MAX_COMMAND_BYTES,
    MAX_EXIT_CODES,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_LIST,
    MAX_MULTIPLIER,
    MAX_NOTIFY_TARGETS,
    MAX_TIMEOUT_SECONDS,
    MAX_URL,
    check_text,
)
from cronfleet.models.vocabulary import FAILURE_CLASSES, HTTP_METHODS, NOTIFY_EVENTS, NOTIFY_FORMATS

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token


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
