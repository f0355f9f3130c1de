"""The log-bytes-kept quota on a real Postgres and S3 API server: past it a
user's oldest logs are removed (rows marked, then objects deleted), the
newest kept; another user is untouched; a deposed leader removes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from coordinator import log_quota
from coordinator.fencing import Fenced
from cronfleet.db import Database
from cronfleet.errors import LogRemoved, NotFound
from cronfleet.logstore import S3LogStore
from cronfleet.models import Job
from cronfleet.records import Execution, User
from gateway.service import JobsService
from tests.helpers import job_spec, new_user, s3_settings

pytestmark = pytest.mark.integration
EPOCH = 7


@pytest.fixture
async def store(s3_server: str) -> AsyncIterator[S3LogStore]:
    logs = S3LogStore(s3_settings(s3_server, "quota-logs"))
    await logs.ensure_bucket()
    yield logs
    await logs.close()


async def finished_runs(
    url: str, logs: S3LogStore, job: Job, sizes: list[int], tmp_path: Path, now: datetime
) -> list[int]:
    """Finished executions of ``job``, one a minute, the last newest, each
    with a stored log of its size; their ids, oldest first."""
    ids = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i, size in enumerate(sizes):
            due = now - timedelta(minutes=len(sizes) - i)
            row = conn.execute(
                "INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, run_at, status,"
                " finished_at, log_url, log_bytes) VALUES (%s, %s, 0, %s, %s, 'succeeded', %s, 'stored', %s)"
                " RETURNING id",
                (job.id, job.owner_id, due, due, due + timedelta(seconds=1), size),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
            spool = tmp_path / f"{row[0]}.log"
            spool.write_bytes(b"x" * size)
            await logs.put(logs.key_for(job.owner_id, job.id, row[0], 1), spool)
    return ids


async def stored(logs: S3LogStore, job: Job, execution_id: int) -> bool:
    try:
        await logs.read(logs.key_for(job.owner_id, job.id, execution_id, 1))
    except NotFound:
        return False
    return True


async def test_oldest_logs_go_first_and_only_the_users_past_the_quota(
    db: Database, database_url: str, store: S3LogStore, tmp_path: Path
) -> None:
    svc = JobsService(db, store, shards=8, token_ttl=timedelta(hours=1))
    ann, bob = await new_user(svc, "ann"), await new_user(svc, "bob")
    (ann_job,) = await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *")])
    (bob_job,) = await svc.create_jobs(bob, [job_spec(schedule="0 0 * * *")])
    now = datetime.now(UTC)
    ann_runs = await finished_runs(database_url, store, ann_job, [400, 300, 200, 100], tmp_path, now)
    bob_runs = await finished_runs(database_url, store, bob_job, [500, 450], tmp_path, now)

    # Quota 350: ann keeps her newest two (100 + 200); bob's newest alone
    # (450) is past it, so none of his is kept.
    assert await log_quota.enforce(db, store, EPOCH, quota=350) == 2 + 2
    ann_after = {e.id: e for e in await executions_of(svc, ann, ann_job)}
    assert [ann_after[i].log_removed_at is not None for i in ann_runs] == [True, True, False, False]
    assert [await stored(store, ann_job, i) for i in ann_runs] == [False, False, True, True]
    assert [await stored(store, bob_job, i) for i in bob_runs] == [False, False]

    # The reply: no link; the logs route answers 410 naming the quota.
    removed = await svc.get_execution(ann, str(ann_runs[0]))
    assert removed.log_url is None and removed.log_bytes == 400
    with pytest.raises(LogRemoved) as gone:
        await svc.execution_logs(ann, str(ann_runs[0]))
    assert (gone.value.http_status, gone.value.code, gone.value.field) == (
        410,
        "log_removed",
        "log_bytes_kept",
    )
    assert await svc.execution_logs(ann, str(ann_runs[3])) == b"x" * 100
    assert (await svc.get_execution(ann, str(ann_runs[3]))).log_url

    # Within the quota now: nothing more goes.
    assert await log_quota.enforce(db, store, EPOCH, quota=350) == 0
    assert await log_quota.enforce(db, store, EPOCH, quota=0) == 0  # 0: no quota


async def test_a_deposed_leader_removes_nothing(
    db: Database, database_url: str, store: S3LogStore, tmp_path: Path
) -> None:
    svc = JobsService(db, store, shards=8, token_ttl=timedelta(hours=1))
    ann = await new_user(svc, "ann")
    (job,) = await svc.create_jobs(ann, [job_spec(schedule="0 0 * * *")])
    runs = await finished_runs(database_url, store, job, [300, 300], tmp_path, datetime.now(UTC))
    await db.fetch_one("claim_epoch", {"epoch": EPOCH + 1})  # a newer leader has written
    with pytest.raises(Fenced):
        await log_quota.enforce(db, store, EPOCH, quota=100)
    assert all(e.log_removed_at is None for e in await executions_of(svc, ann, job))
    assert [await stored(store, job, i) for i in runs] == [True, True]


async def executions_of(svc: JobsService, user: User, job: Job) -> list[Execution]:
    found, _ = await svc.list_executions(user, job_id=str(job.id), limit=100)
    return found
