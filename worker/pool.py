"""The warm pool: generic hardened containers per run profile, created,
started and blocked at the gate ahead of any fire, holding nothing of any
job. Arming a run takes one (a write on its socket, not a 0.4 s create), so a
run known a second ahead is as on time as one known a minute ahead. Each
container runs one run and is removed; the pool refills in the background,
outside the fire instants, up to its targets: a floor for the default
profile (immediate jobs) plus what the schedulers say is coming.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from cronfleet.aio import sleep_or, wait_for_event
from worker.release_fifos import Fifo

log = structlog.get_logger()
REFILL_IDLE = 0.5  # seconds between looks when every target is met


@dataclass(frozen=True)
class Profile:
    """What a container is created with and cannot change cheaply afterwards."""

    image: str
    cpus: float
    memory_mb: int
    pids: int

    @property
    def label(self) -> str:
        return f"{self.image}|{self.cpus:g}|{self.memory_mb}|{self.pids}"


@dataclass
class Pooled:
    """A started container blocked at the pool gate, the attached stdin it
    reads the run from, and the FIFO that releases it (None: released by a
    line on the stdin too)."""

    container: Any
    sock: socket.socket
    profile: Profile
    go: Fifo | None = None


class ContainerPool:
    def __init__(
        self,
        create: Callable[[Profile], Awaitable[Pooled]],
        remove: Callable[[Pooled], Awaitable[None]],
        default: Profile,
        floor: int,
        most: int,
        ready: Callable[[Profile], bool] = lambda profile: True,
        parallel: int = 3,
    ) -> None:
        self._create = create
        # Whether a profile's containers can be made now (its image is here;
        # a missing one is being pulled meanwhile, and poke() says when).
        self._ready = ready
        self._remove = remove
        self.default = default
        self.floor = floor  # idle containers of the default profile, always
        self.most = most  # idle containers of all profiles together, at most
        self.parallel = parallel  # containers made at once (settings.pool_refill_parallel)
        self._idle: dict[Profile, collections.deque[Pooled]] = collections.defaultdict(collections.deque)
        self._expected: dict[Profile, int] = {}
        self._creating: collections.Counter[Profile] = collections.Counter()
        # Creations under way: a stop that cancels the refill mid-create must
        # not leave the container it was making behind (close() removes it).
        self._inflight: set[asyncio.Future[Pooled]] = set()
        self._wake = asyncio.Event()

    def idle(self, profile: Profile | None = None) -> int:
        if profile is not None:
            return len(self._idle[profile])
        return sum(len(q) for q in self._idle.values())

    def take(self, profile: Profile) -> Pooled | None:
        """An idle container of ``profile``, or None (the run starts cold)."""
        queue = self._idle[profile]
        found = queue.popleft() if queue else None
        self._wake.set()  # refill behind it
        return found

    def expect(self, runs: dict[Profile, int]) -> None:
        """Runs of these profiles are coming (the schedulers' word); keep that many ready."""
        self._expected = dict(runs)
        self._wake.set()

    def poke(self) -> None:
        """Look at the targets again (an image the pool waited for has landed)."""
        self._wake.set()

    def target(self, profile: Profile) -> int:
        wanted = self._expected.get(profile, 0)
        return max(wanted, self.floor) if profile == self.default else wanted

    def _short(self) -> Profile | None:
        """The profile furthest below its target (counting those being made),
        if any, while the pool has room."""
        if self.idle() + self._creating.total() >= self.most:
            return None
        profiles = {self.default, *self._expected}
        coming = {p: self.idle(p) + self._creating[p] for p in profiles}
        short = [
            (self.target(p) - coming[p], p.label, p)
            for p in profiles
            if coming[p] < self.target(p) and self._ready(p)
        ]
        return max(short)[2] if short else None

    async def run(self, stop: asyncio.Event, quiet: Callable[[], Awaitable[None]]) -> None:
        """Refill until ``stop``, ``parallel`` containers at a time, each
        begun outside fire instants."""
        refills: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                profile = self._short() if len(refills) < self.parallel else None
                if profile is None:
                    self._wake.clear()
                    await wait_for_event(self._wake, REFILL_IDLE)
                    continue
                await quiet()
                self._creating[profile] += 1
                refill = asyncio.ensure_future(self._refill(profile, stop))
                refills.add(refill)
                refill.add_done_callback(refills.discard)
        finally:
            for refill in refills:
                refill.cancel()
            await asyncio.gather(*refills, return_exceptions=True)

    async def _refill(self, profile: Profile, stop: asyncio.Event) -> None:
        creating = asyncio.ensure_future(self._create(profile))
        self._inflight.add(creating)

        def landed(made: asyncio.Future[Pooled]) -> None:
            # Pooled even when this refill was cancelled meanwhile (the
            # worker stopping): close() then removes it, not leaves it.
            self._inflight.discard(made)
            if not made.cancelled() and made.exception() is None:
                self._idle[profile].append(made.result())

        creating.add_done_callback(landed)
        try:
            await asyncio.shield(creating)
        except Exception as exc:  # an image not there, an engine away: say so, try later
            log.warning("pool_refill_failed", profile=profile.label, error=str(exc))
            self._expected.pop(profile, None)  # not again until asked again
            await sleep_or(stop, 2.0)
        finally:
            self._creating[profile] -= 1
            self._wake.set()  # a slot is free

    async def close(self) -> None:
        """Remove every idle container, and those being made (the worker is stopping)."""
        # Each creation pools what it made as it lands (_refill's landed).
        await asyncio.gather(*self._inflight, return_exceptions=True)
        idle = [p for q in self._idle.values() for p in q]
        self._idle.clear()
        await asyncio.gather(*(self._remove(p) for p in idle), return_exceptions=True)
