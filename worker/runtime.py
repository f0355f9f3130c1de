"""Runtimes: how a worker prepares a run ahead of time and releases it.

A runtime arms a run (everything slow done before the fire time: spawn,
container start), then releases it at the exact instant; the command itself
sits behind a gate until then (a process run armed after its instant is
forked running: worker.launcher). This module holds what every runtime shares:
the run's spec, its outcome, what a run and a runtime are (the gate and steps
scripts are worker.gate_scripts). The runtimes are
``process_runtime`` (and the no-op one) and ``docker_runtime``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from google.protobuf import timestamp_pb2

from cronfleet.codec import proto
from cronfleet.config import Settings
from cronfleet.models import HttpCall, JobSpec, Resources, Step, reveal_env
from cronfleet.records import StepResult
from cronfleet.v1 import dispatch_pb2

MAX_CHECKPOINT = 64 * 1024


@dataclass
class RunSpec:
    """One run, as a runtime needs it. Built from the assignment by
    :meth:`from_assignment` and nowhere else, and never changed after (its
    cached ``spool_path`` and ``run_dir`` would go stale): not frozen only
    because a frozen dataclass sets each of its seventeen fields through
    ``object.__setattr__`` (2.4 us a run; a no-op run's whole life on the
    loop is ~40 us)."""

    execution_id: int
    job_id: str
    attempt: int
    spool: str | Path  # where the output goes (spool_path); its folder is the run's own
    command: str = ""
    steps: tuple[Step, ...] = ()
    # Secret values among them in the clear: never printed (repr) nor logged.
    env: dict[str, str] = field(default_factory=dict, repr=False)
    timeout_seconds: int = 3600
    owner_id: str = ""
    image: str = ""  # "": the worker's default image
    resources: Resources = field(default_factory=Resources)  # None: the worker's default
    http: HttpCall | None = None  # an HTTP job: the worker calls this instead of running a command
    checkpoint: bytes = b""  # what the previous attempt left, to start from
    container: str = "per_run"  # docker: a fresh container, or the job's long-lived one
    fire: timestamp_pb2.Timestamp | None = None  # the fire this run is for; retries keep it
    # When this attempt may start (epoch seconds; a retry's is after its fire's).
    # None: not known, so a runtime holds it until it is released.
    fire_at: float | None = None
    refused: str = ""  # the scheduler could not prepare it: run nothing, fail with this

    @classmethod
    def from_assignment(
        cls, assignment: dispatch_pb2.Assignment, spool_root: Path, run_dir: Path | None = None
    ) -> RunSpec:
        """``run_dir``: a folder kept for it (worker.run_folders); else one
        named for the run in ``spool_root``."""
        job = _job_of(assignment)
        refused, env = assignment.refused, {}
        if not refused:
            try:
                env = reveal_env(job.env)
            except ValueError as exc:  # a secret sent without its value
                refused = f"secret_unavailable: {exc}"
        # A folder named for the run, as text: parsed into a path (2.7 us) only
        # when asked for, and a run of a runtime that writes no files never asks.
        spool = (
            run_dir / SPOOL_FILE
            if run_dir is not None
            else f"{spool_root}/{assignment.execution_id}-{assignment.attempt}/{SPOOL_FILE}"
        )
        return cls(
            execution_id=assignment.execution_id,
            job_id=assignment.job_id,
            attempt=assignment.attempt,
            spool=spool,
            command=job.command or "",
            steps=job.steps,
            env=env,
            timeout_seconds=job.timeout_seconds,
            owner_id=assignment.owner_id,
            image=job.image or "",
            resources=job.resources,
            http=job.http,
            checkpoint=assignment.checkpoint,
            container=job.container,
            fire=assignment.scheduled_at,
            fire_at=proto.to_epoch(assignment.fire_at),
            refused=refused,
        )

    @functools.cached_property
    def spool_path(self) -> Path:
        return Path(self.spool)

    @functools.cached_property
    def run_dir(self) -> Path:
        return self.spool_path.parent  # asked a dozen times a run: made once

    @property
    def scheduled_at(self) -> str:
        """The fire in RFC 3339 (UTC), for the command's environment ("" if unknown)."""
        return _rfc3339(self.fire.seconds, self.fire.nanos) if self.fire is not None else ""


# A run's folder holds its output and, for a process run with steps, the
# gate's report (its checkpoint file is in the runtime's private folder;
# a Docker run's in the container); the command may leave files of its own.
# Made and removed (or kept for a later run) by worker.run_folders.
SPOOL_FILE = "output.log"
REPORT_FILE = "steps.report"
CHECKPOINT_FILE = "checkpoint"


_JOBS: collections.OrderedDict[bytes, JobSpec] = collections.OrderedDict()
JOBS_KEPT = 4096


def _job_of(assignment: dispatch_pb2.Assignment) -> JobSpec:
    """The assignment's job, decoded once per distinct message: the runs of
    one job version carry the same bytes, and decoding the message field by
    field cost more than the rest of a noop run (a frozen record, shared)."""
    key = assignment.job.SerializeToString(deterministic=True)
    job = _JOBS.get(key)
    if job is None:
        job = _JOBS[key] = proto.spec_from_proto(assignment.job)
        if len(_JOBS) > JOBS_KEPT:
            _JOBS.popitem(last=False)
    return job


class RunRejected(Exception):
    """The run cannot start at all (e.g. ``image_not_found: IMAGE``); the
    message is the reason reported on the execution."""


