"""A scheduler tells workers of the cancels and withdrawals of runs on its
own shards, and of no others (scheduler.cancels), on a real Postgres."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from cronfleet.db import Database
from cronfleet.v1 import dispatch_pb2
from scheduler.cancels import CancelForwarder
from scheduler.ownership import ShardOwnership

pytestmark = pytest.mark.integration


class Stream:
    def __init__(self) -> None:
        self.sent: list[dispatch_pb2.SchedulerMessage] = []

    def send(self, message: dispatch_pb2.SchedulerMessage) -> None:
        self.sent.append(message)


class Streams:
    def __init__(self, workers: dict[str, Stream]) -> None:
        self.workers = workers

    def get(self, worker_id: str) -> Stream | None:
        return self.workers.get(worker_id)


def insert_run(url: str, shard: int, worker: str, status: str, cancel: bool, withdrawn: bool = False) -> int:
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, run_at, status, worker_id,"
            " cancel_requested, withdrawn) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (uuid.uuid4(), uuid.uuid4(), shard, now, now, status, worker, cancel, withdrawn),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_only_the_stops_of_runs_on_its_own_shards_are_told(db: Database, database_url: str) -> None:
    mine_cancelled = insert_run(database_url, 3, "w1", "running", cancel=True)
    mine_withdrawn = insert_run(database_url, 5, "w2", "scheduled", cancel=True, withdrawn=True)
    insert_run(database_url, 4, "w1", "running", cancel=True)  # another scheduler's shard
    insert_run(database_url, 3, "w1", "running", cancel=False)  # nobody asked
    insert_run(database_url, 3, "w1", "succeeded", cancel=True)  # over already
    insert_run(
        database_url, 5, "w2", "running", cancel=True, withdrawn=True
    )  # withdrawn, but started: goes on
    ownership = ShardOwnership("s1", on_change=lambda: None)
    ownership.apply({"epoch": 1, "owners": {"s1": [3, 5], "s2": [4]}})
    w1, w2 = Stream(), Stream()
    forwarder = CancelForwarder(db, ownership, Streams({"w1": w1, "w2": w2}), asyncio.Event())  # type: ignore[arg-type]
    await forwarder.forward()
    assert [list(m.cancel.execution_ids) for m in w1.sent] == [[mine_cancelled]]
    assert [list(m.cancel.withdrawn_ids) for m in w2.sent] == [[mine_withdrawn]]
    assert not any(m.cancel.withdrawn_ids for m in w1.sent) and not any(
        m.cancel.execution_ids for m in w2.sent
    )
