"""Coordinator: campaign for leadership; as leader, keep shards assigned to
live schedulers (fenced by the epoch), declare dead workers' runs lost, and
keep the time partitions ahead of the clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aetcd
import grpc
import structlog

from cronfleet import etcd
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.shards import assign_shards, shards_by_owner
from cronfleet.v1 import coordinator_pb2_grpc, jobs_pb2

log = structlog.get_logger()
TICK = 0.25
PARTITION_EVERY = timedelta(minutes=10)
PARTITION_DAYS_AHEAD = 7
# A run assigned less than this long ago is not declared lost: its worker may
# not be in our view of the members yet.
LOST_GRACE_SECONDS = 5.0


async def read_cluster(client: aetcd.Client, keys: etcd.Keys, db: Database) -> jobs_pb2.Cluster:
    """The cluster as etcd and Postgres see it (GET /api/v1/cluster)."""
    leader, epoch = await etcd.read_json(client, keys.leader)
    coordinators = await etcd.read_members(client, keys, "coordinators")
    schedulers = await etcd.read_members(client, keys, "schedulers")
    workers = await etcd.read_members(client, keys, "workers")
    shard_map, _ = await etcd.read_json(client, keys.shard_map)
    owners = (shard_map or {}).get("owners", {})
    running = {r["worker_id"]: r["running"] for r in await db.fetch_all("running_by_worker")}
    return jobs_pb2.Cluster(
        leader=(leader or {}).get("id", ""),
        epoch=epoch,
        coordinators=sorted(coordinators),
        schedulers=[
            jobs_pb2.SchedulerInfo(id=s, shards=owners.get(s, []), address=info.get("address", ""))
            for s, info in sorted(schedulers.items())
        ],
        workers=[
            jobs_pb2.WorkerInfo(id=w, capacity=info.get("capacity", 0), running=running.get(w, 0))
            for w, info in sorted(workers.items())
        ],
    )


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    async def GetCluster(
        self, request: jobs_pb2.GetClusterRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Cluster:
        c = self.coordinator
        try:
            return await read_cluster(c.client, c.keys, c.db)
        except (CronfleetError, aetcd.exceptions.ClientError) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise  # unreachable: abort raises


class Coordinator:
    def __init__(self, settings: Settings, db: Database, client: aetcd.Client) -> None:
        self.settings = settings
        self.id = settings.coordinator_id
        self.db = db
        self.client = client
        self.keys = etcd.Keys(settings.etcd_prefix)
        self.address = ""
        self.epoch: int | None = None
        self._published: dict[str, Any] | None = None
        self._next_partition_check = datetime.min.replace(tzinfo=UTC)

    async def run(self, stop: asyncio.Event) -> None:
        server = grpc.aio.server()
        coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(CoordinatorServicer(self), server)
        host = self.settings.coordinator_addr.rsplit(":", 1)[0]
        port = server.add_insecure_port(self.settings.coordinator_addr)
        self.address = f"{host}:{port}"
        await server.start()
        log.info("coordinator_started", coordinator_id=self.id, address=self.address)
        try:
            while not stop.is_set():
                try:
                    await self._serve_session(stop)
                except (CronfleetError, aetcd.exceptions.ClientError, OSError) as exc:
                    log.warning("coordinator_session_failed", error=str(exc))
                    self.epoch = None
                    await _sleep_or_stop(stop, 1.0)
        finally:
            await server.stop(grace=1)

    async def _serve_session(self, stop: asyncio.Event) -> None:
        session = etcd.Session(self.client, self.settings.member_ttl)
        await session.start()
        me = {"id": self.id, "address": self.address}
        try:
            await session.put(self.keys.member("coordinators", self.id), me)
            while not stop.is_set() and not session.lost.is_set():
                if self.epoch is None:
                    self.epoch = await etcd.campaign(session, self.keys.leader, me)
                    if self.epoch is not None:
                        log.info("leader_elected", coordinator_id=self.id, epoch=self.epoch)
                        self._published = None
                else:
                    try:
                        await self._lead_once()
                    except CronfleetError as exc:
                        # Postgres is away: stay leader (etcd still says so) and retry.
                        log.warning("leader_tick_failed", error=str(exc))
                        await _sleep_or_stop(stop, 0.5)
                await _sleep_or_stop(stop, TICK)
        finally:
            if self.epoch is not None:
                log.info("leadership_released", coordinator_id=self.id, epoch=self.epoch)
            self.epoch = None
            await session.close()

    async def _lead_once(self) -> None:
        assert self.epoch is not None
        leader = await self.client.get(self.keys.leader)
        if leader is None or int(leader.create_revision) != self.epoch:
            log.warning("leadership_lost", coordinator_id=self.id, epoch=self.epoch)
            self.epoch = None
            return
        schedulers = await etcd.read_members(self.client, self.keys, "schedulers")
        workers = await etcd.read_members(self.client, self.keys, "workers")
        await self._assign_shards(sorted(schedulers))
        await self._declare_lost(sorted(workers))
        now = datetime.now(UTC)
        if now >= self._next_partition_check:
            await self._ensure_partitions(now)
            self._next_partition_check = now + PARTITION_EVERY

    async def _assign_shards(self, schedulers: list[str]) -> None:
        rows = await self.db.fetch_all("shard_owners")
        current = {r["shard_id"]: r["scheduler_id"] for r in rows}
        stale_epoch = any(r["epoch"] != self.epoch for r in rows)
        target = assign_shards(self.settings.shards, schedulers, current)
        if target and (target != current or stale_epoch):
            async with self.db.transaction() as tx:
                if await tx.fetch_one("claim_epoch", {"epoch": self.epoch}) is None:
                    log.warning("epoch_fenced", coordinator_id=self.id, epoch=self.epoch)
                    self.epoch = None
                    return
                shard_ids = sorted(target)
                await tx.execute(
                    "write_shard_owners",
                    {
                        "shard_ids": shard_ids,
                        "scheduler_ids": [target[s] for s in shard_ids],
                        "epoch": self.epoch,
                    },
                )
                await tx.execute("delete_shard_owners_beyond", {"shards": self.settings.shards})
            moved = sum(1 for s, o in target.items() if current.get(s) != o)
            log.info("shards_assigned", epoch=self.epoch, schedulers=len(schedulers), moved=moved)
        published = {"epoch": self.epoch, "owners": shards_by_owner(target)}
        if published != self._published:
            await self.client.put(self.keys.shard_map, _json(published))
            self._published = published

    async def _declare_lost(self, workers: list[str]) -> None:
        async with self.db.transaction() as tx:
            lost = await tx.fetch_all("mark_lost", {"live_workers": workers, "grace": LOST_GRACE_SECONDS})
            if lost:
                ids = [r["id"] for r in lost]
                retried = await tx.fetch_all(
                    "schedule_retries",
                    {"ids": ids, "backoff": self.settings.retry_backoff_seconds},
                )
                log.warning("runs_lost", count=len(ids), retried=len(retried))

    async def _ensure_partitions(self, now: datetime) -> None:
        created = 0
        for table in ("schedule", "executions"):
            for offset in range(-1, PARTITION_DAYS_AHEAD + 1):
                row = await self.db.fetch_one(
                    "ensure_day_partition", {"table": table, "day": (now + timedelta(days=offset)).date()}
                )
                created += bool(row and row["created"])
        if created:
            log.info("partitions_created", count=created)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The coordinator role, until ``stop`` is set."""
    async with (
        Database.connected(settings.database_url) as db,
        etcd.connected(settings.etcd_endpoints) as client,
    ):
        await Coordinator(settings, db, client).run(stop)


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
