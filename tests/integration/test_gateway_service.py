"""The API's behaviour on a real Postgres: auth, ownership, job lifecycle."""

from __future__ import annotations

import psycopg
import pytest

from cronfleet.codec.jsonapi import changes_from_json
from cronfleet.db import Database
from cronfleet.errors import Conflict, InvalidArgument, InvalidSpec, NotFound, Unauthenticated
from gateway.service import JobsService
from tests.helpers import job_spec, new_user

pytestmark = pytest.mark.integration


spec = job_spec


async def test_signup_login_logout_revokes_token(service: JobsService) -> None:
    await service.signup("Ann", "Ann@Example.com", "password123")
    with pytest.raises(Conflict):
        await service.signup("Ann2", "ann@example.com", "password123")
    with pytest.raises(Unauthenticated):
        await service.login("ann@example.com", "wrong-password")
    token, _ = await service.login("ann@example.com", "password123")
    assert (await service.authenticate(token)).email == "ann@example.com"
    await service.logout(token)
    with pytest.raises(Unauthenticated):
        await service.authenticate(token)


async def test_weak_password_and_bad_email_are_named(service: JobsService) -> None:
    with pytest.raises(InvalidArgument) as err:
        await service.signup("A", "a@example.com", "short")
    assert err.value.field == "password"
    with pytest.raises(InvalidArgument) as err:
        await service.signup("A", "not-an-email", "password123")
    assert err.value.field == "email"


async def test_users_see_only_their_own_jobs(service: JobsService) -> None:
    ann, bob = await new_user(service, "ann"), await new_user(service, "bob")
    (job,) = await service.create_jobs(ann, [spec(schedule="@daily")])
    with pytest.raises(NotFound):
        await service.get_job(bob, str(job.id))
    with pytest.raises(NotFound):
        await service.delete_job(bob, str(job.id))
    with pytest.raises(NotFound):
        await service.list_executions(bob, job_id=str(job.id))
    run = await service.run_job(ann, str(job.id))
    with pytest.raises(NotFound):
        await service.get_execution(bob, str(run.id))
    assert (await service.list_jobs(bob, None, None, None))[0] == []
    assert len((await service.list_jobs(ann, None, None, None))[0]) == 1


async def test_invalid_job_writes_nothing(service: JobsService, db: Database) -> None:
    ann = await new_user(service, "ann")
    with pytest.raises(InvalidSpec) as err:
        await service.create_jobs(ann, [spec(), spec(schedule="61 * * * * *")])
    assert err.value.field == "jobs[1].schedule"
    assert (await service.list_jobs(ann, None, None, None))[0] == []


async def test_pause_resume_delete_lifecycle(service: JobsService) -> None:
    ann = await new_user(service, "ann")
    (job,) = await service.create_jobs(ann, [spec(schedule="*/5 * * * * *")])
    job_id = str(job.id)
    assert job.next_run_at is not None
    paused = await service.pause_job(ann, job_id)
    assert paused.status == "paused"
    assert (await service.get_job(ann, job_id)).next_run_at is None
    with pytest.raises(Conflict):
        await service.pause_job(ann, job_id)
    resumed = await service.resume_job(ann, job_id)
    assert resumed.status == "active" and resumed.next_run_at is not None
    await service.delete_job(ann, job_id)
    gone = await service.get_job(ann, job_id)
    assert gone.status == "deleted" and gone.next_run_at is None
    with pytest.raises(NotFound):
        await service.run_job(ann, job_id)


async def test_patch_changes_schedule_and_keeps_the_rest(service: JobsService) -> None:
    ann = await new_user(service, "ann")
    (job,) = await service.create_jobs(ann, [spec(schedule="@daily", priority=8)])
    updated = await service.update_job(ann, str(job.id), changes_from_json({"schedule": "0 0 12 * * ?"}))
    assert updated.spec.schedule == "0 0 12 * * ?" and updated.spec.priority == 8
    assert updated.version == job.version + 1
    with pytest.raises(InvalidSpec):
        await service.update_job(ann, str(job.id), changes_from_json({"schedule": "nope"}))


async def test_list_jobs_pages(service: JobsService) -> None:
    ann = await new_user(service, "ann")
    await service.create_jobs(ann, [spec(name=f"j{i}", schedule="@daily") for i in range(5)])
    page1, token = await service.list_jobs(ann, None, 2, None)
    page2, token2 = await service.list_jobs(ann, None, 2, token)
    page3, token3 = await service.list_jobs(ann, None, 2, token2)
    names = [r.spec.name for r in page1 + page2 + page3]
    assert sorted(names) == [f"j{i}" for i in range(5)] and token3 == ""


