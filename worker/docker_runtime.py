"""The Docker runtime: each run in its own hardened container.

Arming creates and starts the container with the command held behind the
gate (the entrypoint blocks reading one line), so releasing it at the fire
time is one write (on a FIFO the container sees, worker.release_fifos, or on
its attached stdin), not a cold start.

Every container: all capabilities dropped, no-new-privileges, the engine's
default seccomp profile, a read-only root with small tmpfs mounts for /tmp and
the working directory, a non-root user, pids/memory/CPU limits, network
"none" unless the worker's policy names another, no bind mounts but its
release FIFOs' folder (read-only, only its own), labels with
the job, execution and attempt. ``recover()`` finds what a previous life of
this worker left behind (worker.docker_claims).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
import structlog

from cronfleet.aio import Background
from cronfleet.config import Settings
from cronfleet.v1 import dispatch_pb2
from worker.docker_claims import (
    CHECKPOINT_PATH,
    LABEL,
    Claims,
    Recovered,
    recover_containers,
)
from worker.docker_run import DockerRun
from worker.gate_scripts import POOL_GATE_SCRIPT, run_payload, script_env
from worker.images import ImagePulls
from worker.pool import ContainerPool, Pooled, Profile
from worker.release_fifos import MOUNT, Fifo, ReleaseFifos
from worker.resident import ResidentContainers
from worker.runtime import ArmedRun, RunRejected, RunSpec
from worker.watchdog import Watchdog

log = structlog.get_logger()
T = TypeVar("T")


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
    follow_up_uses_engine = True
    arm_slots: int | None = None
    writes_files = True

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
        default = self._profile(None, None, None, None)
        self._forecasts: dict[str, dict[Profile, int]] = {}
        self.images = ImagePulls(self.client, settings)
        self.spawn = Background().spawn  # removals, kills after a grace
        self.residents = ResidentContainers(self)
        self.pool = ContainerPool(
            self._create_pooled,
            self._remove,
            default,
            settings.pool_floor,
            settings.pool_max,
            ready=lambda profile: self.images.ready(profile.image),
            parallel=settings.pool_refill_parallel,
        )
        # Kills the containers holding runs when this worker dies or freezes
        # (worker.watchdog): they would go on while the runs are run again.
        self.fence_dir = str(Path(settings.state_dir).absolute() / "spool" / worker_id / "fenced")
        self.watchdog = (
            Watchdog(settings.watchdog_seconds, self.fence_dir) if settings.watchdog_seconds > 0 else None
        )
        self.images.arrived = lambda image: self.pool.poke()
        gates = Path(settings.docker_release_dir or Path(settings.state_dir) / "gates").absolute()
        self.fifos = ReleaseFifos(gates / worker_id, settings.docker_user)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a short engine call off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            self._calls, functools.partial(fn, *args, **kwargs)
        )

    async def wait_for_exit(self, container: Any, timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._waits, functools.partial(container.wait, timeout=timeout))

    def profile_of(self, spec: RunSpec) -> Profile:
        r = spec.resources
        return self._profile(spec.image, r.cpus, r.memory_mb, r.pids)

    def _profile(
        self, image: str | None, cpus: float | None, memory_mb: int | None, pids: int | None
    ) -> Profile:
        """A container profile, the worker's defaults where a job set nothing."""
        s = self.settings
        return Profile(
            image=image or s.docker_image,
            cpus=float(cpus or s.default_cpus),
            memory_mb=int(memory_mb or s.default_memory_mb),
            pids=int(pids or s.default_pids),
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
        await asyncio.gather(self._fill_pool(stop, quiet), self.residents.run(stop), self._beat(stop))

    async def _fill_pool(self, stop: asyncio.Event, quiet: Callable[[], Awaitable[None]]) -> None:
        # The probe first (it may wait for the image, as the pool would), so
        # the pool's containers are released the fast way from the start.
        if self.settings.docker_release_fifos and not self.fifos.enabled:
            await self.probe_release_fifos()
        await self.pool.run(stop, quiet)

    async def probe_release_fifos(self) -> None:
        """Release through FIFOs if a container sees this worker's folder
        (the engine shares its files): one probe container compares a token
        (by its exit code: a container's logs can come back empty when it
        exits at once)."""
        token = self.fifos.reset()
        image = self.settings.docker_image
        try:
            await self.images.ensure(image)
            await self.call(  # raises ContainerError unless the token matched
                self.client.containers.run,
                image,
                ["/bin/sh", "-c", f'read -r t < {MOUNT}/token && [ "$t" = {token} ]'],
                remove=True,
                volumes={self.fifos.probe_folder: {"bind": MOUNT, "mode": "ro"}},
                user=self.settings.docker_user,
                network_mode="none",
                read_only=True,
                cap_drop=["ALL"],
                labels=self.labels(self.pool.default) | {LABEL: "probe"},
            )
            self.fifos.enabled = True
        except Exception as exc:  # any failure: released through the engine, as it always can be
            log.warning("release_fifos_probe_failed", error=str(exc))
        log.info("release_path", fifos=self.fifos.enabled, folder=str(self.fifos.root))

    async def _beat(self, stop: asyncio.Event) -> None:
        if self.watchdog is not None:
            await self.watchdog.keep_alive(stop)

    async def close(self) -> None:
        await asyncio.gather(self.pool.close(), self.residents.close())
        self.images.close()
        if self.watchdog is not None:
            self.watchdog.stop()

    def watch(self, container_id: str, nonce: str = "") -> None:
        """The container holds a run now: the watchdog kills it if we die."""
        if self.watchdog is not None:
            self.watchdog.watch_container(container_id, nonce)

    def unwatch(self, container_id: str, nonce: str = "") -> str | None:
        """The run is over; why the watchdog killed it, if it did."""
        return self.watchdog.unwatch_container(container_id, nonce) if self.watchdog else None

    async def prepare(self, spec: RunSpec) -> bool:
        """The run's image, pulled by the worker's policy if the engine lacks
        it (worker.images), and a per_job run's container, made if its job
        has none; True if the run waited for either (a cold start). Raises
        RunRejected (``image_pull_failed: ...``)."""
        pulled = await self.images.ensure(self.profile_of(spec).image)
        if spec.container == "per_job":
            return await self.residents.ready(spec) or pulled
        return pulled

    async def make(self, create: Callable[..., T], profile: Profile, *args: Any) -> T:
        """``create(profile, *args)`` in a thread; if the engine has lost the
        image since it was last seen (removed behind the worker's back), it
        is pulled (policy permitting) and the create tried once more."""
        try:
            return await self.call(create, profile, *args)
        except _ImageMissing:
            self.images.forget(profile.image)
            if self.images.policy == "never":
                raise
        await self.images.pull(profile.image)
        return await self.call(create, profile, *args)

    def fresh(self, profile: Profile, image_id: str) -> bool:
        """False when the policy is ``always`` and a newer image of the
        profile's name was pulled since a container was made from ``image_id``."""
        if self.images.policy != "always":
            return True
        latest = self.images.image_id(profile.image)
        return latest is None or latest == image_id

    async def recover(self) -> list[Recovered]:
        """What a previous life of this worker left (worker.docker_claims)."""
        return await self.call(recover_containers, self)

    def expect(self, source: str, profiles: list[dispatch_pb2.ProfileCount]) -> None:
        """Each scheduler's forecast, summed into the pool's targets."""
        self._forecasts[source] = {
            self._profile(p.image, p.cpus, p.memory_mb, p.pids): p.count for p in profiles
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
        if pooled is not None and not self.fresh(profile, pooled.container.attrs.get("Image", "")):
            self.spawn(self._remove(pooled))  # of an older image
            pooled = None
        cold = pooled is None
        if pooled is None:
            pooled = await self.make(self._create, profile)
        try:
            self.claims.record(pooled.container.id, spec)
            self.watch(pooled.container.id)
            pooled.sock.sendall(run_payload(dict(spec.env) | script_env(spec, CHECKPOINT_PATH)))
        except OSError:
            # A pooled container that died while idle: drop it, start this run cold.
            await self._remove(pooled)
            if cold:
                raise
            pooled = await self.make(self._create, profile)
            cold = True
            self.claims.record(pooled.container.id, spec)
            self.watch(pooled.container.id)
            pooled.sock.sendall(run_payload(dict(spec.env) | script_env(spec, CHECKPOINT_PATH)))
        return DockerRun(self, pooled, spec, cold=cold)

    async def _create_pooled(self, profile: Profile) -> Pooled:
        try:
            return await self.call(self._create, profile)
        except _ImageMissing:
            self.images.forget(profile.image)  # the pool waits for it again (images.ready)
            raise

    async def _remove(self, pooled: Pooled) -> None:
        with contextlib.suppress(OSError):
            pooled.sock.close()
        self.release_gone(pooled.go)
        self.claims.forget(pooled.container.id)
        self.unwatch(pooled.container.id)
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
        folder = self.fifos.folder()
        go: Fifo | None = None
        try:
            go = self.fifos.fifo(folder, "go") if folder else None
            container, sock = self.create_container(profile, POOL_GATE_SCRIPT, kind="pool", fifos=folder)
        except Exception:
            if go is not None:
                go.close()
            self.fifos.remove(folder)
            raise
        return Pooled(container, sock, profile, go)

    def release_gone(self, fifo: Fifo | None) -> None:
        """A container's release FIFO and its folder, once the container is gone."""
        if fifo is not None:
            fifo.close()
            self.fifos.remove(os.path.dirname(fifo.path))

    def create_container(
        self,
        profile: Profile,
        gate: str,
        kind: str,
        job_id: str = "",
        read_stderr: bool = False,
        fifos: str | None = None,
    ) -> tuple[Any, socket.socket]:
        """A hardened container of ``profile`` running ``gate``, started, with its
        stdin attached (and its stderr, for a gate that talks back) and its
        folder of release FIFOs, if any, at /gate."""
        s = self.settings
        kwargs: dict[str, Any] = {}
        if fifos:
            kwargs["volumes"] = {fifos: {"bind": MOUNT, "mode": "ro"}}
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
            raise _ImageMissing(f"image_not_found: {profile.image}") from exc
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


class _ImageMissing(RunRejected):
    """The engine has no such image (``image_not_found: IMAGE``)."""
