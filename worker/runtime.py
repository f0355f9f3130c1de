"""Runtimes: how a worker prepares a run ahead of time and releases it.

A runtime arms a run (everything slow done before the fire time: spawn,
container start), then releases it at the exact instant; the command itself
sits behind a gate until then. The Docker runtime is its own module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cronfleet.config import Settings

# The gate: the shell blocks reading one line from stdin, then runs the
# command itself (eval: no second shell to start at the fire time) with stdin
# closed and stderr merged into stdout, in order. The command travels in an
# environment variable, so no quoting of user text is ever needed.
GATE_SCRIPT = 'read -r _cronfleet_go || exit 125; exec </dev/null 2>&1; eval "$CRONFLEET_SCRIPT"'

# Steps run in order in one shell; the first failure stops the run. Each
# step's output is framed by markers that name it and give its exit code and
# duration (from /proc/uptime, in centiseconds: plain sh has no sub-second
# clock). parse_step_results() reads the markers back.
STEPS_SCRIPT = """\
_cs() { read -r _up _rest < /proc/uptime; echo "${_up%.*}${_up#*.}"; }
i=0
while [ "$i" -lt "$CRONFLEET_STEP_COUNT" ]; do
  eval "name=\\$CRONFLEET_STEP_NAME_$i; run=\\$CRONFLEET_STEP_RUN_$i"
  echo "==> step $name"
  t0=$(_cs)
  /bin/sh -c "$run"
  rc=$?
  d=$(( $(_cs) - t0 ))
  printf '==> step %s exited %d in %d.%02ds\\n' "$name" "$rc" $((d / 100)) $((d % 100))
  [ "$rc" -eq 0 ] || exit "$rc"
  i=$((i + 1))
done
"""
_STEP_DONE = re.compile(r"^==> step (.*) exited (\d+) in (\d+)\.(\d\d)s$")


def parse_step_results(log_text: str) -> list[dict[str, float | int | str]]:
    """[{name, exit_code, duration_ms}] for each step that ran, from the markers."""
    results: list[dict[str, float | int | str]] = []
    for line in log_text.splitlines():
        m = _STEP_DONE.match(line)
        if m:
            secs, cents = int(m.group(3)), int(m.group(4))
            results.append(
                {
                    "name": m.group(1),
                    "exit_code": int(m.group(2)),
                    "duration_ms": float(secs * 1000 + cents * 10),
                }
            )
    return results


BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass
class RunSpec:
    execution_id: int
    job_id: str
    attempt: int
    command: str
    steps: list[tuple[str, str]]
    env: dict[str, str]
    timeout_seconds: int
    spool_path: Path
    owner_id: str = ""
    image: str = ""
    cpus: float = 0.0
    memory_mb: int = 0
    pids: int = 0


class RunRejected(Exception):
    """The run cannot start at all (e.g. ``image_not_found: IMAGE``); the
    message is the reason reported on the execution."""


@dataclass
class RunOutcome:
    status: str  # succeeded | failed | timed_out | cancelled | lost
    exit_code: int | None
    error: str = ""


def script_env(spec: RunSpec) -> dict[str, str]:
    """The variables that carry the command (or steps) into the gate."""
    env = {
        "CRONFLEET_JOB_ID": spec.job_id,
        "CRONFLEET_EXECUTION_ID": str(spec.execution_id),
        "CRONFLEET_ATTEMPT": str(spec.attempt),
    }
    if spec.steps:
        env["CRONFLEET_SCRIPT"] = STEPS_SCRIPT
        env["CRONFLEET_STEP_COUNT"] = str(len(spec.steps))
        for i, (name, run) in enumerate(spec.steps):
            env[f"CRONFLEET_STEP_NAME_{i}"] = name
            env[f"CRONFLEET_STEP_RUN_{i}"] = run
    else:
        env["CRONFLEET_SCRIPT"] = spec.command
    return env


class ArmedRun(Protocol):
    async def release(self) -> None: ...
    async def wait(self) -> RunOutcome: ...
    async def kill(self, reason: str) -> None: ...

    async def snapshot(self) -> None:
        """Bring the spool file up to date with the output so far."""


class Runtime(Protocol):
    name: str
    # True when runs compete with each other's releases for a shared engine
    # (Docker): the worker then keeps follow-up work out of fire instants
    # (worker.pacing.ReleaseWindows). A process's release is a pipe write.
    paced: bool

    async def arm(self, spec: RunSpec) -> ArmedRun: ...


@dataclass
class _ProcessRun:
    proc: asyncio.subprocess.Process
    spec: RunSpec
    grace_seconds: float
    killed_for: str = ""
    released: bool = False
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    async def release(self) -> None:
        assert self.proc.stdin is not None
        self.released = True
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()

    async def wait(self) -> RunOutcome:
        try:
            rc = await asyncio.wait_for(self.proc.wait(), self.spec.timeout_seconds)
        except TimeoutError:
            await self.kill("timed_out")
            rc = await self.proc.wait()
        if self.killed_for == "timed_out":
            return RunOutcome("timed_out", rc, f"exceeded timeout of {self.spec.timeout_seconds}s")
        if self.killed_for:
            return RunOutcome(self.killed_for, rc, f"stopped: {self.killed_for}")
        if rc == 0:
            return RunOutcome("succeeded", 0)
        if rc < 0:
            return RunOutcome("failed", 128 - rc, f"killed by signal {-rc}")
        return RunOutcome("failed", rc)

    async def snapshot(self) -> None:
        return None  # the process writes straight into the spool file

    async def kill(self, reason: str) -> None:
        """SIGTERM the run's process group, then SIGKILL after the grace."""
        if self.proc.returncode is not None:
            return
        self.killed_for = self.killed_for or reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), self.grace_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


