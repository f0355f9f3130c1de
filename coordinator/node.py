"""A coordinator node: membership, the campaign, and the leader's work.

Every coordinator stays registered and campaigns; the one that wins runs the
leader-only work in a task group that is cancelled the moment its etcd
session is lost or the leader key is no longer its own:
- shard_assignment: shards to live schedulers, under the epoch
- lost_runs: runs of workers that left, declared lost and retried
- partitions: day partitions kept ahead
- retention: expired idempotency keys and old alerts pruned
Every leader write is fenced by the epoch (coordinator.fencing). Every
coordinator, leading or not, also sends alerts (coordinator.alert_delivery).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aetcd
import structlog

from coordinator import log_quota, retention
from coordinator.alert_delivery import AlertSender
from coordinator.cluster import CoordinatorServicer
from coordinator.fencing import Fenced
from coordinator.lost_runs import LostSince, LostSweeps, declare_lost
from coordinator.partitions import ensure_partitions
from coordinator.shard_assignment import ShardAssigner
from cronfleet import etcd, metrics, rpc
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.logstore import LogStore, open_log_store
from cronfleet.v1 import coordinator_pb2_grpc

log = structlog.get_logger()
TICK = 0.25
HOUSEKEEPING_EVERY = timedelta(minutes=10)  # partitions ahead, expired idempotency keys out
ROLES = ("schedulers", "workers", "coordinators")  # the members the leader reads each tick


class LeadershipLost(Exception):
    """The leader key is gone or another's: this term is over."""


class Coordinator:
    def __init__(
        self, settings: Settings, db: Database, client: aetcd.Client, logs: LogStore | None = None
    ) -> None:
        self.settings = settings
        self.logs = logs  # None: the log-bytes-kept quota is not enforced here
        self.id = settings.coordinator_id
        self.db = db
        self.client = client
        self.keys = etcd.Keys(settings.etcd_prefix)
        self.address = ""
        self.tls = rpc.InternalTls.from_settings(settings)
        self.epoch: int | None = None  # set while this coordinator leads
        self.shards = ShardAssigner(db, client, self.keys, settings.shards)

    async def run(self, stop: asyncio.Event) -> None:
        servicer = CoordinatorServicer(self.client, self.keys, self.db)
        server = await rpc.serve(
            self.settings.coordinator_addr,
            [
                (
                    "cronfleet.v1.CoordinatorService",
                    lambda s: coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(servicer, s),
                )
            ],
            tls=self.tls,
        )
        self.address = server.address
        log.info("coordinator_started", coordinator_id=self.id, address=self.address)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(AlertSender(self.db, self.settings).run(stop))
                await self._stay_registered(stop)
        finally:
            await server.stop(grace=1)

    async def _stay_registered(self, stop: asyncio.Event) -> None:
        await etcd.stay_registered(
            self.client,
            self.keys,
            "coordinators",
            self.id,
            self._member_info,
            ttl=self.settings.member_ttl,
            stop=stop,
            while_registered=self._campaign,
            after_session=self._term_over,
        )

    def _member_info(self) -> dict[str, str]:
        return {"id": self.id, "address": self.address, "metrics": self.settings.metrics_addr}

    async def _campaign(self, session: etcd.Session) -> None:
        """Try for the leader key every tick; lead while it is ours."""
        while True:
            epoch = await etcd.campaign(session, self.keys.leader, self._member_info())
            if epoch is not None:
                await self._lead(epoch)
            await asyncio.sleep(TICK)

    async def _term_over(self, session: etcd.Session) -> None:
        if self.epoch is not None:
            log.info("leadership_released", coordinator_id=self.id, epoch=self.epoch)
        self.epoch = None

    async def _lead(self, epoch: int) -> None:
        """The leader-only work, until leadership is lost (the task group is
        also cancelled from outside the moment the etcd session is lost)."""
        log.info("leader_elected", coordinator_id=self.id, epoch=epoch)
        self.epoch = epoch
        metrics.LEADER.set(1)
        metrics.EPOCH.set(epoch)
        self.shards.forget_published()
        try:
            async with asyncio.TaskGroup() as leader_work:
                leader_work.create_task(self._hold_leadership(epoch))
                leader_work.create_task(self._keep_cluster(epoch))
        except BaseExceptionGroup as group:
            first = group.exceptions[0]
            if not isinstance(first, LeadershipLost | Fenced):
                raise first from group  # etcd away: the membership loop starts a new session
            log.warning("leadership_lost", coordinator_id=self.id, epoch=epoch, reason=str(first))
        finally:
            self.epoch = None
            metrics.LEADER.set(0)
            metrics.EPOCH.set(0)
            metrics.MEMBERS.clear()

    async def _hold_leadership(self, epoch: int) -> None:
        while True:
            leader = await self.client.get(self.keys.leader)
            if leader is None or int(leader.create_revision) != epoch:
                raise LeadershipLost("the leader key is not ours")
            await asyncio.sleep(TICK)

    async def _keep_cluster(self, epoch: int) -> None:
        """Shards every tick; lost runs when due (coordinator.lost_runs.LostSweeps);
        partitions and retention every ten minutes; the log quota every
        log_quota_interval. Postgres away: stay leader (etcd still says so)
        and try again."""
        next_housekeeping = next_log_quota = datetime.min.replace(tzinfo=UTC)
        lost_since = LostSince(self.settings.lost_margin)
        sweeps = LostSweeps()
        while True:
            try:
                members = await etcd.read_all_members(self.client, self.keys, ROLES)
                schedulers, workers = members["schedulers"], members["workers"]
                metrics.MEMBERS.labels("scheduler").set(len(schedulers))
                metrics.MEMBERS.labels("worker").set(len(workers))
                metrics.MEMBERS.labels("coordinator").set(len(members["coordinators"]))
                await self.shards.assign(epoch, sorted(schedulers))
                live_workers = lost_since.live(workers)
                if live_workers is not None and sweeps.due(live_workers):
                    await declare_lost(
                        self.db,
                        epoch,
                        live_workers,
                        self.settings.retry_backoff_seconds,
                        self.settings.lost_reruns,
                    )
                    sweeps.swept(live_workers)
                now = datetime.now(UTC)
                if now >= next_housekeeping:
                    await ensure_partitions(self.db, epoch, now)
                    await retention.prune(self.db, epoch)
                    next_housekeeping = now + HOUSEKEEPING_EVERY
                if self.logs is not None and now >= next_log_quota:
                    await log_quota.enforce(self.db, self.logs, epoch, self.settings.quota_log_bytes_kept)
                    next_log_quota = now + timedelta(seconds=self.settings.log_quota_interval)
            except Fenced:
                raise
            except CronfleetError as exc:
                log.warning("leader_tick_failed", error=str(exc))
                await asyncio.sleep(0.5)
            await asyncio.sleep(TICK)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The coordinator role, until ``stop`` is set."""
    async with (
        Database.connected(settings.database_url) as db,
        etcd.connected(settings.etcd_endpoints) as client,
    ):
        logs = open_log_store(settings)
        try:
            await Coordinator(settings, db, client, logs).run(stop)
        finally:
            await logs.close()
