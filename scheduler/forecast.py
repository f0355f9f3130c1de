"""The warm pool's forecast: how many runs of which container profile are due
soon on this scheduler's shards, shared out to the docker workers, so that
they have containers ready before the fires are even claimed."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import structlog

from cronfleet.aio import wait_for_event
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.v1 import dispatch_pb2
from scheduler.ownership import ShardOwnership
from scheduler.streams import WorkerStreams

log = structlog.get_logger()
EVERY = 1.0


class Forecaster:
    def __init__(
        self, db: Database, ownership: ShardOwnership, streams: WorkerStreams, horizon_seconds: float
    ) -> None:
        self.db = db
        self.ownership = ownership
        self.streams = streams
        self.horizon = timedelta(seconds=horizon_seconds)
        self._sent: dict[str, tuple[tuple[str, float, int, int, int], ...]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        while not await wait_for_event(stop, EVERY):
            try:
                await self.forecast()
            except CronfleetError as exc:
                log.debug("forecast_failed", error=str(exc))

    async def forecast(self) -> None:
        workers = [s for s in self.streams.responsive() if "docker" in s.runtimes]
        if not workers or not self.ownership.shards:
            return
        rows = await self.db.fetch_all(
            "upcoming_by_profile",
            {
                "scheduler_id": self.ownership.scheduler_id,
                "epoch": self.ownership.epoch,
                "horizon": datetime.now(UTC) + self.horizon,
            },
        )
        share = tuple(
            sorted(
                (r["image"], float(r["cpus"]), r["memory_mb"], r["pids"], math.ceil(r["n"] / len(workers)))
                for r in rows
            )
        )
        for stream in workers:
            if self._sent.get(stream.worker_id) == share:
                continue
            self._sent[stream.worker_id] = share
            profiles = [
                dispatch_pb2.ProfileCount(image=i, cpus=c, memory_mb=m, pids=p, count=n)
                for i, c, m, p, n in share
            ]
            stream.send(dispatch_pb2.SchedulerMessage(expect=dispatch_pb2.Expect(profiles=profiles)))
