"""Backfill on a real Postgres: one run per past fire, bounded, never doubled,
right at DST edges, paced by the job's concurrency policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cronfleet.db import Database
from cronfleet.errors import InvalidSpec
from cronfleet.records import User
from gateway.service import JobsService
from scheduler.claim import claim_pending
from tests.helpers import job_spec

pytestmark = pytest.mark.integration
SHARDS = 2


@pytest.fixture
def shards() -> int:
    return SHARDS


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_one_run_per_past_fire_and_never_twice(service: JobsService, user: User) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule="*/10 * * * * *")])
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    runs = await service.backfill_job(user, str(job.id), start, start + timedelta(minutes=1))
    assert [r.scheduled_at for r in runs] == [start + timedelta(seconds=10 * i) for i in range(7)]
    assert {(r.trigger, r.attempt, r.status) for r in runs} == {("backfill", 1, "scheduled")}
    assert all(r.run_at > start + timedelta(minutes=5) for r in runs), "due now, not at their old times"
    again = await service.backfill_job(user, str(job.id), start, start + timedelta(minutes=2))
    assert len(again) == 6, "the fires that already have a run are left alone"


@pytest.mark.parametrize(
    ("schedule", "tz", "start", "end", "count"),
    [
        # 2:30 does not exist on 2026-03-08 in New York: it fires once, at the jump.
        ("0 30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z", "2026-03-10T12:00:00Z", 4),
        # 1:30 happens twice on 2026-11-01: it fires once.
        ("0 30 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", "2026-11-02T12:00:00Z", 3),
        ("0 0 * * * *", "Europe/London", "2026-03-29T00:00:00Z", "2026-03-29T03:00:00Z", 4),
    ],
)
async def test_backfill_counts_at_dst_edges(
    service: JobsService, user: User, schedule: str, tz: str, start: str, end: str, count: int
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule=schedule, timezone=tz)])
    runs = await service.backfill_job(user, str(job.id), at(start), at(end))
    assert len(runs) == count
    assert len({r.scheduled_at for r in runs}) == count
    if schedule == "0 30 2 * * *":
        assert at("2026-03-08T07:00:00Z") in {r.scheduled_at for r in runs}, "at the jump, 3:00 EDT"


@pytest.mark.parametrize(
    ("start", "end", "field", "words"),
    [
        (timedelta(hours=-1), timedelta(hours=-2), "to", "after from"),
        (timedelta(hours=-1), timedelta(hours=1), "to", "future"),
        (timedelta(days=-2), timedelta(days=-1), "from", "86,400 fires"),
    ],
)
async def test_bad_ranges_are_refused_and_write_nothing(
    service: JobsService, user: User, start: timedelta, end: timedelta, field: str, words: str
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule="* * * * * *")])
    now = datetime.now(UTC)
    with pytest.raises(InvalidSpec) as err:
        await service.backfill_job(user, str(job.id), now + start, now + end)
    assert err.value.field == field and words.replace("86,400", "more than 10,000") in str(err.value)
    assert (await service.list_executions(user, job_id=str(job.id)))[0] == []


async def test_a_one_off_job_cannot_be_backfilled(service: JobsService, user: User) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule="@yearly")])
    await service.update_job(
        user, str(job.id), {"schedule": None, "run_at": datetime.now(UTC) + timedelta(days=1)}
    )
    with pytest.raises(InvalidSpec) as err:
        now = datetime.now(UTC)
        await service.backfill_job(user, str(job.id), now - timedelta(days=2), now - timedelta(days=1))
    assert err.value.field == "schedule"


async def test_a_forbid_job_backfills_one_run_at_a_time(
    db: Database, service: JobsService, user: User
) -> None:
    async with db.transaction() as tx:
        await tx.fetch_one("claim_epoch", {"epoch": 1})
        await tx.execute(
            "write_shard_owners", {"shard_ids": [0, 1], "scheduler_ids": ["s1", "s1"], "epoch": 1}
        )
    (job,) = await service.create_jobs(user, [job_spec(schedule="0 0 * * * *", concurrency_policy="forbid")])
    now = datetime.now(UTC)
    await service.backfill_job(
        user, str(job.id), now - timedelta(hours=3, minutes=30), now - timedelta(minutes=1)
    )

    async def pending(queued: list[int]) -> list[int]:
        found = await claim_pending(
            db, scheduler_id="s1", epoch=1, horizon=datetime.now(UTC), batch=10, queued=queued
        )
        return [p.execution_id for p in found]

    first = await pending([])
    assert len(first) == 1, "room for one run of a forbid job"
    assert await pending(first) == [], "the queued one counts as live"
    await sql(db, "UPDATE executions SET worker_id = 'w1' WHERE id = %s", first[0])
    assert await pending([]) == [], "one on a worker: still no room"
    await sql(db, "UPDATE executions SET status = 'succeeded' WHERE id = %s", first[0])
    second = await pending([])
    assert len(second) == 1 and second != first, "the next one once the first has ended"


async def sql(db: Database, statement: str, *args: object) -> None:
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await conn.execute(statement, args)
