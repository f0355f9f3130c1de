"""Idempotency keys and chains (``after``) on a real Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from cronfleet.codec import proto
from cronfleet.codec.jsonapi import changes_from_json
from cronfleet.db import Database
from cronfleet.errors import Conflict, InvalidSpec
from cronfleet.models import Job
from cronfleet.records import Execution, User
from cronfleet.v1 import dispatch_pb2
from gateway.service import JobsService
from scheduler.events import EventRecorder
from scheduler.streams import WorkerStream
from tests.helpers import job_spec, new_user

pytestmark = pytest.mark.integration


async def job_count(db: Database) -> int:
    async with await psycopg.AsyncConnection.connect(db.url) as conn:
        got = await (await conn.execute("SELECT count(*) FROM jobs")).fetchone()
    assert got is not None
    return int(got[0])


async def test_a_repeated_create_returns_the_first_job(
    db: Database, service: JobsService, user: User
) -> None:
    (first,) = await service.create_jobs(user, [job_spec(name="nightly")], "key-1")
    (again,) = await service.create_jobs(user, [job_spec(name="nightly")], "key-1")
    assert again.id == first.id and await job_count(db) == 1
    with pytest.raises(Conflict) as err:
        await service.create_jobs(user, [job_spec(name="other")], "key-1")
    assert err.value.field == "Idempotency-Key" and await job_count(db) == 1


async def test_concurrent_duplicates_create_one_job(db: Database, service: JobsService, user: User) -> None:
    results = await asyncio.gather(*(service.create_jobs(user, [job_spec()], "same") for _ in range(8)))
    assert len({jobs[0].id for jobs in results}) == 1
    assert await job_count(db) == 1


async def test_keys_are_per_user_and_expire(db: Database, service: JobsService, user: User) -> None:
    bob = await new_user(service, "bob")
    (mine,) = await service.create_jobs(user, [job_spec()], "k")
    (his,) = await service.create_jobs(bob, [job_spec()], "k")
    assert mine.id != his.id
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    (fresh,) = await service.create_jobs(user, [job_spec(name="changed")], "k")
    assert fresh.id != mine.id, "a key older than 24 hours is free again"


async def test_a_repeated_run_returns_the_first_execution(service: JobsService, user: User) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule="@yearly")])
    first = await service.run_job(user, str(job.id), "run-1")
    again = await service.run_job(user, str(job.id), "run-1")
    assert again.id == first.id
    assert len((await service.list_executions(user, job_id=str(job.id)))[0]) == 1


async def finish(db: Database, execution: Execution, status: str) -> None:
    event = dispatch_pb2.RunEvent(
        execution_id=execution.id,
        kind=dispatch_pb2.EVENT_KIND_FINISHED,
        at=proto.timestamp(datetime.now(UTC)),
        status=status,
        exit_code=0 if status == "succeeded" else 1,
    )
    recorder = EventRecorder(db, flush_interval=0, retry_backoff_seconds=0)
    recorder.add(WorkerStream("w1", credits=0), [event])
    await recorder.flush()


async def runs_of(service: JobsService, user: User, job: Job) -> list[Execution]:
    return (await service.list_executions(user, job_id=str(job.id)))[0]


@pytest.mark.parametrize(
    ("on", "upstream_status", "fires"),
    [
        ("success", "succeeded", True),
        ("success", "failed", False),
        ("failure", "failed", True),
        ("failure", "succeeded", False),
        ("always", "failed", True),
        ("always", "succeeded", True),
    ],
)
async def test_a_downstream_job_fires_when_its_upstream_ends_that_way(
    db: Database, service: JobsService, user: User, on: str, upstream_status: str, fires: bool
) -> None:
    (upstream,) = await service.create_jobs(user, [job_spec(name="build", schedule="@yearly")])
    (downstream,) = await service.create_jobs(
        user, [job_spec(name="deploy", after=[{"job_id": str(upstream.id), "on": on}])]
    )
    assert downstream.status == "active" and downstream.next_run_at is None, "it waits for its upstream"
    assert await runs_of(service, user, downstream) == []
    run = await service.run_job(user, str(upstream.id))
    await finish(db, run, upstream_status)
    fired = await runs_of(service, user, downstream)
    if not fires:
        assert fired == []
        return
    (child,) = fired
    assert (child.trigger, child.upstream_execution_id, child.status) == ("upstream", run.id, "scheduled")


async def test_a_retried_failure_fires_failure_downstream_only_at_the_end(
    db: Database, service: JobsService, user: User
) -> None:
    (upstream,) = await service.create_jobs(user, [job_spec(name="flaky", schedule="@yearly", max_retries=1)])
    (alarm,) = await service.create_jobs(
        user, [job_spec(after=[{"job_id": str(upstream.id), "on": "failure"}])]
    )
    await finish(db, await service.run_job(user, str(upstream.id)), "failed")
    assert await runs_of(service, user, alarm) == [], "a retry is left"
    retry = max(await runs_of(service, user, upstream), key=lambda e: e.attempt)
    await finish(db, retry, "failed")
    assert len(await runs_of(service, user, alarm)) == 1


async def test_after_names_only_the_callers_jobs_and_never_a_cycle(service: JobsService, user: User) -> None:
    bob = await new_user(service, "bob")
    (his,) = await service.create_jobs(bob, [job_spec(schedule="@yearly")])
    with pytest.raises(InvalidSpec) as err:
        await service.create_jobs(user, [job_spec(after=[{"job_id": str(his.id)}])])
    assert err.value.field == "after[0].job_id"
    (a,) = await service.create_jobs(user, [job_spec(name="a", schedule="@yearly")])
    (b,) = await service.create_jobs(user, [job_spec(name="b", after=[{"job_id": str(a.id)}])])
    (c,) = await service.create_jobs(user, [job_spec(name="c", after=[{"job_id": str(b.id)}])])
    with pytest.raises(InvalidSpec) as err:
        await service.update_job(user, str(a.id), changes_from_json({"after": [{"job_id": str(c.id)}]}))
    assert err.value.field == "after" and "a -> c -> b -> a" in str(err.value)
    with pytest.raises(InvalidSpec):
        await service.update_job(user, str(a.id), changes_from_json({"after": [{"job_id": str(a.id)}]}))
    assert (await service.get_job(user, str(a.id))).spec.after == (), "nothing half-written"
