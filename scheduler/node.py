"""A scheduler node: its rooms wired together, and the role's ``run``.

- ownership: the shards it may claim, followed from etcd
- claim: due fires and pending attempts, claimed in batches
- dispatch: the queue by priority, credits, the fenced assignment
- streams: the workers' bidirectional streams
- events: what workers report, persisted in batches and acknowledged
- cancels: cancellations forwarded to the worker holding the run
- forecast: runs due soon, by container profile, for the workers' warm pools
"""

from __future__ import annotations

import asyncio

import aetcd
import structlog

from cronfleet import etcd, metrics, rpc
from cronfleet.aio import sleep_or, within
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.errors import CronfleetError, Unavailable
from cronfleet.v1 import dispatch_pb2_grpc
from scheduler.cancels import CancelForwarder
from scheduler.claim_loop import ClaimLoop
from scheduler.dispatch import Dispatcher, DispatchQueue
from scheduler.events import EventRecorder
from scheduler.forecast import Forecaster
from scheduler.ownership import ShardOwnership
from scheduler.rejoin import Rejoins
from scheduler.streams import DispatchServicer, WorkerStreams

log = structlog.get_logger()
SHARD_MAP_POLL = 0.2
DUE_CHANNEL = "cronfleet_due"
CANCEL_CHANNEL = "cronfleet_cancel"


class Scheduler:
    def __init__(self, settings: Settings, db: Database, client: aetcd.Client) -> None:
        self.settings = settings
        self.id = settings.scheduler_id
        self.db = db
        self.client = client
        self.keys = etcd.Keys(settings.etcd_prefix)
        self.address = ""
        self.tls = rpc.InternalTls.from_settings(settings)
        self.streams = WorkerStreams(settings.heartbeat_interval)
        self.queue = DispatchQueue()
        # Claim when shards change, a fire is NOTIFYed or a worker has room;
        # forward cancels when one is requested or a "replace" job fires.
        self.claim_wake = asyncio.Event()
        self.cancel_wake = asyncio.Event()
        self.ownership = ShardOwnership(self.id, on_change=self.claim_wake.set)
        self.dispatcher = Dispatcher(db, self.id, self.ownership, self.queue, self.streams)
        self.claims = ClaimLoop(
            settings,
            db,
            self.ownership,
            self.queue,
            self.dispatcher,
            self.streams,
            self.claim_wake,
            self.cancel_wake,
        )
        self.cancels = CancelForwarder(db, self.ownership, self.streams, self.cancel_wake)
        self.events = EventRecorder(
            db,
            settings.event_flush_interval,
            settings.retry_backoff_seconds,
            settings.lost_reruns,
            hold_starts=True,
        )
        self.forecast = Forecaster(db, self.ownership, self.streams, settings.pool_horizon_seconds)
        self.rejoins = Rejoins(
            db,
            self.ownership,
            self.dispatcher.lock,
            settings.retry_backoff_seconds,
            settings.lost_reruns,
            self._live_schedulers,
        )
        self.servicer = DispatchServicer(
            self.id,
            self.streams,
            on_events=self.events.add,
            on_connect=self.claim_wake.set,
            on_credit=self._credit_returned,
            on_hello=self.rejoins.hello,
        )

        # Read at scrape time (this process's one scheduler).
        metrics.QUEUE_DEPTH.set_function(lambda: len(self.queue))
        metrics.QUEUE_OLDEST.set_function(self.queue.oldest_late)
        metrics.SHARDS_OWNED.set_function(lambda: len(self.ownership.shards))

    async def _live_schedulers(self) -> list[str]:
        try:
            # Asked under the dispatcher's lock (a worker's hello): not for long.
            return sorted(await within(etcd.read_members(self.client, self.keys, "schedulers"), 2))
        except Exception as exc:  # aetcd and grpc raise many types; all mean "etcd did not answer"
            raise Unavailable(f"etcd: {exc}") from exc

    def _credit_returned(self) -> None:
        if len(self.queue):
            self.claim_wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        server = await rpc.serve(
            self.settings.dispatch_addr,
            [
                (
                    "cronfleet.v1.DispatchService",
                    lambda s: dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(self.servicer, s),
                )
            ],
            tls=self.tls,
            options=[("grpc.max_receive_message_length", 16 << 20)],
        )
        self.address = server.address
        log.info("scheduler_started", scheduler_id=self.id, address=self.address)
        tasks = [
            asyncio.create_task(self._membership(stop), name="membership"),
            asyncio.create_task(self._listen(stop), name="listen"),
            asyncio.create_task(self.claims.run(stop), name="claim"),
            asyncio.create_task(self.events.run(stop), name="events"),
            asyncio.create_task(self.cancels.run(stop), name="cancels"),
            asyncio.create_task(self.forecast.run(stop), name="forecast"),
        ]
        try:
            await stop.wait()
        finally:
            # Stop taking work; record what workers reported; then close streams.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.events.close()
            await server.stop(grace=2)

    async def _membership(self, stop: asyncio.Event) -> None:
        """Stay registered in etcd and follow the published shard map."""

        async def follow_shard_map(session: etcd.Session) -> None:
            while True:
                shard_map, _ = await etcd.read_json(self.client, self.keys.shard_map)
                self.ownership.apply(shard_map or {})
                await asyncio.sleep(SHARD_MAP_POLL)

        async def forget_shards(session: etcd.Session) -> None:
            # Without a session the coordinator may hand our shards away.
            self.ownership.clear()

        await etcd.stay_registered(
            self.client,
            self.keys,
            "schedulers",
            self.id,
            lambda: {"id": self.id, "address": self.address, "metrics": self.settings.metrics_addr},
            ttl=self.settings.member_ttl,
            stop=stop,
            while_registered=follow_shard_map,
            after_session=forget_shards,
        )

    async def _listen(self, stop: asyncio.Event) -> None:
        """NOTIFY wakes the claim at once for a new or triggered job, and the
        cancel forwarder for a cancellation, when the shard is ours."""
        while not stop.is_set():
            try:
                async with self.db.listen(DUE_CHANNEL, CANCEL_CHANNEL) as notes:
                    async for channel, payload in notes:
                        if payload.isdigit() and self.ownership.owns(int(payload)):
                            (self.claim_wake if channel == DUE_CHANNEL else self.cancel_wake).set()
            except CronfleetError as exc:
                log.warning("listen_failed", error=str(exc))
                await sleep_or(stop, 0.5)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The scheduler role, until ``stop`` is set."""
    async with (
        Database.connected(settings.database_url) as db,
        etcd.connected(settings.etcd_endpoints) as client,
    ):
        await Scheduler(settings, db, client).run(stop)