@dataclass
class RunOutcome:
    status: str  # succeeded | failed | timed_out | cancelled | lost
    exit_code: int | None
    error: str = ""
    steps: tuple[StepResult, ...] = ()  # each step that ran, for a job with steps
    checkpoint: bytes | None = None  # what the run left in $CRONFLEET_CHECKPOINT
    checkpoint_truncated: bool = False
    ended_at: float | None = None  # when it ended, if the runtime knows better than "now"


def cut_checkpoint(data: bytes) -> tuple[bytes, bool]:
    """At most MAX_CHECKPOINT bytes, and whether any were cut."""
    return data[:MAX_CHECKPOINT], len(data) > MAX_CHECKPOINT


def checkpoint_from_report(report: str) -> bytes | None:
    """The checkpoint the gate wrote on the report channel, if it wrote one."""
    for line in report.splitlines():
        if line.startswith("checkpoint "):
            try:
                return base64.b64decode(line[len("checkpoint ") :].strip())
            except ValueError:
                return None
    return None


def step_results(report: str, steps: tuple[Step, ...]) -> tuple[StepResult, ...]:
    """The steps script's fd-3 report ("INDEX EXIT_CODE CENTISECONDS" lines) as results."""
    results = []
    for line in report.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts) and int(parts[0]) < len(steps):
            index, code, centis = (int(p) for p in parts)
            results.append(StepResult(name=steps[index].name, exit_code=code, duration_ms=centis * 10.0))
    return tuple(results)


def _rfc3339(seconds: int, nanos: int) -> str:
    """To the millisecond when the time has a fraction (of a microsecond or
    more), else to the second: 2026-12-02T12:00:00.250Z, 2026-12-02T12:00:00Z.
    From the Timestamp's integers (a datetime and its isoformat: 1.3 us more a run)."""
    text = _utc_second(seconds)
    return f"{text}.{nanos // 1_000_000:03d}Z" if nanos >= 1000 else f"{text}Z"


@functools.lru_cache(maxsize=256)
def _utc_second(seconds: int) -> str:
    """Runs due together share their second: formatted once (gmtime and
    strftime were 2% of a `true` run's worker time)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


class ArmedRun(Protocol):
    # True: prepared from nothing at arming (no warm container of its profile);
    # None: the runtime keeps nothing warm, and a run armed after its time is cold.
    cold: bool | None
    container_id: str  # the container it runs in; "" for runtimes without one
    # Set when arming started it (worker.launcher: a process run armed after
    # its instant is forked running); it then has no release, and
    # :meth:`withhold` may still keep it from beginning.
    started_at: float | None

    async def release(self) -> None: ...
    async def wait(self) -> RunOutcome: ...
    async def kill(self, reason: str) -> None: ...

    def withhold(self) -> bool:
        """A run started as it armed (``started_at``): keep it from beginning
        if it has not begun yet (then ``started_at`` is None again); whether
        it was kept from it."""

    @property
    def output_ended(self) -> bool:
        """Its output can no longer grow (its process has exited): a live copy
        now would be replaced at once by the final one. False: not known."""

    async def snapshot(self) -> None:
        """Bring the spool file up to date with the output so far."""

    async def read_checkpoint(self) -> bytes | None:
        """What the live run has written to $CRONFLEET_CHECKPOINT so far (None: unknown)."""


class BeginsAtRelease:
    """The runs of every runtime but a process run forked running
    (worker.process_run): none begins before its release."""

    started_at: float | None = None

    def withhold(self) -> bool:
        return False


class Runtime(Protocol):
    name: str
    # True when runs compete with each other's releases for a shared engine
    # (Docker) or for the worker's cores (processes): the worker then keeps
    # follow-up work out of fire instants (worker.pacing.ReleaseWindows).
    paced: bool
    # True when following a run up (waiting on it, reading and removing its
    # container) is work for the engine that arms the next runs (Docker):
    # even a late run's follow-up then waits for the release windows. False:
    # a run armed after its time goes on at once (worker.lifecycle).
    follow_up_uses_engine: bool
    # False when its runs have no folder, no output and no checkpoint (the
    # no-op runtime): the worker then takes no kept folder for them, sets up
    # no live publishing, and uploads nothing.
    writes_files: bool
    # How many runs may arm at once; None: the worker's arm_concurrency
    # (arming a container is engine work, a few at a time).
    arm_slots: int | None

    async def arm(self, spec: RunSpec) -> ArmedRun: ...

    async def keep_warm(self, stop: asyncio.Event, quiet: Callable[[], Awaitable[None]]) -> None:
        """Keep whatever is prepared ahead of runs (the docker pool) until ``stop``."""

    async def close(self) -> None:
        """Give back what the runtime holds (idle pooled containers)."""

    def expect(self, source: str, profiles: list[dispatch_pb2.ProfileCount]) -> None:
        """``source`` (a scheduler) says these runs are due soon (the warm pool's forecast)."""


def open_runtime(settings: Settings) -> Runtime:
    """The runtime ``settings.runtime`` names; "auto" is docker when an engine answers."""
    name = settings.runtime
    if name == "auto":
        from worker.docker_runtime import engine_answers

        name = "docker" if engine_answers() else "process"
    if name == "docker":
        from worker.docker_runtime import DockerRuntime

        return DockerRuntime(settings, settings.worker_id)
    if name == "process":
        from worker.process_runtime import ProcessRuntime

        fence_dir = Path(settings.state_dir).absolute() / "spool" / settings.worker_id / "fenced"
        return ProcessRuntime(
            settings.kill_grace_seconds, settings.watchdog_seconds, str(fence_dir), settings.process_launch
        )
    if name == "noop":
        from worker.noop_runtime import NoopRuntime

        return NoopRuntime()
    raise SystemExit(f"unknown runtime {name!r}; known: auto, docker, process, noop")
