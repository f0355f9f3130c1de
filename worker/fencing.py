"""Self-fencing: a worker that cannot reach any scheduler for longer than its
lease, or that lost its etcd session, kills its own runs. The coordinator
will have declared them lost and retried them elsewhere, so they must not go
on here: a run is never live twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from cronfleet.aio import sleep_or
from worker.lifecycle import Runs

log = structlog.get_logger()
CHECK_EVERY = 1.0


class SelfFence:
    def __init__(
        self, worker_id: str, runs: Runs, any_scheduler_reachable: Callable[[], bool], limit: float
    ) -> None:
        self.worker_id = worker_id
        self.runs = runs
        self.reachable = any_scheduler_reachable
        self.limit = limit
        self.last_contact = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await sleep_or(stop, CHECK_EVERY)
            await self.check()

    async def check(self) -> None:
        if self.reachable():
            self.last_contact = time.monotonic()
        elif len(self.runs) and time.monotonic() - self.last_contact > self.limit:
            await self.fence("no scheduler reachable")

    async def fence(self, why: str) -> None:
        """Kill every run, reported as lost."""
        if len(self.runs):
            log.warning("worker_self_fenced", worker_id=self.worker_id, runs=len(self.runs), reason=why)
        await self.runs.kill_all("lost")
