"""Shards to live schedulers: moved as little as possible, written to
``shard_owners`` under the epoch, then published in etcd."""

from __future__ import annotations

import json
import time
from typing import Any

import aetcd
import structlog

from coordinator.fencing import fenced_transaction
from cronfleet import etcd, metrics
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.shards import assign_shards, shards_by_owner

log = structlog.get_logger()
# Only the leader writes shard_owners (fenced by its epoch), so once the
# table and the published map match the live schedulers they stay so until
# the schedulers change: read again then, and at least this often. Read on
# every tick (4 a second), the 256 rows were two thirds of an idle leader's
# CPU, and a thousand rows a second for Postgres. The price: a change made
# outside the leader (a restored backup, a hand edit) is put right within
# this, not within a tick; claims on shards it moved meet the fence meanwhile.
VERIFY_EVERY = 10.0


class ShardAssigner:
    def __init__(self, db: Database, client: aetcd.Client, keys: etcd.Keys, shards: int) -> None:
        self.db = db
        self.client = client
        self.keys = keys
        self.shards = shards
        self._published: dict[str, Any] | None = None
        self._settled: tuple[int, tuple[str, ...]] | None = None  # the epoch and schedulers last made so
        self._settled_at = 0.0
        self._statistics_stale = False  # shard_owners rewritten since Postgres last analyzed it

    def forget_published(self) -> None:
        """A new term: publish the map again even if it looks the same."""
        self._published = None
        self._settled = None

    async def assign(self, epoch: int, schedulers: list[str]) -> None:
        settled = (epoch, tuple(schedulers))
        if settled == self._settled and time.monotonic() - self._settled_at < VERIFY_EVERY:
            await self._refresh_statistics()
            return
        rows = await self.db.fetch_all("shard_owners")
        current = {r["shard_id"]: r["scheduler_id"] for r in rows}
        stale_epoch = any(r["epoch"] != epoch for r in rows)
        target = assign_shards(self.shards, schedulers, current)
        if target and (target != current or stale_epoch):
            async with fenced_transaction(self.db, epoch) as tx:
                shard_ids = sorted(target)
                await tx.execute(
                    "write_shard_owners",
                    {"shard_ids": shard_ids, "scheduler_ids": [target[s] for s in shard_ids], "epoch": epoch},
                )
                await tx.execute("delete_shard_owners_beyond", {"shards": self.shards})
            self._statistics_stale = True
            moved = sum(1 for s, o in target.items() if current.get(s) != o)
            # A move takes a shard from one scheduler to another (not a first owner).
            metrics.SHARD_MOVES.inc(sum(1 for s, o in target.items() if current.get(s) not in (None, o)))
            log.info("shards_assigned", epoch=epoch, schedulers=len(schedulers), moved=moved)
        published = {"epoch": epoch, "owners": shards_by_owner(target)}
        if published != self._published:
            await self.client.put(self.keys.shard_map, json.dumps(published, sort_keys=True).encode())
            self._published = published
        self._settled, self._settled_at = settled, time.monotonic()
        await self._refresh_statistics()

    async def _refresh_statistics(self) -> None:
        """Postgres's statistics of the owners, once rewritten (queries.sql,
        analyze_shard_owners): after the map is out, since schedulers wait
        for it; best-effort, tried again next tick, and bounded (a vacuum of
        the table holds the lock it needs)."""
        if not self._statistics_stale:
            return
        try:
            async with self.db.transaction() as tx:
                await tx.execute("brief_lock_timeout")
                await tx.execute("analyze_shard_owners")
        except CronfleetError as exc:
            log.warning("shard_owners_not_analyzed", error=str(exc))
            return
        self._statistics_stale = False
