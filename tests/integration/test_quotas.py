"""Per-user quotas on a real Postgres: live jobs and the planned fire rate
(422 at create, change and resume), runs started outside the schedule
against the runs of the last minute (429 with when to try again)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cronfleet.codec.jsonapi import changes_from_json
from cronfleet.db import Database
from cronfleet.errors import QuotaExceeded, RateQuotaExceeded
from cronfleet.logstore import LocalLogStore
from gateway.service import JobsService
from gateway.service.limits import Quotas
from tests.helpers import job_spec, new_user

pytestmark = pytest.mark.integration


def gateway(db: Database, tmp_path: Path, jobs: int = 0, runs_per_minute: int = 0) -> JobsService:
    logs = LocalLogStore(tmp_path / "logs", "http://gw")
    quotas = Quotas(jobs=jobs, runs_per_minute=runs_per_minute)
    return JobsService(db, logs, shards=8, token_ttl=timedelta(hours=1), quotas=quotas)


async def test_live_jobs_per_user(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, jobs=3)
    ann, bob = await new_user(svc, "ann"), await new_user(svc, "bob")
    made = [(await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *")]))[0] for _ in range(3)]
    with pytest.raises(QuotaExceeded) as err:
        await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *")])
    assert (err.value.http_status, err.value.code) == (422, "quota_exceeded")
    assert err.value.field == "jobs_per_user"
    assert "at most 3 live jobs" in str(err.value)
    await svc.create_jobs(bob, [job_spec(schedule="0 0 * * *")])  # a quota per user
    await svc.pause_job(ann, str(made[0].id))  # paused is still live
    with pytest.raises(QuotaExceeded):
        await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *")])
    await svc.delete_job(ann, str(made[0].id))  # deleted is not
    await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *")])
    # A file of jobs is all or none.
    await svc.delete_job(ann, str(made[1].id))
    with pytest.raises(QuotaExceeded):
        await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *"), job_spec(schedule="0 1 * * *")])
    assert len((await svc.list_jobs(ann, None, None, None))[0]) == 2


async def test_a_completed_job_revived_by_a_change_counts_again(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, jobs=1)
    ann = await new_user(svc, "ann")
    window = {"start_at": "2020-01-01T00:00:00Z", "end_at": "2020-02-01T00:00:00Z"}  # over
    (done,) = await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *", **window)])
    assert done.status == "completed"
    await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *")])
    with pytest.raises(QuotaExceeded) as err:
        await svc.update_job(ann, str(done.id), changes_from_json({"start_at": None, "end_at": None}))
    assert err.value.field == "jobs_per_user"


async def test_planned_fires_per_minute(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, runs_per_minute=100)
    ann = await new_user(svc, "ann")
    every_2s = [(await svc.create_jobs(ann, [job_spec(schedule="*/2 * * * * *")]))[0] for _ in range(3)]  # 90
    with pytest.raises(QuotaExceeded) as err:
        await svc.create_jobs(ann, [job_spec(schedule="*/5 * * * * *")])  # +12
    assert (err.value.http_status, err.value.field) == (422, "runs_per_minute")
    assert "would fire up to 102 times a minute" in str(err.value)
    await svc.create_jobs(ann, [job_spec(schedule="*/10 * * * * *")])  # +6 = 96
    # Office hours only, created at any hour: counted at its rate then (60).
    with pytest.raises(QuotaExceeded):
        await svc.create_jobs(ann, [job_spec(schedule="* * 9-17 * * MON-FRI")])
    # A change counts the job's new rate instead of its old one.
    with pytest.raises(QuotaExceeded):
        await svc.update_job(ann, str(every_2s[0].id), changes_from_json({"schedule": "* * * * * *"}))
    await svc.update_job(ann, str(every_2s[0].id), changes_from_json({"schedule": "*/3 * * * * *"}))  # 86
    # Resume counts what the paused job would add back.
    await svc.pause_job(ann, str(every_2s[1].id))  # 56
    await svc.create_jobs(ann, [job_spec(schedule="*/2 * * * * *")])  # 86
    with pytest.raises(QuotaExceeded):
        await svc.resume_job(ann, str(every_2s[1].id))
    # One-offs are not a rate (they count as runs, below).
    await svc.create_jobs(ann, [job_spec(run_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())])


async def test_manual_runs_against_the_runs_of_the_last_minute(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, runs_per_minute=3)
    ann, bob = await new_user(svc, "ann"), await new_user(svc, "bob")
    (job,) = await svc.create_jobs(ann, [job_spec(schedule="0 0 1 1 *")])
    for _ in range(3):
        await svc.run_job(ann, str(job.id))
    with pytest.raises(RateQuotaExceeded) as err:
        await svc.run_job(ann, str(job.id))
    assert (err.value.http_status, err.value.code) == (429, "quota_exceeded")
    assert err.value.field == "runs_per_minute"
    assert 55 <= err.value.retry_after <= 61, "the oldest run leaves the window in about a minute"
    (other,) = await svc.create_jobs(bob, [job_spec(schedule="0 0 1 1 *")])
    await svc.run_job(bob, str(other.id))  # a quota per user
    # Run-now jobs count as runs too (a job's own run, not yet claimed).
    with pytest.raises(RateQuotaExceeded):
        await svc.create_jobs(ann, [job_spec()])
    # A backfill counts each of its runs; one larger than the quota never fits (422).
    since = datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(RateQuotaExceeded):
        await svc.backfill_job(ann, str(job.id), since, datetime(2021, 1, 2, tzinfo=UTC))  # 2 fires
    with pytest.raises(QuotaExceeded) as too_many:
        await svc.backfill_job(ann, str(job.id), since, datetime(2024, 1, 2, tzinfo=UTC))  # 5
    assert too_many.value.http_status == 422


async def test_run_now_jobs_count_before_they_are_claimed(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, runs_per_minute=2)
    ann = await new_user(svc, "ann")
    await svc.create_jobs(ann, [job_spec(), job_spec()])
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    with pytest.raises(RateQuotaExceeded):
        await svc.create_jobs(ann, [job_spec(run_at=soon)])
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    await svc.create_jobs(ann, [job_spec(run_at=later)])  # not due within the minute


async def test_concurrent_creates_cannot_both_take_the_last_place(db: Database, tmp_path: Path) -> None:
    svc = gateway(db, tmp_path, jobs=5)
    ann = await new_user(svc, "ann")
    results = await asyncio.gather(
        *(svc.create_jobs(ann, [job_spec(schedule="0 0 * * *")]) for _ in range(8)), return_exceptions=True
    )
    assert sum(1 for r in results if isinstance(r, list)) == 5
    assert all(isinstance(r, QuotaExceeded) for r in results if not isinstance(r, list))


async def test_defaults_are_generous(service: JobsService) -> None:
    """The bench's 50 every-second jobs of one user (3,000 runs a minute) fit."""
    ann = await new_user(service, "ann")
    await service.create_jobs(ann, [job_spec(schedule="* * * * * *") for _ in range(50)])
    assert (service.quotas.jobs, service.quotas.runs_per_minute) == (10_000, 12_000)
