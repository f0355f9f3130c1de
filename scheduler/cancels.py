"""Cancellations: runs a user cancelled (or a "replace" job superseded) that
a worker holds are told to that worker, and so are withdrawals (a paused,
edited or deleted job's runs, dropped there only if not yet started)."""

from __future__ import annotations

import asyncio

import structlog

from cronfleet.aio import wait_for_event
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.v1 import dispatch_pb2
from scheduler.ownership import ShardOwnership
from scheduler.streams import WorkerStreams

log = structlog.get_logger()
# Cancel requests are also looked for this often without a NOTIFY.
SCAN_INTERVAL = 1.0


class CancelForwarder:
    def __init__(
        self, db: Database, ownership: ShardOwnership, streams: WorkerStreams, wake: asyncio.Event
    ) -> None:
        self.db = db
        self.ownership = ownership
        self.streams = streams
        self.wake = wake

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait_for_event(self.wake, SCAN_INTERVAL)
            self.wake.clear()
            if self.ownership.shards:
                await self.forward()

    async def forward(self) -> None:
        try:
            requests = await self.db.fetch_all("select_cancel_requests")
        except CronfleetError as exc:
            log.warning("cancel_scan_failed", error=str(exc))
            return
        # Those of the shards this scheduler owns now: in a handover the old
        # owner may tell a worker too, and a stop said twice is one stop.
        owned = self.ownership.shards
        by_worker: dict[str, dispatch_pb2.CancelRuns] = {}
        for r in requests:
            if r["shard_id"] not in owned:
                continue
            message = by_worker.setdefault(r["worker_id"], dispatch_pb2.CancelRuns())
            (message.withdrawn_ids if r["withdrawn"] else message.execution_ids).append(r["id"])
        for worker_id, message in by_worker.items():
            stream = self.streams.get(worker_id)
            if stream is not None:
                stream.send(dispatch_pb2.SchedulerMessage(cancel=message))
