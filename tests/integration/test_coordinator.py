"""Coordinators on a real etcd and Postgres: one leader, a fencing epoch,
shards split over live schedulers, and failover when the leader goes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable

import psycopg
import pytest

from coordinator import shard_assignment
from coordinator.cluster import read_cluster
from coordinator.node import Coordinator
from cronfleet import etcd
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.tls import TlsFiles
from launch.devservices import LocalEtcd
from tests.helpers import Roles, as_role, assert_eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(
    etcd_server: LocalEtcd, etcd_prefix: str, database_url: str, pki: dict[str, TlsFiles]
) -> Settings:
    return dataclasses.replace(
        as_role(Settings(), pki, "coordinator"),
        etcd_endpoints=etcd_server.endpoint,
        etcd_prefix=etcd_prefix,
        database_url=database_url,
        member_ttl=2,
        shards=16,
    )


@pytest.fixture
async def roles() -> AsyncIterator[Roles]:
    r = Roles()
    yield r
    await r.close()


async def register_scheduler(settings: Settings, scheduler_id: str) -> etcd.Session:
    session = etcd.Session(etcd.connect(settings.etcd_endpoints), settings.member_ttl)
    await session.start()
    await session.put(
        etcd.Keys(settings.etcd_prefix).member("schedulers", scheduler_id),
        {"id": scheduler_id, "address": "127.0.0.1:1"},
    )
    return session


async def test_one_leader_splits_shards_and_fails_over(
    settings: Settings, db: Database, roles: Roles
) -> None:
    client = etcd.connect(settings.etcd_endpoints)
    keys = etcd.Keys(settings.etcd_prefix)
    coords = [
        Coordinator(dataclasses.replace(settings, coordinator_id=f"c{i}"), db, client) for i in range(2)
    ]
    for c in coords:
        roles.start(c.id, c.run)
    a = await register_scheduler(settings, "s-a")

    async def owners() -> dict[str, list[int]]:
        shard_map, _ = await etcd.read_json(client, keys.shard_map)
        owned: dict[str, list[int]] = (shard_map or {}).get("owners", {})
        return owned

    await assert_eventually(lambda: _eq(owners(), {"s-a": list(range(16))}), what="s-a owns all")
    leaders = [c for c in coords if c.epoch is not None]
    assert len(leaders) == 1
    first_epoch = leaders[0].epoch

    b = await register_scheduler(settings, "s-b")

    async def split() -> bool:
        o = await owners()
        return sorted(len(v) for v in o.values()) == [8, 8]

    await assert_eventually(split, what="two schedulers split the shards")
    rows = await db.fetch_all("shard_owners")
    assert {r["epoch"] for r in rows} == {first_epoch}

    # The leader stops: the other coordinator takes over with a newer epoch.
    await roles.stop(leaders[0].id)
    follower = coords[1 - coords.index(leaders[0])]
    await assert_eventually(lambda: _ready(follower.epoch is not None), timeout=10, what="failover")
    assert follower.epoch is not None and follower.epoch > first_epoch  # type: ignore[operator]

    async def fenced_rows() -> bool:
        return {r["epoch"] for r in await db.fetch_all("shard_owners")} == {follower.epoch}

    await assert_eventually(fenced_rows, what="shard_owners carry the new epoch")

    # A scheduler whose lease ends loses its shards to the survivor.
    await b.close()
    await assert_eventually(
        lambda: _eq(owners(), {"s-a": list(range(16))}), timeout=10, what="s-b's shards move"
    )
    cluster = await read_cluster(client, keys, db)
    assert cluster.leader == follower.id and [s.id for s in cluster.schedulers] == ["s-a"]
    await a.close()


async def _eq(value: Awaitable[object], expected: object) -> bool:
    return (await value) == expected


async def _ready(flag: bool) -> bool:
    return flag


class Published:
    """An etcd client that only records what the assigner publishes."""

    def __init__(self) -> None:
        self.maps: list[bytes] = []

    async def put(self, key: str, value: bytes) -> None:
        self.maps.append(value)


async def test_shards_are_read_again_when_the_schedulers_change_or_after_a_while(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader alone writes shard_owners, so it does not read them back on
    every tick: only when the live schedulers change, or every VERIFY_EVERY
    seconds, when whatever drifted is put right."""
    published = Published()
    assigner = shard_assignment.ShardAssigner(db, published, etcd.Keys("/t"), 16)

    async def owners() -> dict[int, str]:
        return {r["shard_id"]: r["scheduler_id"] for r in await db.fetch_all("shard_owners")}

    await assigner.assign(1, ["s1"])
    assert set((await owners()).values()) == {"s1"} and len(published.maps) == 1
    async with db.transaction() as tx:  # drift (no one but the leader writes here)
        await tx.execute("write_shard_owners", {"shard_ids": [0], "scheduler_ids": ["gone"], "epoch": 1})
    await assigner.assign(1, ["s1"])
    assert (await owners())[0] == "gone", "the same schedulers, just assigned: not read again"
    await assigner.assign(1, ["s1", "s2"])
    after = await owners()
    assert set(after.values()) == {"s1", "s2"} and len(published.maps) == 2, "new schedulers: read, fixed"
    async with db.transaction() as tx:
        await tx.execute("write_shard_owners", {"shard_ids": [0], "scheduler_ids": ["gone"], "epoch": 1})
    monkeypatch.setattr(shard_assignment, "VERIFY_EVERY", 0.0)
    await assigner.assign(1, ["s1", "s2"])
    assert (await owners())[0] == after[0], "read again once VERIFY_EVERY has passed"


def estimated_shards(database_url: str, scheduler_id: str, epoch: int) -> int:
    """How many of its shards the planner thinks a scheduler owns at ``epoch``."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT shard_id FROM shard_owners WHERE scheduler_id = %s AND epoch = %s",
            (scheduler_id, epoch),
        ).fetchone()
    assert row is not None
    return int(row[0][0]["Plan"]["Plan Rows"])


async def test_the_planner_sees_each_schedulers_shards_after_every_assignment(
    db: Database, database_url: str
) -> None:
    """Statistics of shard_owners follow the leader's writes: a new cluster's,
    and a new epoch's (every row rewritten), count a scheduler's shards, not
    one row (which made scans of its shards probe each shard in every partition)."""
    assigner = shard_assignment.ShardAssigner(db, Published(), etcd.Keys("/t"), 256)
    await assigner.assign(1, ["s1", "s2"])
    assert estimated_shards(database_url, "s1", 1) == 128
    await assigner.assign(2, ["s1", "s2"])  # a new term: every row takes the new epoch
    assert estimated_shards(database_url, "s2", 2) == 128


async def test_statistics_held_up_by_a_lock_do_not_hold_up_the_map_and_come_next_tick(
    db: Database, database_url: str
) -> None:
    published = Published()
    assigner = shard_assignment.ShardAssigner(db, published, etcd.Keys("/t"), 256)
    with psycopg.connect(database_url) as vacuuming:  # holds what ANALYZE needs, as a vacuum would
        vacuuming.execute("LOCK TABLE shard_owners IN SHARE UPDATE EXCLUSIVE MODE")
        await assigner.assign(1, ["s1", "s2"])  # gives up on the lock after a second
        assert len(published.maps) == 1, "the map went out all the same"
        assert estimated_shards(database_url, "s1", 1) == 1, "not analyzed"
    await assigner.assign(1, ["s1", "s2"])  # the next tick: nothing to write, the statistics made
    assert estimated_shards(database_url, "s1", 1) == 128
