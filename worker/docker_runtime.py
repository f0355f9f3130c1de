"""The Docker runtime: each run in its own hardened container.

Arming creates and starts the container with the command held behind the
gate (the entrypoint blocks reading one line from stdin, attached here), so
releasing it at the fire time is one write on a socket, not a cold start.

Every container: all capabilities dropped, no-new-privileges, the engine's
default seccomp profile, a read-only root with small tmpfs mounts for /tmp and
the working directory, a non-root user, pids/memory/CPU limits, network
"none" unless the worker's policy names another, no bind mounts, labels with
the job, execution and attempt. ``recover()`` finds what a previous life of
this worker left behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import json
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
import structlog

from cronfleet.config import Settings
from cronfleet.v1 import dispatch_pb2
from worker.pool import ContainerPool, Pooled, Profile
from worker.resident import ResidentContainers
from worker.runtime import (
    POOL_GATE_SCRIPT,
    ArmedRun,
    RunOutcome,
    RunRejected,
    RunSpec,
    checkpoint_from_report,
    cut_checkpoint,
    run_payload,
    script_env,
    step_results,
)

log = structlog.get_logger()
LABEL = "cronfleet"
# $CRONFLEET_CHECKPOINT inside the container (its /tmp is a tmpfs).
CHECKPOINT_PATH = "/tmp/cronfleet.checkpoint"
CHECKPOINT_READ_EVERY = 5.0
T = TypeVar("T")


@dataclass
class Recovered:
    """A container found at start-up, left by this worker before it restarted."""

    execution_id: int
    attempt: int
    job_id: str
    owner_id: str
    outcome: RunOutcome
    spool_path: Path


@dataclass(frozen=True)
class Claim:
    """Whose run a container holds. Pooled containers are created before any
    run is known, so this lives beside the worker, not on the container."""

    execution_id: int
    attempt: int
    job_id: str
    owner_id: str


class Claims:
    """One small file per container holding a run, so a restarted worker knows."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def record(self, container_id: str, spec: RunSpec) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        claim = Claim(spec.execution_id, spec.attempt, spec.job_id, spec.owner_id)
        (self.folder / container_id).write_text(json.dumps(dataclasses.asdict(claim)))

    def read(self, key: str) -> Claim | None:
        try:
            return Claim(**json.loads((self.folder / key).read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def of(self, container_id: str) -> dict[str, Claim]:
        """Every claim on a container: its run's (key: the container id), or
        the runs in a per_job container (key: ``CONTAINER.NONCE``)."""
        found: dict[str, Claim] = {}
        for path in self.folder.glob(f"{container_id}*") if self.folder.is_dir() else []:
            if path.name == container_id or path.name.startswith(f"{container_id}."):
                claim = self.read(path.name)
                if claim is not None:
                    found[path.name] = claim
        return found

    def forget(self, container_id: str) -> None:
        (self.folder / container_id).unlink(missing_ok=True)


def engine_answers() -> bool:
    """True when a Docker engine (DOCKER_HOST or the local socket) responds."""
    try:
        client = docker.from_env(timeout=3)
        ok = bool(client.ping())
        client.close()
        return ok
    except Exception:  # any failure to reach an engine means "no engine"
        return False


class DockerRuntime:
    name = "docker"
    paced = True

    def __init__(self, settings: Settings, worker_id: str) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.client = docker.from_env(timeout=max(60, settings.kill_grace_seconds + 30))
        # The SDK blocks. A run's wait blocks for the run's whole life, so the
        # waits get their own threads (one per slot); everything else (create,
        # start, logs, remove) shares a small pool that waits can never starve.
        self._waits = ThreadPoolExecutor(settings.capacity + 4, thread_name_prefix="docker-wait")
        self._calls = ThreadPoolExecutor(8, thread_name_prefix="docker-call")
        self.claims = Claims(Path(settings.state_dir).absolute() / "claims" / worker_id)
        default = Profile(
            settings.docker_image, settings.default_cpus, settings.default_memory_mb, settings.default_pids
        )
        self._forecasts: dict[str, dict[Profile, int]] = {}
        self.residents = ResidentContainers(self)
        self.pool = ContainerPool(
            self._create_pooled, self._remove, default, settings.pool_floor, settings.pool_max
        )

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a short engine call off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            self._calls, functools.partial(fn, *args, **kwargs)
        )

    async def wait_for_exit(self, container: Any, timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._waits, functools.partial(container.wait, timeout=timeout))

    def profile_of(self, spec: RunSpec) -> Profile:
        s, r = self.settings, spec.resources
        return Profile(
            image=spec.image or s.docker_image,
            cpus=float(r.cpus or s.default_cpus),
            memory_mb=int(r.memory_mb or s.default_memory_mb),
            pids=int(r.pids or s.default_pids),
        )

    def labels(self, profile: Profile) -> dict[str, str]:
        return {
            LABEL: "pool",
            # Two clusters may share an engine and reuse worker ids.
            f"{LABEL}.cluster": self.settings.etcd_prefix,
            f"{LABEL}.worker_id": self.worker_id,
            f"{LABEL}.profile": profile.label,
        }

    async def keep_warm(self, stop: asyncio.Event, quiet: Callable[[], Awaitable[None]]) -> None:
        await asyncio.gather(self.pool.run(stop, quiet), self.residents.run(stop))

    async def close(self) -> None:
        await self.pool.close()
        await self.residents.close()

    def expect(self, source: str, profiles: list[dispatch_pb2.ProfileCount]) -> None:
        """Each scheduler's forecast, summed into the pool's targets."""
        s = self.settings
        self._forecasts[source] = {
            Profile(
                image=p.image or s.docker_image,
                cpus=float(p.cpus or s.default_cpus),
                memory_mb=int(p.memory_mb or s.default_memory_mb),
                pids=int(p.pids or s.default_pids),
            ): p.count
            for p in profiles
        }
        total: collections.Counter[Profile] = collections.Counter()
        for forecast in self._forecasts.values():
            total.update(forecast)
        self.pool.expect(dict(total))

    async def arm(self, spec: RunSpec) -> ArmedRun:
        """Take a warm container of the run's profile (or make one: a cold
        start), record whose run it holds, and hand it the run. A per_job
        job's run goes to its resident container instead."""
        if spec.container == "per_job":
            return await self.residents.arm(spec)
        profile = self.profile_of(spec)
        pooled = self.pool.take(profile)
        cold = pooled is None
        if pooled is None:
            pooled = await self.call(self._create, profile)
        try:
            self.claims.record(pooled.container.id, spec)
            pooled.sock.sendall(run_payload(dict(spec.env) | script_env(spec, CHECKPOINT_PATH)))
        except OSError:
            # A pooled container that died while idle: drop it, start this run cold.
            await self._remove(pooled)
            if cold:
                raise
            pooled = await self.call(self._create, profile)
            cold = True
            self.claims.record(pooled.container.id, spec)
            pooled.sock.sendall(run_payload(dict(spec.env) | script_env(spec, CHECKPOINT_PATH)))
        return _DockerRun(self, pooled.container, pooled.sock, spec, cold=cold)

    async def _create_pooled(self, profile: Profile) -> Pooled:
        return await self.call(self._create, profile)

    async def _remove(self, pooled: Pooled) -> None:
        with contextlib.suppress(OSError):
            pooled.sock.close()
        self.claims.forget(pooled.container.id)
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            await self.call(pooled.container.remove, force=True)

    def _tmpfs_options(self) -> str:
        """A small tmpfs owned by the run's user: this engine ignores ``mode=``
        on tmpfs mounts (the image's folder decides), ``uid=``/``gid=`` hold."""
        s = self.settings
        options = f"rw,nosuid,nodev,size={s.docker_tmpfs_mb}m,mode=1777"
        uid, _, gid = s.docker_user.partition(":")
        if uid.isdigit():
            options += f",uid={uid},gid={gid if gid.isdigit() else uid}"
        return options

    def _create(self, profile: Profile) -> Pooled:
        """A warm container of ``profile``, started and blocked at the pool gate."""
        container, sock = self.create_container(profile, POOL_GATE_SCRIPT, kind="pool")
        return Pooled(container, sock, profile)

    def create_container(
        self, profile: Profile, gate: str, kind: str, job_id: str = "", read_stderr: bool = False
    ) -> tuple[Any, socket.socket]:
        """A hardened container of ``profile`` running ``gate``, started, with its
        stdin attached (and its stderr, for a gate that talks back)."""
        s = self.settings
        kwargs: dict[str, Any] = {}
        if s.docker_runtime_name:
            kwargs["runtime"] = s.docker_runtime_name
        labels = self.labels(profile) | {LABEL: kind}
        if job_id:  # a resident container is its job's alone
            labels[f"{LABEL}.job_id"] = job_id
            kwargs["log_config"] = {"type": "none"}  # it talks over the attach stream only
        try:
            container = self.client.containers.create(
                profile.image,
                ["/bin/sh", "-c", gate],
                stdin_open=True,
                user=s.docker_user,
                working_dir="/work",
                read_only=True,
                tmpfs={path: self._tmpfs_options() for path in ("/tmp", "/work")},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                network_mode=s.docker_network,
                pids_limit=profile.pids,
                mem_limit=f"{profile.memory_mb}m",
                memswap_limit=f"{profile.memory_mb}m",
                nano_cpus=int(profile.cpus * 1e9),
                labels=labels,
                **kwargs,
            )
        except docker.errors.ImageNotFound as exc:
            raise RunRejected(f"image_not_found: {profile.image}") from exc
        except docker.errors.APIError as exc:
            raise RunRejected(f"container_create_failed: {exc.explanation or exc}") from exc
        params = {"stdin": 1, "stream": 1} | ({"stderr": 1} if read_stderr else {})
        try:
            sock = self.client.api.attach_socket(container.id, params=params)
            container.start()
        except Exception:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            raise
        return container, getattr(sock, "_sock", sock)

    async def recover(self) -> list[Recovered]:
        return await self.call(self._recover)

    def _recover(self) -> list[Recovered]:
        """What a previous life of this worker left: runs it held are reported
        (finished) or killed (lost); idle pooled containers are removed."""
        found: list[Recovered] = []
        mine = [f"{LABEL}.worker_id={self.worker_id}", f"{LABEL}.cluster={self.settings.etcd_prefix}"]
        for c in self.client.containers.list(all=True, filters={"label": mine}, ignore_removed=True):
            claims = self.claims.of(c.id)
            try:
                if not claims:
                    c.remove(force=True)  # warm, never handed a run
                elif c.labels.get(LABEL) == "resident":
                    found += self._recover_resident(c, list(claims.values()))
                else:
                    found.append(self._recover_one(c, claims[c.id]))
            except (docker.errors.APIError, KeyError) as exc:  # e.g. removed meanwhile
                log.warning("container_recovery_failed", container=c.id, error=str(exc))
            for key in claims:
                self.claims.forget(key)
        if found:
            log.warning("containers_recovered", worker_id=self.worker_id, count=len(found))
        return found

    def _recover_resident(self, c: Any, claims: list[Claim]) -> list[Recovered]:
        """A per_job container: its runs' results went with the worker that
        waited on them, so each run in it is lost (and retried by its policy)."""
        with contextlib.suppress(docker.errors.APIError):
            c.remove(force=True)
        spool_dir = Path(self.settings.state_dir).absolute() / "recovered"
        spool_dir.mkdir(parents=True, exist_ok=True)
        out = []
        for claim in claims:
            spool = spool_dir / f"{c.id}.{claim.execution_id}.log"
            spool.write_bytes(b"")
            outcome = RunOutcome("lost", None, "worker restarted while the run was live")
            out.append(
                Recovered(claim.execution_id, claim.attempt, claim.job_id, claim.owner_id, outcome, spool)
            )
        return out

    def _recover_one(self, c: Any, claim: Claim) -> Recovered:
        spool = Path(self.settings.state_dir).absolute() / "recovered" / f"{c.id}.log"
        spool.parent.mkdir(parents=True, exist_ok=True)
        checkpoint: bytes | None = None
        if c.status == "exited":
            code = int(c.attrs["State"]["ExitCode"])
            outcome = _outcome_for(code, bool(c.attrs["State"].get("OOMKilled")), "")
            with contextlib.suppress(docker.errors.APIError):
                checkpoint = checkpoint_from_report(
                    c.logs(stdout=False, stderr=True).decode(errors="replace")
                )
        else:
            with contextlib.suppress(docker.errors.APIError):  # its checkpoint, before it goes
                found = c.exec_run(["cat", CHECKPOINT_PATH], user=self.settings.docker_user)
                checkpoint = bytes(found.output) if found.exit_code == 0 and found.output else None
            with contextlib.suppress(docker.errors.APIError):
                c.kill()
            outcome = RunOutcome("lost", None, "worker restarted while the run was live")
        if checkpoint is not None:
            outcome.checkpoint, outcome.checkpoint_truncated = cut_checkpoint(checkpoint)
        with contextlib.suppress(docker.errors.APIError):
            spool.write_bytes(c.logs(stdout=True, stderr=False))
        with contextlib.suppress(docker.errors.APIError):
            c.remove(force=True)
        return Recovered(
            execution_id=claim.execution_id,
            attempt=claim.attempt,
            job_id=claim.job_id,
            owner_id=claim.owner_id,
            outcome=outcome,
            spool_path=spool,
        )


def _outcome_for(code: int, oom: bool, killed_for: str) -> RunOutcome:
    if oom:
        return RunOutcome("failed", code, "oom_killed")
    if killed_for == "timed_out":
        return RunOutcome("timed_out", code, "timed_out")
    if killed_for:
        return RunOutcome(killed_for, code, f"stopped: {killed_for}")
    return RunOutcome("succeeded" if code == 0 else "failed", code)


class _DockerRun:
    def __init__(
        self, runtime: DockerRuntime, container: Any, sock: socket.socket, spec: RunSpec, cold: bool
    ) -> None:
        self.runtime = runtime
        self.container = container
        self.sock = sock
        self.spec = spec
        self.cold: bool | None = cold  # the pool had no container of its profile
        self.container_id = str(container.id)
        self.killed_for = ""
        self.released = False
        self._checkpoint: bytes | None = None
        self._checkpoint_read_at = 0.0

    async def release(self) -> None:
        # The socket stays open until the run is waited on: closing the
        # attach stream makes the engine tear it down at once, which
        # doubled the time fifty containers released together took to start.
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
            await self.runtime.call(self.container.reload)
            oom = bool(self.container.attrs["State"].get("OOMKilled"))
            outcome = _outcome_for(int(result.get("StatusCode", -1)), oom, self.killed_for)
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
        self.runtime.claims.forget(self.container.id)

    async def kill(self, reason: str) -> None:
        """SIGTERM, the grace period, then SIGKILL (docker stop). A run never
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
            await self.runtime.call(
                self.container.stop, timeout=int(self.runtime.settings.kill_grace_seconds)
            )
