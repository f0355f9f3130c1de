"""In-process roles for the integration tests: a coordinator, schedulers
and workers started in this process against one database and etcd prefix,
over 127.0.0.1:0 (import the fixtures into a test module to use them)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from coordinator.node import Coordinator
from cronfleet import etcd
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.logstore import LocalLogStore
from cronfleet.records import Execution, User
from cronfleet.tls import TlsFiles
from gateway.service import JobsService
from launch.devservices import LocalEtcd
from scheduler.node import Scheduler
from tests.helpers import Roles, as_role, assert_eventually
from worker.node import Worker
from worker.runtime import Runtime

SHARDS = 8


@pytest.fixture
def shards() -> int:
    return SHARDS


@pytest.fixture
def settings(etcd_server: LocalEtcd, etcd_prefix: str, database_url: str, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        Settings(),
        database_url=database_url,
        etcd_endpoints=etcd_server.endpoint,
        etcd_prefix=etcd_prefix,
        state_dir=str(tmp_path / "state"),
        log_dir=str(tmp_path / "logs"),
        shards=SHARDS,
        member_ttl=2,
        coordinator_id="c1",
        coordinator_addr="127.0.0.1:0",
        dispatch_addr="127.0.0.1:0",
        claim_interval=0.05,
        heartbeat_interval=0.2,
        kill_grace_seconds=1,
        self_fence_seconds=1.0,
        live_log_interval=0,
        capacity=4,
    )


@pytest.fixture
async def roles() -> AsyncIterator[Roles]:
    r = Roles()
    yield r
    await r.close()


class Cluster:
    """Start roles in-process against one database and etcd prefix."""

    def __init__(self, settings: Settings, db: Database, roles: Roles, pki: dict[str, TlsFiles]) -> None:
        self.settings = settings
        self.pki = pki
        self.db = db
        self.roles = roles
        self.client = etcd.connect(settings.etcd_endpoints)
        self.workers: dict[str, Worker] = {}

    def coordinator(self) -> None:
        settings = as_role(self.settings, self.pki, "coordinator")
        self.roles.start("coordinator", Coordinator(settings, self.db, self.client).run)

    def scheduler(self, scheduler_id: str) -> None:
        settings = as_role(self.settings, self.pki, "scheduler")
        settings = dataclasses.replace(settings, scheduler_id=scheduler_id)
        self.roles.start(scheduler_id, Scheduler(settings, self.db, self.client).run)

    def worker(self, worker_id: str, runtime: Runtime, **changes: object) -> Worker:
        settings = dataclasses.replace(
            as_role(self.settings, self.pki, "worker"),
            worker_id=worker_id,
            **changes,  # type: ignore[arg-type]
        )
        worker = Worker(settings, runtime, LocalLogStore(settings.logs_path, "http://gw"), self.client)
        self.workers[worker_id] = worker
        self.roles.start(worker_id, worker.run)
        return worker

    async def ready(self, schedulers: int = 1) -> None:
        """Every shard owned and every worker connected to every scheduler."""

        async def up() -> bool:
            owners = await self.db.fetch_all("shard_owners")
            connected = all(len(w.connections.live()) == schedulers for w in self.workers.values())
            return len(owners) == SHARDS and connected

        await assert_eventually(up, timeout=20, what="cluster ready")


@pytest.fixture
def cluster(settings: Settings, db: Database, roles: Roles, pki: dict[str, TlsFiles]) -> Cluster:
    return Cluster(settings, db, roles, pki)


async def executions(service: JobsService, user: User) -> list[Execution]:
    found, _ = await service.list_executions(user, limit=500)
    return found


async def equal(value: Awaitable[object], expected: object) -> bool:
    return (await value) == expected


async def true(flag: bool) -> bool:
    return flag
