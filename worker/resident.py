"""Resident containers (``container: "per_job"``): for jobs that fire faster
than the engine can make containers, one long-lived hardened container per
job (never shared between jobs or users), whose gate runs each fire as a
fresh process group in a fresh working directory, with the run's own
timeout, output, exit code, steps and checkpoint.

What it trades away (README): runs of a job share a container, so one run
can leave files in /tmp or a process that outlived its group for the next
(a run that leaves its group running retires the container); the container's
memory and pids limits are shared by the runs in it over its life; and a run
sees the job's previous runs' kernel-level side effects (nothing of other
jobs or users). The container is replaced when it dies or goes idle.

The gate speaks on the container's stderr, one line per fact, each starting
with the run's nonce (unguessable, so a run cannot forge its end):
``NONCE pid P``, ``NONCE report LINE`` (the steps script's results),
``NONCE checkpoint BASE64``, ``NONCE out BASE64`` (the output, once it
ended), ``NONCE dirty``, ``NONCE end EXIT_CODE``. Nothing but live logs and
kills goes through the engine while a run lives.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker.errors
import requests.exceptions
import structlog

from worker.pool import Profile
from worker.runtime import (
    ReleaseWithdrawn,
    RunOutcome,
    RunSpec,
    cut_checkpoint,
    run_payload,
    script_env,
    step_results,
)

if TYPE_CHECKING:
    from worker.docker_runtime import DockerRuntime

log = structlog.get_logger()
IDLE_SECONDS = 60.0  # a resident container with no run this long is removed
CHECKPOINT_READ_EVERY = 5.0

# One run after another. The run's variables are sourced in a subshell, so
# nothing of one run's environment reaches the next; the command runs under
# setsid (its own process group) with stdin closed, stdout and stderr into a
# file on /tmp, and the steps' report on fd 3.
RESIDENT_GATE_SCRIPT = """\
while :; do
  read -r _payload || exit 0
  read -r _go || exit 0
  (
    printf %s "$_payload" | base64 -d > /tmp/.cronfleet-run && . /tmp/.cronfleet-run
    rm -f /tmp/.cronfleet-run
    _n=$CRONFLEET_NONCE; _f=/tmp/.cronfleet-$_n; _cp=$CRONFLEET_CHECKPOINT
    printf %s "${CRONFLEET_CHECKPOINT_SEED:-}" | base64 -d > "$_cp" 2>/dev/null || : > "$_cp"
    unset CRONFLEET_CHECKPOINT_SEED
    mkdir -p "/work/run-$_n" && cd "/work/run-$_n" || exit 1
    setsid sh -c 'exec 3>"$1.report"; eval "$CRONFLEET_SCRIPT"' sh "$_f" </dev/null >"$_f.out" 2>&1 &
    _pid=$!
    echo "$_n pid $_pid" >&2
    wait "$_pid"; _rc=$?
    if [ -s "$_cp" ]; then
      echo "$_n checkpoint $(head -c 65537 "$_cp" | base64 | tr -d '\\n')" >&2
    fi
    [ -f "$_f.report" ] && sed "s/^/$_n report /" "$_f.report" >&2
    head -c 16777216 "$_f.out" | base64 | sed "s/^/$_n out /" >&2
    kill -0 "-$_pid" 2>/dev/null && echo "$_n dirty" >&2
    cd /work && rm -rf "/work/run-$_n" "$_cp" "$_f.report" "$_f.out"
    echo "$_n end $_rc" >&2
  )
