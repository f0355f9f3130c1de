"""Resident containers (``container: "per_job"``): for jobs that fire faster
than the engine can make containers, one long-lived hardened container per
job (never shared between jobs or users), whose gate runs each fire as a
fresh process group in a fresh working directory, with the run's own
timeout, output, exit code, steps and checkpoint.

What it trades away (README): runs of a job share a container, so one run
can leave files in /tmp or a process that outlived its group for the next
(a run that leaves its group running retires the container); the container's
memory and pids limits are shared by the runs in it; and a run sees the
job's previous runs' kernel-level side effects (nothing of other jobs or
users). The container is replaced when it dies or goes idle.

The gate in each container, its script and the lines it says, is
``worker.resident_gate``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from typing import TYPE_CHECKING, Any

import docker.errors
import requests.exceptions
import structlog

from cronfleet.aio import Background, sleep_or, within
from worker.docker_run import CHECKPOINT_READ_EVERY
from worker.gate_scripts import script_env, shell_exports
from worker.pool import Profile
from worker.release_fifos import Fifo
from worker.resident_gate import RESIDENT_GATE_SCRIPT, Resident
from worker.runtime import (
    BeginsAtRelease,
    RunOutcome,
    RunSpec,
    cut_checkpoint,
    step_results,
)

if TYPE_CHECKING:
    from worker.docker_runtime import DockerRuntime

log = structlog.get_logger()
IDLE_SECONDS = 60.0  # a resident container with no run this long is removed


class ResidentContainers:
    """The long-lived containers of this worker's per_job jobs."""

    def __init__(self, runtime: DockerRuntime) -> None:
        self.runtime = runtime
        self._by_job: dict[str, list[Resident]] = {}
        self._creating: dict[tuple[str, Profile], asyncio.Task[None]] = {}
        self._removals = Background()  # held: a bare task may be collected before it ends

    def count(self) -> int:
        return sum(len(r) for r in self._by_job.values())

    async def arm(self, spec: RunSpec) -> ResidentRun:
        """Prepare the run in the job's container (making one is the slow part:
        a cold start). Runs of a job may overlap in it, each its own session."""
        profile = self.runtime.profile_of(spec)
        resident = self._usable(spec.job_id, profile)
        cold = resident is None
        while resident is None:
            await self._new(spec.job_id, profile)
            resident = self._usable(spec.job_id, profile)
        run = ResidentRun(self, spec, profile, cold, resident)
        run.prepare()
        return run

    async def ready(self, spec: RunSpec) -> bool:
        """The run's job has a container, made now if it had none; True if one
        was made (a cold start). Called outside the arming slots: a creation
        holds its caller for 0.2-2 s of the engine's time, and fifty new
        per_job jobs held every slot for ~8 s, so that other jobs' runs,
        their warm containers ready, could not arm and started late."""
        profile = self.runtime.profile_of(spec)
        if self._usable(spec.job_id, profile) is not None:
            return False
        await self._new(spec.job_id, profile)
        return True

    def _usable(self, job_id: str, profile: Profile) -> Resident | None:
        residents = self._by_job.get(job_id, [])
        for r in residents:
            if r.profile == profile and not self.runtime.fresh(profile, r.container.attrs.get("Image", "")):
                r.retiring = True  # a newer image was pulled (policy always): removed once empty
        return next((r for r in residents if not r.dead and not r.retiring and r.profile == profile), None)

    async def _new(self, job_id: str, profile: Profile) -> None:
        """One more container for the job. Runs arming together share a
        creation in flight: without that, a job's fires armed while its first
        container was being made each made their own, and fifty new
        every-second jobs asked the engine for three times as many."""
        key = (job_id, profile)
        creating = self._creating.get(key)
        if creating is None:
            creating = asyncio.create_task(self._start(job_id, profile))
            self._creating[key] = creating
            creating.add_done_callback(lambda _: self._creating.pop(key, None))
        await asyncio.shield(creating)

    async def _start(self, job_id: str, profile: Profile) -> None:
        resident = await self.runtime.make(self._create, profile, job_id)
        resident.ended = self.done
        resident.reader = asyncio.create_task(resident.read())
        self._by_job.setdefault(job_id, []).append(resident)

    def _create(self, profile: Profile, job_id: str) -> Resident:
        folder = self.runtime.fifos.folder()
        try:
            container, sock = self.runtime.create_container(
                profile, RESIDENT_GATE_SCRIPT, kind="resident", job_id=job_id, read_stderr=True, fifos=folder
            )
        except Exception:
            self.runtime.fifos.remove(folder)
            raise
        sock.setblocking(False)
        return Resident(container, sock, job_id, profile, fifos=folder)

    def done(self, resident: Resident, dirty: bool) -> None:
        """A run in ``resident`` ended (dirty: it left something running), or
        the container died: retire it, and remove it once no run is in it."""
        if resident not in self._by_job.get(resident.job_id, []):
            return  # removed already
        resident.runs = max(0, resident.runs - 1)
        resident.last_used = time.monotonic()
        resident.retiring = resident.retiring or dirty
        if resident.dead or (resident.retiring and resident.runs == 0):
            self._removals.spawn(self._remove(resident))

    async def _remove(self, resident: Resident) -> None:
        residents = self._by_job.get(resident.job_id, [])
        if resident in residents:
            residents.remove(resident)
        if not residents:
            self._by_job.pop(resident.job_id, None)
        if resident.reader is not None:
            resident.reader.cancel()
        with contextlib.suppress(OSError):
            resident.sock.close()
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            await self.runtime.call(resident.container.remove, force=True)
        self.runtime.fifos.remove(resident.fifos)

    async def run(self, stop: asyncio.Event) -> None:
        """Remove containers that died or have been idle for IDLE_SECONDS."""
        while not stop.is_set():
            await sleep_or(stop, 5.0)
            now = time.monotonic()
            for residents in list(self._by_job.values()):
                for r in list(residents):
                    if r.runs == 0 and (r.dead or r.retiring or now - r.last_used > IDLE_SECONDS):
                        await self._remove(r)

    async def close(self) -> None:
        every = [r for residents in self._by_job.values() for r in residents]
        await asyncio.gather(*(self._remove(r) for r in every), return_exceptions=True)
        await self._removals.settle()  # the retired ones on their way out