class ProcessRuntime:
    """``sh -c`` in its own process group on the worker host. No isolation:
    for trusted commands and machines without Docker."""

    name = "process"
    paced = False

    def __init__(self, grace_seconds: float = 5.0) -> None:
        self.grace_seconds = grace_seconds

    async def arm(self, spec: RunSpec) -> ArmedRun:
        env = {k: os.environ[k] for k in BASE_ENV_KEYS if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["HOME"] = str(spec.spool_path.parent)
        env.update(spec.env)
        env.update(script_env(spec))
        spec.spool_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.spool_path, "wb") as spool:  # noqa: ASYNC230 - local file, opened once
            proc = await asyncio.create_subprocess_exec(
                *_DIE_WITH_WORKER,
                "/bin/sh",
                "-c",
                GATE_SCRIPT,
                stdin=asyncio.subprocess.PIPE,
                stdout=spool,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=str(spec.spool_path.parent),
                start_new_session=True,
            )
        return _ProcessRun(proc, spec, self.grace_seconds)


# setpriv (util-linux) sets the parent-death signal and execs the gate, so a
# run dies with its worker instead of outliving it; Python's preexec_fn would
# do the same but is unsafe in a process with threads (gRPC has some).
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_WORKER = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []


class NoopRuntime:
    """Runs nothing; succeeds at release. For throughput benchmarks."""

    name = "noop"
    paced = False

    async def arm(self, spec: RunSpec) -> ArmedRun:
        return _NoopRun()  # no output, so nothing to spool or upload


class _NoopRun:
    async def release(self) -> None:
        return None

    async def snapshot(self) -> None:
        return None

    async def wait(self) -> RunOutcome:
        return RunOutcome("succeeded", 0)

    async def kill(self, reason: str) -> None:
        return None


def _watch_children_with_pidfds() -> None:
    """asyncio's default child watcher starts a thread per child process;
    a pidfd watcher waits on all of them from the event loop."""
    watcher_cls = getattr(asyncio, "PidfdChildWatcher", None)
    if watcher_cls is None or sys.version_info >= (3, 12):  # 3.12+ already uses pidfds
        return
    watcher = watcher_cls()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)


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
        _watch_children_with_pidfds()
        return ProcessRuntime(settings.kill_grace_seconds)
    if name == "noop":
        return NoopRuntime()
    raise SystemExit(f"unknown runtime {name!r}; known: auto, docker, process, noop")
