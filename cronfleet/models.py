"""Domain objects shared by every role: a job's spec and its validation.

The HTTP facade and the gRPC API both build a :class:`JobSpec` and call
:meth:`JobSpec.validate`, so the rules and their messages live only here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cronfleet import cron
from cronfleet.errors import InvalidArgument, InvalidSpec

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


@dataclass(frozen=True)
class Step:
    name: str
    run: str


@dataclass(frozen=True)
class Resources:
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

    def validate(self, limits: Resources | None = None) -> None:
        """Raise InvalidSpec naming the first field that is wrong.

        ``limits`` are the most a run may ask for (the workers' maximums).
        """
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
        cron.load_timezone(self.timezone)
        if self.schedule is not None:
            cron.parse(self.schedule)
            if self.run_at is not None:
                raise InvalidSpec("is for one-off jobs; a scheduled job uses start_at", field="run_at")
        elif self.start_at is not None or self.end_at is not None:
            raise InvalidSpec("only applies to a job with a schedule", field="start_at")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise InvalidSpec("must be after start_at", field="end_at")
        for name in self.env:
            if not _ENV_NAME.match(name):
                raise InvalidSpec(f"{name!r} is not a valid variable name", field="env")
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
        r = self.resources
        if r.cpus is not None and r.cpus <= 0:
            raise InvalidSpec("must be positive", field="resources.cpus")
        if r.memory_mb is not None and r.memory_mb < 4:
            raise InvalidSpec("must be at least 4", field="resources.memory_mb")
        if r.pids is not None and r.pids < 1:
            raise InvalidSpec("must be at least 1", field="resources.pids")
        if limits is not None:
            for name in ("cpus", "memory_mb", "pids"):
                asked, most = getattr(r, name), getattr(limits, name)
                if asked is not None and most is not None and asked > most:
                    raise InvalidSpec(
                        f"asks for {asked}; workers allow at most {most}", field=f"resources.{name}"
                    )

    def first_fire(self, now: datetime) -> datetime | None:
        """When the job first fires, or None if its window is already over."""
        if self.schedule is None:
            return max(self.run_at, now) if self.run_at else now
        return self.next_fire(after=now - timedelta(microseconds=1), anchor=now)

    def next_fire(self, after: datetime, anchor: datetime) -> datetime | None:
        """The fire after ``after``, inside the job's window; None past its end."""
        assert self.schedule is not None
        tz = cron.load_timezone(self.timezone)
        if self.start_at and after < self.start_at:
            after = self.start_at - timedelta(microseconds=1)
        nxt = cron.parse(self.schedule).next_after(after, tz, anchor=self.start_at or anchor)
        if nxt is None or (self.end_at and nxt > self.end_at):
            return None
        return nxt

    # -- storage -----------------------------------------------------------
    def payload(self) -> dict[str, Any]:
        """The part stored in ``jobs.spec`` (what runs, not when)."""
        return {
            "command": self.command,
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "image": self.image,
            "env": dict(self.env),
            "resources": {k: v for k, v in dataclasses.asdict(self.resources).items() if v},
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobSpec:
        p = row["spec"]
        return cls(
            name=row["name"],
            command=p.get("command"),
            steps=tuple(Step(**s) for s in p.get("steps", [])),
            schedule=row["schedule"],
            run_at=row["run_at"],
            timezone=row["timezone"],
            start_at=row["start_at"],
            end_at=row["end_at"],
            image=p.get("image"),
            env=p.get("env", {}),
            max_retries=row["max_retries"],
            timeout_seconds=row["timeout_seconds"],
            priority=row["priority"],
            concurrency_policy=row["concurrency_policy"],
            max_concurrency=row["max_concurrency"],
            resources=Resources(**p.get("resources", {})),
        )

    # -- user input --------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Any) -> JobSpec:
        """Build from JSON/YAML data, naming unknown or mistyped fields."""
        if not isinstance(data, dict):
            raise InvalidArgument("a job must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise InvalidArgument("unknown field", field=str(key))
        values: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:
                continue
            values[key] = _convert(key, value)
        return cls(**values)

    def replace(self, changes: dict[str, Any]) -> JobSpec:
        merged = JobSpec.from_mapping(changes)
        return dataclasses.replace(self, **{k: getattr(merged, k) for k in changes})


def _convert(key: str, value: Any) -> Any:
    def want(kind: type | tuple[type, ...], what: str) -> None:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise InvalidArgument(f"must be {what}", field=key)

    if key in ("name", "command", "schedule", "timezone", "image", "concurrency_policy"):
        want(str, "a string")
        return value
    if key in ("max_retries", "timeout_seconds", "priority", "max_concurrency"):
        want(int, "an integer")
        return value
    if key in ("run_at", "start_at", "end_at"):
        return parse_time(value, key)
    if key == "env":
        want(dict, "an object of strings")
        for k, v in value.items():
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                raise InvalidArgument("values must be strings", field=f"env.{k}")
        return {str(k): str(v) for k, v in value.items()}
    if key == "steps":
        want(list, "a list of {name, run}")
        steps = []
        for i, s in enumerate(value):
            if not isinstance(s, dict) or set(s) - {"name", "run"}:
                raise InvalidArgument("must be {name, run}", field=f"steps[{i}]")
            if not isinstance(s.get("run"), str):
                raise InvalidArgument("is required", field=f"steps[{i}].run")
            steps.append(Step(name=str(s.get("name") or f"step-{i + 1}"), run=s["run"]))
        return tuple(steps)
    if key == "resources":
        want(dict, "an object {cpus, memory_mb, pids}")
        unknown = set(value) - {"cpus", "memory_mb", "pids"}
        if unknown:
            raise InvalidArgument("unknown field", field=f"resources.{sorted(unknown)[0]}")
        for k, v in value.items():
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise InvalidArgument("must be a number", field=f"resources.{k}")
        return Resources(**value)
    raise InvalidArgument("unknown field", field=key)


def parse_time(value: Any, field_name: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidArgument("must be an RFC 3339 time", field=field_name) from exc
    else:
        raise InvalidArgument("must be an RFC 3339 time", field=field_name)
    if dt.tzinfo is None:
        raise InvalidArgument("must include a UTC offset (e.g. Z)", field=field_name)
    return dt.astimezone(UTC)
