"""One run of the Docker runtime in its own container (worker.docker_runtime
arms it): released by a line on its release FIFO or attach socket, waited on
through the engine, its output, steps and checkpoint read back, the container removed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import docker.errors
import requests.exceptions

from worker.docker_claims import CHECKPOINT_PATH, outcome_for
from worker.runtime import (
    BeginsAtRelease,
    RunOutcome,
    RunSpec,
    checkpoint_from_report,
    cut_checkpoint,
    step_results,
)

if TYPE_CHECKING:
    from worker.docker_runtime import DockerRuntime
    from worker.pool import Pooled

CHECKPOINT_READ_EVERY = 5.0


class DockerRun(BeginsAtRelease):
    """One run in its own container, armed (created, started, blocked at the
    gate) and released with one write."""

    def __init__(self, runtime: DockerRuntime, pooled: Pooled, spec: RunSpec, cold: bool) -> None:
        self.runtime = runtime
        self.container = pooled.container
        self.sock = pooled.sock
        self.go = pooled.go
        self.spec = spec
        self.cold: bool | None = cold  # the pool had no container of its profile
        self.container_id = str(self.container.id)
        self.killed_for = ""
        self.released = False
        self._checkpoint: bytes | None = None
        self._checkpoint_read_at = 0.0
        self._sigkill: asyncio.TimerHandle | None = None  # a kill's SIGKILL, after the grace
        self.output_ended = False  # not known without asking the engine

    async def release(self) -> None:
        # The socket stays open until the run is waited on: closing the
        # attach stream makes the engine tear it down at once, which
        # doubled the time fifty containers released together took to start.
        if self.go is not None:
            self.go.say(b"go")
        else:
            self.sock.sendall(b"go\n")
        self.released = True

    async def wait(self) -> RunOutcome:
        with contextlib.suppress(OSError):
            self.sock.close()
        try:
            try:
                result = await self.runtime.wait_for_exit(self.container, self.spec.timeout_seconds)
            except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
                await self.kill("timed_out")
                result = await self.runtime.wait_for_exit(self.container, 60)
            if self._sigkill is not None:
                self._sigkill.cancel()  # it exited within the grace
            await self.runtime.call(self.container.reload)
            oom = bool(self.container.attrs["State"].get("OOMKilled"))
            fenced = self.runtime.unwatch(self.container_id)
            outcome = (
                RunOutcome("lost", None, f"killed by the worker's watchdog: {fenced}")
                if fenced
                else outcome_for(int(result.get("StatusCode", -1)), oom, self.killed_for)
            )
            await self.runtime.call(self._save_logs)
            report = (await self.runtime.call(self.container.logs, stdout=False, stderr=True)).decode(
                errors="replace"
            )
            if self.spec.steps:
                outcome.steps = step_results(report, self.spec.steps)
            # The gate writes the checkpoint as it exits; a run stopped by
            # SIGKILL cannot, and the last one read from it stands.
            left = checkpoint_from_report(report) or self._checkpoint
            if left is not None:
                outcome.checkpoint, outcome.checkpoint_truncated = cut_checkpoint(left)
            return outcome
        finally:
            await self.runtime.call(self._remove)

    async def snapshot(self) -> None:
        with contextlib.suppress(docker.errors.APIError):
            await self.runtime.call(self._save_logs)

    async def read_checkpoint(self, fresh: bool = False) -> bytes | None:
        """Read through the engine (an exec), at most every CHECKPOINT_READ_EVERY seconds
        unless ``fresh``: a checkpoint lives on the container's tmpfs, gone once it stops."""
        now = time.monotonic()
        if not fresh and now - self._checkpoint_read_at < CHECKPOINT_READ_EVERY:
            return self._checkpoint
        self._checkpoint_read_at = now
        try:
            result = await self.runtime.call(
                self.container.exec_run, ["cat", CHECKPOINT_PATH], user=self.runtime.settings.docker_user
            )
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return self._checkpoint
        if result.exit_code == 0 and result.output:
            self._checkpoint = bytes(result.output)
        return self._checkpoint

    def _save_logs(self) -> None:
        self.spec.spool_path.parent.mkdir(parents=True, exist_ok=True)
        # stdout is the run's output (its stderr merged in by the gate);
        # stderr carries the steps' results (see worker.runtime).
        self.spec.spool_path.write_bytes(self.container.logs(stdout=True, stderr=False))

    def _remove(self) -> None:
        with contextlib.suppress(docker.errors.APIError):
            self.container.remove(force=True)
        self.runtime.release_gone(self.go)
        self.runtime.claims.forget(self.container.id)
        self.runtime.unwatch(self.container_id)

    async def kill(self, reason: str) -> None:
        """SIGTERM, the grace period, then SIGKILL. A run never
        released has nothing of the job running: SIGKILL at once, so a
        withdrawn run is gone in milliseconds, not after the grace (the gate,
        PID 1, ignores SIGTERM)."""
        self.killed_for = self.killed_for or reason
        if not self.released:
            with contextlib.suppress(OSError):
                self.sock.close()
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                await self.runtime.call(self.container.kill)
            return
        await self.read_checkpoint(fresh=True)  # the shell as PID 1 may not get to write it
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            await self.runtime.call(self.container.kill, signal=self._stop_signal())
        # SIGKILL after the grace from a timer, not `docker stop`, which holds
        # one of the engine calls' eight threads for the grace: fifty runs
        # stopped at once queued behind each other, 5 s a round.
        if self._sigkill is None:
            grace = self.runtime.settings.kill_grace_seconds
            self._sigkill = asyncio.get_running_loop().call_later(
                grace, lambda: self.runtime.spawn(self._kill_now())
            )

    def _stop_signal(self) -> str:
        """The image's STOPSIGNAL, as `docker stop` would send, else SIGTERM."""
        config = self.container.attrs.get("Config") or {}
        return str(config.get("StopSignal") or "SIGTERM")

    async def _kill_now(self) -> None:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            await self.runtime.call(self.container.kill)