async def test_list_jobs_finds_by_name_and_adds_latest_runs(service: JobsService, database_url: str) -> None:
    ann, bob = await new_user(service, "ann"), await new_user(service, "bob")
    nightly, hourly = await service.create_jobs(
        ann, [spec(name="Nightly-Backup", schedule="0 0 2 * * *"), spec(name="hourly", schedule="@hourly")]
    )
    await service.create_jobs(bob, [spec(name="backup-of-bob", schedule="@daily")])
    found, _ = await service.list_jobs(ann, None, None, None, q="BACKUP")
    assert [j.spec.name for j in found] == ["Nightly-Backup"]
    assert found[0].schedule_description == "At 02:00"
    assert found[0].recent_runs == ()  # not asked for

    runs = [await service.run_job(ann, str(nightly.id)) for _ in range(3)]
    listed, _ = await service.list_jobs(ann, None, None, None, recent=2)
    latest = {j.spec.name: [r.id for r in j.recent_runs] for j in listed}
    newest_first = sorted(runs, key=lambda r: (r.scheduled_at, r.id), reverse=True)
    assert latest["Nightly-Backup"] == [r.id for r in newest_first[:2]]
    assert latest["hourly"] == []
    assert {r.status for j in listed for r in j.recent_runs} == {"scheduled"}

    # ?result=: by the latest run that ended (a run still to come does not count).
    hourly_run = await service.run_job(ann, str(hourly.id))
    with psycopg.connect(database_url, autocommit=True) as conn:
        for run, status in [
            (newest_first[2], "succeeded"),
            (newest_first[1], "timed_out"),
            (hourly_run, "succeeded"),
        ]:
            conn.execute("UPDATE executions SET status = %s WHERE id = %s", (status, run.id))
    failing, _ = await service.list_jobs(ann, None, None, None, result="failed")
    passing, _ = await service.list_jobs(ann, None, None, None, result="succeeded")
    assert [j.spec.name for j in failing] == ["Nightly-Backup"] and [j.spec.name for j in passing] == [
        "hourly"
    ]
    with pytest.raises(InvalidArgument) as err:
        await service.list_jobs(ann, None, None, None, result="lost")
    assert err.value.field == "result"
    with pytest.raises(InvalidArgument) as err:
        await service.list_jobs(ann, None, None, None, recent=51)
    assert err.value.field == "recent"


async def test_list_executions_pages_newest_fire_first(service: JobsService, database_url: str) -> None:
    """Runs come by fire time, newest first, then by id (a fire's retry above
    its first attempt; fires of the same second apart); pages meet exactly."""
    ann, bob = await new_user(service, "ann"), await new_user(service, "bob")
    a, b = await service.create_jobs(ann, [spec(name=n, schedule="@daily") for n in "ab"])
    (c,) = await service.create_jobs(bob, [spec(name="c", schedule="@daily")])
    fires = [  # job, seconds ago, attempt: inserted in this order, so ids rise down the list
        (a, 30, 1),
        (b, 20, 1),
        (a, 20, 1),
        (b, 10, 1),
        (a, 30, 2),
        (a, 20, 2),
        (b, 20, 2),
        (c, 10, 1),
    ]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for job, ago, attempt in fires:
            conn.execute(
                "INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, attempt, run_at)"
                " SELECT id, owner_id, shard_id, date_trunc('second', now()) - make_interval(secs => %s),"
                " %s, now() FROM jobs WHERE id = %s",
                (ago, attempt, job.id),
            )

    async def pages(job_id: str | None, size: int) -> list[tuple[object, int]]:
        seen: list[tuple[object, int]] = []
        token: str | None = None
        while True:
            found, token = await service.list_executions(ann, job_id=job_id, limit=size, page_token=token)
            seen += [(r.scheduled_at, r.id) for r in found]
            if not token:
                return seen

    everything, _ = await service.list_executions(ann)
    expected = sorted(((r.scheduled_at, r.id) for r in everything), reverse=True)
    assert len(expected) == 7 and all(r.job_id != c.id for r in everything)  # bob's run is not ann's
    assert [(r.scheduled_at, r.id) for r in everything] == expected
    for size in (1, 2, 3):
        assert await pages(None, size) == expected
    of_a = [(r.scheduled_at, r.id) for r in (await service.list_executions(ann, job_id=str(a.id)))[0]]
    assert of_a == sorted(of_a, reverse=True) and len(of_a) == 4
    assert await pages(str(a.id), 1) == of_a
    # The retry of a fire comes above its first attempt, below newer fires.
    runs_of_a, _ = await service.list_executions(ann, job_id=str(a.id))
    assert [r.attempt for r in runs_of_a] == [2, 1, 2, 1]
    with pytest.raises(InvalidArgument) as err:  # a time without its zone is not a token we made
        await service.list_executions(ann, page_token="WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgNV0=")
    assert err.value.field == "page_token"
