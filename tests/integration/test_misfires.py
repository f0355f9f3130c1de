"""Misfire policies on a real Postgres: after a simulated outage of the
whole cluster, and on resume after a pause; run_once jobs on a schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cronfleet.db import Database
from cronfleet.models import Job
from cronfleet.records import Execution, User
from gateway.service import JobsService
from scheduler.claim import claim_due_fires
from tests.helpers import job_spec

pytestmark = pytest.mark.integration
SHARDS = 4
EVERY_10S = "*/10 * * * * *"


@pytest.fixture
def shards() -> int:
    return SHARDS


@pytest.fixture
async def owned(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.fetch_one("claim_epoch", {"epoch": 1})
        await tx.execute(
            "write_shard_owners",
            {"shard_ids": list(range(SHARDS)), "scheduler_ids": ["s1"] * SHARDS, "epoch": 1},
        )


async def claim_until_dry(db: Database, catchup: timedelta = timedelta(hours=24)) -> None:
    while (
        await claim_due_fires(
            db,
            scheduler_id="s1",
            epoch=1,
            horizon=datetime.now(UTC),
            batch=500,
            misfire_catchup=catchup,
        )
    ).fires:
        pass


async def sql(db: Database, statement: str, *args: object) -> None:
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await conn.execute(statement, args)


async def outage(db: Database, job: Job, length: timedelta) -> datetime:
    """As if the cluster was down: the job's next fire is ``length`` ago."""
    missed = (datetime.now(UTC) - length).replace(microsecond=0)
    missed -= timedelta(seconds=missed.second % 10)
    await sql(db, "UPDATE schedule SET next_run_at = %s WHERE job_id = %s", missed, job.id)
    return missed


async def runs(service: JobsService, user: User, job: Job) -> list[Execution]:
    found, _ = await service.list_executions(user, job_id=str(job.id), limit=500)
    return sorted(found, key=lambda e: e.scheduled_at)


async def test_run_once_collapses_an_outage_into_one_late_run(
    db: Database, service: JobsService, user: User, owned: None
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule=EVERY_10S)])
    missed = await outage(db, job, timedelta(minutes=10))
    began = datetime.now(UTC)
    await claim_until_dry(db)
    late, *after = await runs(service, user, job)
    assert (late.scheduled_at, late.trigger, late.status) == (missed, "misfire", "scheduled")
    # The claims take a moment: a fire of the every-10 s schedule that fell
    # due meanwhile is its own, on time, not part of the outage.
    assert all(e.trigger == "schedule" and e.scheduled_at >= began for e in after), after
    nxt = (await service.get_job(user, str(job.id))).next_run_at
    assert nxt is not None and nxt > datetime.now(UTC)


async def test_run_all_runs_every_missed_fire_oldest_first(
    db: Database, service: JobsService, user: User, owned: None
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule=EVERY_10S, misfire_policy="run_all")])
    missed = await outage(db, job, timedelta(minutes=5))
    await claim_until_dry(db)
    late = await runs(service, user, job)
    assert len(late) >= 30
    assert [e.scheduled_at for e in late[:30]] == [missed + timedelta(seconds=10 * i) for i in range(30)]
    assert {e.status for e in late} == {"scheduled"}
    assert {e.trigger for e in late if e.scheduled_at < datetime.now(UTC) - timedelta(seconds=60)} == {
        "misfire"
    }


async def test_run_all_drops_what_is_older_than_the_catch_up_window(
    db: Database, service: JobsService, user: User, owned: None
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule=EVERY_10S, misfire_policy="run_all")])
    await outage(db, job, timedelta(hours=2))
    await claim_until_dry(db, catchup=timedelta(minutes=2))
    late = await runs(service, user, job)
    assert late[0].status == "skipped" and "catch-up window" in (late[0].error or "")
    ran = [e for e in late if e.status == "scheduled"]
    assert 11 <= len(ran) <= 13, "two minutes of fires, every 10 s"


async def test_skip_runs_nothing_late_and_says_so(
    db: Database, service: JobsService, user: User, owned: None
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule=EVERY_10S, misfire_policy="skip")])
    await outage(db, job, timedelta(minutes=10))
    await claim_until_dry(db)
    (skipped,) = await runs(service, user, job)
    assert (skipped.status, skipped.trigger) == ("skipped", "misfire")
    assert skipped.error == "missed by 10m; misfire_policy skip"


async def test_a_failover_inside_the_grace_runs_every_fire_whatever_the_policy(
    db: Database, service: JobsService, user: User, owned: None
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule="* * * * * *", misfire_policy="skip")])
    missed = await outage(db, job, timedelta(seconds=20))
    await claim_until_dry(db)
    late = [e for e in await runs(service, user, job) if e.scheduled_at < datetime.now(UTC)]
    assert late[0].scheduled_at == missed and len(late) >= 20
    assert {(e.status, e.trigger) for e in late} == {("scheduled", "schedule")}


@pytest.mark.parametrize(("policy", "late_runs"), [("run_once", 1), ("run_all", 30), ("skip", 0)])
async def test_resume_after_a_pause_follows_the_policy(
    db: Database, service: JobsService, user: User, owned: None, policy: str, late_runs: int
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule=EVERY_10S, misfire_policy=policy)])
    await service.pause_job(user, str(job.id))
    await sql(db, "UPDATE jobs SET paused_at = now() - interval '5 minutes' WHERE id = %s", job.id)
    resumed = await service.resume_job(user, str(job.id))
    assert resumed.status == "active" and resumed.paused_at is None
    await claim_until_dry(db)
    now = datetime.now(UTC) - timedelta(seconds=1)
    late = [e for e in await runs(service, user, job) if e.scheduled_at < now and e.status == "scheduled"]
    if late_runs > 1:  # every 10 s for five minutes: 30, give or take one at either end
        assert late_runs - 1 <= len(late) <= late_runs + 1
    else:
        assert len(late) == late_runs


async def test_run_once_on_a_schedule_fires_at_the_next_match_then_completes(
    db: Database, service: JobsService, user: User, owned: None
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(schedule="* * * * * *", run_once=True)])
    assert job.next_run_at is not None
    await outage(db, job, timedelta(seconds=1))
    await claim_until_dry(db)
    assert len(await runs(service, user, job)) == 1
    assert (await service.get_job(user, str(job.id))).status == "completed"
