"""Coordinators on a real etcd and Postgres: one leader, a fencing epoch,
shards split over live schedulers, and failover when the leader goes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable

import pytest

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