class ResidentRun(BeginsAtRelease):
    """One run in its job's resident container, prepared at arming."""

    def __init__(
        self, owner: ResidentContainers, spec: RunSpec, profile: Profile, cold: bool, resident: Resident
    ) -> None:
        self.owner = owner
        self.spec = spec
        self.profile = profile
        self.resident = resident
        self.nonce = secrets.token_hex(8)
        self.cold: bool | None = cold
        self.container_id = str(resident.container.id)
        self.killed_for = ""
        self.released = False
        self._checkpoint: bytes | None = None
        self._checkpoint_read_at = 0.0
        self.exited_at: float | None = None  # when the gate saw the run exit
        # The run's release FIFO in the container's folder (None: "go" on stdin).
        self.go: Fifo | None = None

    @property
    def output_ended(self) -> bool:
        return self.exited_at is not None

    @property
    def _files(self) -> str:
        return f"/tmp/.cronfleet-{self.nonce}"

    def prepare(self) -> None:
        """Hand the gate the run (environment, script, checkpoint) to prepare."""
        resident = self.resident
        if resident.fifos:  # first: if it fails, nothing is counted or claimed yet
            self.go = self.owner.runtime.fifos.fifo(resident.fifos, self.nonce)
        resident.inbox[self.nonce] = asyncio.Queue()
        resident.runs += 1
        self.owner.runtime.claims.record(f"{resident.container.id}.{self.nonce}", self.spec)
        self.owner.runtime.watch(self.container_id, self.nonce)
        env = dict(self.spec.env) | script_env(self.spec, f"{self._files}.checkpoint")
        resident.send(f"prep {self.nonce} {shell_exports(env | {'CRONFLEET_NONCE': self.nonce})}")

    def _say(self, word: str) -> None:
        if self.go is not None:
            self.go.say(word.encode())
        else:
            self.resident.send(f"{word} {self.nonce}")

    async def release(self) -> None:
        self._say("go")
        self.released = True

    async def wait(self) -> RunOutcome:
        resident = self.resident
        try:
            said, code = await self._until_end(resident)
            fenced = self.owner.runtime.unwatch(self.container_id, self.nonce)
            output = b"".join(base64.b64decode(s[4:]) for s in said if s.startswith("out "))
            self.spec.spool_path.parent.mkdir(parents=True, exist_ok=True)
            self.spec.spool_path.write_bytes(output)
            outcome = (
                RunOutcome("lost", None, f"killed by the worker's watchdog: {fenced}")
                if fenced
                else self._outcome(code)
            )
            outcome.ended_at = self.exited_at
            if self.spec.steps:
                report = "\n".join(s[7:] for s in said if s.startswith("report "))
                outcome.steps = step_results(report, self.spec.steps)
            left = b"".join(base64.b64decode(s[11:]) for s in said if s.startswith("checkpoint "))
            left = left or self._checkpoint or b""
            if left:
                outcome.checkpoint, outcome.checkpoint_truncated = cut_checkpoint(left)
            if "dirty" in said and not outcome.error:
                outcome.error = "left processes running: its container is replaced"
            return outcome
        finally:
            if self.go is not None:
                self.go.close()
            resident.inbox.pop(self.nonce, None)
            self.owner.runtime.claims.forget(f"{resident.container.id}.{self.nonce}")
            self.owner.runtime.unwatch(self.container_id, self.nonce)

    async def _until_end(self, resident: Resident) -> tuple[list[str], int | None]:
        """The gate's lines for this run up to its end; the exit code (None if the
        container died). The run's timeout is kept here."""
        inbox = resident.inbox[self.nonce]
        said: list[str] = []
        deadline = time.monotonic() + self.spec.timeout_seconds
        while True:
            left = deadline - time.monotonic()
            try:
                line = await within(inbox.get(), max(left, 0.01))
            except TimeoutError:
                await self.kill("timed_out")
                deadline = time.monotonic() + self.owner.runtime.settings.kill_grace_seconds + 10
                continue
            if line == "died":
                return said, None
            if line.startswith("end "):
                return said, int(line[4:])
            if line.startswith("exited "):
                self.exited_at = time.time()
                continue
            if not line.startswith("pid "):
                said.append(line)

    def _outcome(self, code: int | None) -> RunOutcome:
        if code is None:
            return RunOutcome("failed", None, "the job's container died")
        if not self.released:  # dropped before its time: it never ran
            return RunOutcome(self.killed_for or "cancelled", None, f"stopped: {self.killed_for}")
        if self.killed_for == "timed_out":
            return RunOutcome("timed_out", code, f"exceeded timeout of {self.spec.timeout_seconds}s")
        if self.killed_for:
            return RunOutcome(self.killed_for, code, f"stopped: {self.killed_for}")
        return RunOutcome("succeeded" if code == 0 else "failed", code)

    async def kill(self, reason: str) -> None:
        """Not released: dropped (its prepared shell exits). Running: SIGTERM
        to its process group, the grace, then SIGKILL (through the engine)."""
        self.killed_for = self.killed_for or reason
        if not self.released:
            with contextlib.suppress(OSError):
                self._say("drop")
            return
        pid = self.resident.pids.get(self.nonce)
        if pid is None:
            return  # ended already
        await self.read_checkpoint(fresh=True)
        await self._exec(["kill", "-TERM", f"-{pid}"])
        grace = self.owner.runtime.settings.kill_grace_seconds
        asyncio.get_running_loop().call_later(
            grace, lambda: self.owner.runtime.spawn(self._signal_group("-KILL", pid))
        )

    async def _signal_group(self, signal: str, pid: int) -> None:
        await self._exec(["kill", signal, f"-{pid}"])

    async def snapshot(self) -> None:
        """Copy the run's output so far (a file in the container) to the spool."""
        result = await self._exec(["cat", f"{self._files}.out"])
        if result is not None and result.exit_code == 0:
            self.spec.spool_path.parent.mkdir(parents=True, exist_ok=True)
            self.spec.spool_path.write_bytes(bytes(result.output or b""))

    async def read_checkpoint(self, fresh: bool = False) -> bytes | None:
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
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            return await runtime.call(resident.container.exec_run, command, user=runtime.settings.docker_user)
        return None
