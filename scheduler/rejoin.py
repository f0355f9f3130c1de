"""A worker (re)connecting says which runs it holds; the runs this
scheduler gave it before and that it does not hold are lost, and run again
(cronfleet.outcomes). Without this, a worker restarted under the
same id would keep its member key alive, the leader would never see it
gone, and its old process's runs would stay "running" for ever.

The runs given by a scheduler that is no longer a member are judged too (by
every scheduler the worker says hello to; the first write wins): nobody
else would, and a scheduler that is gone has no assignment on its way. One
that comes back judges its own at the worker's hello to it, under its
dispatcher's lock, before it can send anything on the new stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog

from cronfleet import metrics, outcomes
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.v1 import dispatch_pb2
from scheduler.ownership import ShardOwnership

log = structlog.get_logger()


class Rejoins:
    def __init__(
        self,
        db: Database,
        ownership: ShardOwnership,
        assigning: asyncio.Lock,
        retry_backoff_seconds: float,
        lost_reruns: int,
        live_schedulers: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self.db = db
        self.live_schedulers = live_schedulers  # the scheduler members etcd has now
        self.ownership = ownership
        # Held by the dispatcher while it records and sends assignments: with
        # it, every one of ours is either before the look (and on the old
        # stream, which is dead) or after it (on the new one). Other
        # schedulers' runs are theirs to judge, when the worker says hello there.
        self.assigning = assigning
        self.retry_backoff_seconds = retry_backoff_seconds
        self.lost_reruns = lost_reruns

    async def hello(self, hello: dispatch_pb2.Hello, register: Callable[[], None]) -> None:
        """Look, then ``register`` the worker's new stream (which then takes
        assignments), both under the dispatcher's lock."""
        async with self.assigning:
            try:
                await self._lose_unheld(hello)
            except CronfleetError as exc:
                log.warning("rejoin_check_failed", worker_id=hello.worker_id, error=str(exc))
            register()

    async def _lose_unheld(self, hello: dispatch_pb2.Hello) -> None:
        try:
            live: list[str] | None = await self.live_schedulers()
        except CronfleetError as exc:  # etcd away: judge our own only
            log.warning("rejoin_members_unknown", error=str(exc))
            live = None
        async with self.db.transaction() as tx:
            lost = await tx.fetch_all(
                "lose_unheld_runs",
                {
                    "scheduler_id": self.ownership.scheduler_id,
                    "worker_id": hello.worker_id,
                    "holding": list(hello.holding),
                    "live": live,
                },
            )
            if lost:
                await outcomes.settle(
                    tx, lost, self.retry_backoff_seconds, datetime.now(UTC), self.lost_reruns
                )
        if lost:
            metrics.RUNS_LOST.inc(len(lost))
            log.warning("runs_lost_on_rejoin", worker_id=hello.worker_id, count=len(lost))