done
"""


@dataclass
class Resident:
    """One job's long-lived container, and the lines its gate has said per run."""

    container: Any
    sock: socket.socket
    job_id: str
    profile: Profile
    busy: bool = False
    dead: bool = False
    last_used: float = field(default_factory=time.monotonic)
    inbox: dict[str, asyncio.Queue[str]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    # Told when a run's end is read (dirty or not), or the container died:
    # the container is free for the job's next run from that moment, not
    # from when the worker gets round to waiting on the run.
    ended: Callable[[Resident, bool], None] | None = None
    _dirty: set[str] = field(default_factory=set)

    async def read(self) -> None:
        """Demultiplex the attach stream (8-byte frame headers) and route the
        stderr lines to the run whose nonce starts them."""
        loop = asyncio.get_running_loop()
        buffer, text = b"", ""
        try:
            while True:
                chunk = await loop.sock_recv(self.sock, 65536)
                if not chunk:
                    break
                buffer += chunk
                while len(buffer) >= 8:
                    kind, size = buffer[0], struct.unpack(">I", buffer[4:8])[0]
                    if len(buffer) < 8 + size:
                        break
                    payload, buffer = buffer[8 : 8 + size], buffer[8 + size :]
                    if kind == 2:  # stderr: the gate's lines
                        text += payload.decode(errors="replace")
                        *lines, text = text.split("\n")
                        for line in lines:
                            nonce, _, rest = line.partition(" ")
                            if nonce in self.inbox:
                                self.inbox[nonce].put_nowait(rest)
                                self._heard(nonce, rest)
        except OSError:
            pass
        finally:
            self.dead = True
            for queue in self.inbox.values():
                queue.put_nowait("died")
            if self.ended is not None:
                self.ended(self, True)

    def _heard(self, nonce: str, said: str) -> None:
        if said == "dirty":
            self._dirty.add(nonce)
        elif said.startswith("end ") and self.ended is not None:
            self.ended(self, nonce in self._dirty)
            self._dirty.discard(nonce)


class ResidentContainers:
    """The long-lived containers of this worker's per_job jobs."""

    def __init__(self, runtime: DockerRuntime) -> None:
        self.runtime = runtime
        self._by_job: dict[str, list[Resident]] = {}
        self._creating: dict[tuple[str, Profile], asyncio.Task[None]] = {}
        self._freed: dict[str, asyncio.Event] = {}  # a job's container is free again

    def count(self) -> int:
        return sum(len(r) for r in self._by_job.values())

    async def arm(self, spec: RunSpec) -> ResidentRun:
        """Make sure the job has a container (creating one is the slow part: a
        cold start); which container runs it is chosen at release, so a run
        waiting for its time holds none."""
        profile = self.runtime.profile_of(spec)
        cold = not any(not r.dead and r.profile == profile for r in self._by_job.get(spec.job_id, []))
        if cold:
            await self._new(spec.job_id, profile)
        return ResidentRun(self, spec, profile, cold)

    async def take(self, spec: RunSpec, profile: Profile, withdrawn: Callable[[], bool]) -> Resident:
        """The job's container for a run being released, marked busy. One run at
        a time: a fire due while the previous run is still in the container
        waits for it (runs late) rather than making another container, which
        under load made the engine slower and the next run later still."""
        while True:
            if withdrawn():
                raise ReleaseWithdrawn()
            residents = [r for r in self._by_job.get(spec.job_id, []) if not r.dead and r.profile == profile]
            idle = next((r for r in residents if not r.busy), None)
            if idle is not None:
                idle.busy = True
                return idle
            if not residents:
                await self._new(spec.job_id, profile)
                continue
            freed = self._freed.setdefault(spec.job_id, asyncio.Event())
            freed.clear()  # set by done(), or by a cancel of a run waiting here
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(freed.wait(), 1.0)

    async def _new(self, job_id: str, profile: Profile) -> None:
        """One more container for the job. Runs arming or released together
        share a creation in flight: without that, a job's fires armed while its
        first container was being made each made their own, and fifty new
        every-second jobs asked the engine for three times as many."""
        key = (job_id, profile)
        creating = self._creating.get(key)
        if creating is None:
            creating = asyncio.create_task(self._start(job_id, profile))
            self._creating[key] = creating
            creating.add_done_callback(lambda _: self._creating.pop(key, None))
        await asyncio.shield(creating)

    async def _start(self, job_id: str, profile: Profile) -> None:
        resident = await self.runtime.call(self._create, job_id, profile)
        resident.ended = self.done
        resident.reader = asyncio.create_task(resident.read())
        self._by_job.setdefault(job_id, []).append(resident)

    def _create(self, job_id: str, profile: Profile) -> Resident:
        container, sock = self.runtime.create_container(
            profile, RESIDENT_GATE_SCRIPT, kind="resident", job_id=job_id, read_stderr=True
        )
        sock.setblocking(False)
        return Resident(container, sock, job_id, profile)

    def done(self, resident: Resident, retire: bool) -> None:
        """A run in ``resident`` ended (or it died): free it for the job's next
        run, or remove it if the run left something running."""
        if resident not in self._by_job.get(resident.job_id, []):
            return  # removed already
        resident.busy = False
        resident.last_used = time.monotonic()
        self.runtime.claims.forget(resident.container.id)
        if retire or resident.dead:
            resident.dead = True
            asyncio.get_running_loop().create_task(self._remove(resident))
        self.wake(resident.job_id)

    def wake(self, job_id: str) -> None:
        """Runs of the job waiting for its container look again."""
        freed = self._freed.get(job_id)
        if freed is not None:
            freed.set()

    async def _remove(self, resident: Resident) -> None:
        residents = self._by_job.get(resident.job_id, [])
        if resident in residents:
            residents.remove(resident)
        if not residents:
            self._by_job.pop(resident.job_id, None)
            self._freed.pop(resident.job_id, None)
        if resident.reader is not None:
            resident.reader.cancel()
        with contextlib.suppress(OSError):
            resident.sock.close()
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            await self.runtime.call(resident.container.remove, force=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Remove containers that died or have been idle for IDLE_SECONDS."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)
            now = time.monotonic()
            for residents in list(self._by_job.values()):
                for r in list(residents):
                    if not r.busy and (r.dead or now - r.last_used > IDLE_SECONDS):
                        await self._remove(r)

    async def close(self) -> None:
        every = [r for residents in self._by_job.values() for r in residents]
        await asyncio.gather(*(self._remove(r) for r in every), return_exceptions=True)


class ResidentRun:
    """One run in its job's resident container (taken at release)."""

    def __init__(self, owner: ResidentContainers, spec: RunSpec, profile: Profile, cold: bool) -> None:
        self.owner = owner
        self.spec = spec
        self.profile = profile
        self.nonce = secrets.token_hex(8)
        self.cold: bool | None = cold
        self.container_id = ""
        self.resident: Resident | None = None
        self.killed_for = ""
        self.pid: int | None = None
        self._checkpoint: bytes | None = None
        self._checkpoint_read_at = 0.0

    @property
    def _files(self) -> str:
        return f"/tmp/.cronfleet-{self.nonce}"

    async def release(self) -> None:
        """Take an idle container of the job and hand it the run and its go together."""
        resident = await self.owner.take(self.spec, self.profile, lambda: bool(self.killed_for))
        self.resident, self.container_id = resident, str(resident.container.id)
        resident.inbox[self.nonce] = asyncio.Queue()
        self.owner.runtime.claims.record(resident.container.id, self.spec)
        env = dict(self.spec.env) | script_env(self.spec, f"{self._files}.checkpoint")
        resident.sock.sendall(run_payload(env | {"CRONFLEET_NONCE": self.nonce}) + b"go\n")

    async def wait(self) -> RunOutcome:
        resident = self.resident
        if resident is None:  # withdrawn before its time: it never ran
            return RunOutcome(self.killed_for or "cancelled", None, f"stopped: {self.killed_for}")
        try:
            said, code = await self._until_end(resident)
            output = b"".join(base64.b64decode(s[4:]) for s in said if s.startswith("out "))
            self.spec.spool_path.parent.mkdir(parents=True, exist_ok=True)
            self.spec.spool_path.write_bytes(output)
            outcome = self._outcome(code)
            if self.spec.steps:
                report = "\n".join(s[7:] for s in said if s.startswith("report "))
                outcome.steps = step_results(report, self.spec.steps)
            left = next((base64.b64decode(s[11:]) for s in said if s.startswith("checkpoint ")), None)
            left = left or self._checkpoint
            if left is not None:
                outcome.checkpoint, outcome.checkpoint_truncated = cut_checkpoint(left)
            if "dirty" in said and not outcome.error:
                outcome.error = "left processes running: its container is replaced"
            return outcome
        finally:
            # The container was freed (or retired) as the end was read.
            resident.inbox.pop(self.nonce, None)

    async def _until_end(self, resident: Resident) -> tuple[list[str], int | None]:
        """The gate's lines for this run up to its end; the exit code (None if the
        container died). The run's timeout is kept here."""
        inbox = resident.inbox[self.nonce]
        said: list[str] = []
        deadline = time.monotonic() + self.spec.timeout_seconds
        while True:
            left = deadline - time.monotonic()
            try:
                line = await asyncio.wait_for(inbox.get(), max(left, 0.01))
            except TimeoutError:
                await self.kill("timed_out")
                deadline = time.monotonic() + self.owner.runtime.settings.kill_grace_seconds + 10
                continue
            if line == "died":
                return said, None
            if line.startswith("pid "):
                self.pid = int(line[4:])
            elif line.startswith("end "):
                return said, int(line[4:])
            else:
                said.append(line)

    def _outcome(self, code: int | None) -> RunOutcome:
        if code is None:
            return RunOutcome("failed", None, "the job's container died")
        if self.killed_for == "timed_out":
            return RunOutcome("timed_out", code, f"exceeded timeout of {self.spec.timeout_seconds}s")
        if self.killed_for:
            return RunOutcome(self.killed_for, code, f"stopped: {self.killed_for}")
        return RunOutcome("succeeded" if code == 0 else "failed", code)

    async def kill(self, reason: str) -> None:
        """SIGTERM the run's process group, the grace, then SIGKILL (through the engine)."""
        self.killed_for = self.killed_for or reason
        if self.resident is None or self.pid is None:
            self.owner.wake(self.spec.job_id)  # if its release waits for the container
            return  # not released (nothing runs), or not started yet
        await self.read_checkpoint(fresh=True)
        await self._exec(["kill", "-TERM", f"-{self.pid}"])
        grace = self.owner.runtime.settings.kill_grace_seconds
        pid = self.pid
        asyncio.get_running_loop().call_later(
            grace, lambda: asyncio.ensure_future(self._exec(["kill", "-KILL", f"-{pid}"]))
        )

    async def snapshot(self) -> None:
        """Copy the run's output so far (a file in the container) to the spool."""
        result = await self._exec(["cat", f"{self._files}.out"])
        if result is not None and result.exit_code == 0:
            self.spec.spool_path.parent.mkdir(parents=True, exist_ok=True)
            self.spec.spool_path.write_bytes(bytes(result.output or b""))

    async def read_checkpoint(self, fresh: bool = False) -> bytes | None:
        if self.resident is None:
            return None
        now = time.monotonic()
        if not fresh and now - self._checkpoint_read_at < CHECKPOINT_READ_EVERY:
            return self._checkpoint
        self._checkpoint_read_at = now
        result = await self._exec(["cat", f"{self._files}.checkpoint"])
        if result is not None and result.exit_code == 0 and result.output:
            self._checkpoint = bytes(result.output)
        return self._checkpoint

    async def _exec(self, command: list[str]) -> Any:
        runtime, resident = self.owner.runtime, self.resident
        if resident is None:
            return None
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            return await runtime.call(resident.container.exec_run, command, user=runtime.settings.docker_user)
        return None
