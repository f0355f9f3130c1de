"""Claiming fires on a real Postgres: batched, fenced, never doubled."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cronfleet.db import Database, queries
from cronfleet.records import User
from gateway.service import JobsService
from scheduler.claim import claim_due_fires, claim_pending
from scheduler.dispatch import Candidate, QueuedRun
from tests.helpers import job_spec, new_user

pytestmark = pytest.mark.integration
SHARDS = 8


@pytest.fixture
def shards() -> int:
    return SHARDS


async def own_shards(db: Database, scheduler_id: str, epoch: int, shards: range = range(SHARDS)) -> None:
    async with db.transaction() as tx:
        await tx.fetch_one("claim_epoch", {"epoch": epoch})
        await tx.execute(
            "write_shard_owners",
            {"shard_ids": list(shards), "scheduler_ids": [scheduler_id] * len(shards), "epoch": epoch},
        )


async def claim(
    db: Database, scheduler_id: str = "s1", epoch: int = 1, batch: int = 500, ahead: float = 1.0
) -> list[QueuedRun]:
    runs = (
        await claim_due_fires(
            db,
            scheduler_id=scheduler_id,
            epoch=epoch,
            horizon=datetime.now(UTC) + timedelta(seconds=ahead),
            batch=batch,
        )
    ).runs
    return runs


spec = job_spec


async def test_claims_due_one_offs_in_batches_and_retires_them(
    db: Database, service: JobsService, user: User
) -> None:
    await own_shards(db, "s1", 1)
    jobs = await service.create_jobs(user, [spec(name=f"j{i}") for i in range(300)])
    first = await claim(db, batch=200)
    second = await claim(db, batch=200)
    assert len(first) == 200 and len(second) == 100
    assert {r.job_id for r in first + second} == {j.id for j in jobs}
    assert await claim(db) == []
    statuses = {r.status for r in (await service.list_jobs(user, "completed", 500, None))[0]}
    assert statuses == {"completed"}


async def test_recurring_job_advances_and_never_doubles(
    db: Database, service: JobsService, user: User
) -> None:
    await own_shards(db, "s1", 1)
    (job,) = await service.create_jobs(user, [spec(schedule="* * * * * *")])
    runs = await claim(db, ahead=3.0)
    assert len(runs) == 1 and runs[0].scheduled_at == job.next_run_at
    nxt = (await service.get_job(user, str(job.id))).next_run_at
    assert nxt == job.next_run_at + timedelta(seconds=1)


async def test_concurrent_claimers_never_share_a_fire(db: Database, service: JobsService, user: User) -> None:
    await own_shards(db, "s1", 1)
    await service.create_jobs(user, [spec(name=f"j{i}") for i in range(400)])
    results = await asyncio.gather(*(claim(db, batch=50) for _ in range(6)))
    seen = [r.execution_id for rs in results for r in rs]
    assert len(seen) == len(set(seen))
    rest = await claim(db)
    assert len(seen) + len(rest) == 400


async def test_deposed_scheduler_claims_nothing(db: Database, service: JobsService, user: User) -> None:
    await own_shards(db, "s1", 1)
    await own_shards(db, "s2", 2)  # a newer leader gave every shard to s2
    await service.create_jobs(user, [spec()])
    assert await claim(db, "s1", 1) == []
    assert await claim(db, "s1", 2) == []
    assert len(await claim(db, "s2", 2)) == 1


async def test_stale_leader_cannot_overwrite_shard_owners(db: Database) -> None:
    await own_shards(db, "s2", 5)
    assert await db.fetch_one("claim_epoch", {"epoch": 4}) is None


async def test_forbid_skips_a_fire_while_one_runs(db: Database, service: JobsService, user: User) -> None:
    await own_shards(db, "s1", 1)
    (job,) = await service.create_jobs(user, [spec(schedule="* * * * * *", concurrency_policy="forbid")])
    first = await claim(db, ahead=1.5)
    assert len(first) == 1
    second = await claim(db, ahead=2.5)
    assert second == []
    rows, _ = await service.list_executions(user, job_id=str(job.id))
    assert sorted(r.status for r in rows) == ["scheduled", "skipped"]


async def test_allow_with_a_limit_skips_past_it_and_runs_carry_their_jobs_columns(
    db: Database, database_url: str, service: JobsService, user: User
) -> None:
    # The claim's insert takes the job's owner, shard, priority and limit from
    # the row select_due_fires locked (it joins no jobs): what lands is the job's.
    await own_shards(db, "s1", 1)
    (job,) = await service.create_jobs(
        user,
        [spec(schedule="* * * * * *", concurrency_policy="allow", max_concurrency=2, priority=7)],
    )
    assert [len(await claim(db, ahead=a)) for a in (1.5, 2.5, 3.5)] == [1, 1, 0]
    rows, _ = await service.list_executions(user, job_id=str(job.id))
    assert sorted(r.status for r in rows) == ["scheduled", "scheduled", "skipped"]
    (skipped,) = [r for r in rows if r.status == "skipped"]
    assert skipped.error == "concurrency limit reached (2 running)"
    with psycopg.connect(database_url) as conn:
        carried = conn.execute(
            "SELECT DISTINCT e.owner_id = j.owner_id, e.shard_id = j.shard_id, e.priority"
            " FROM executions e JOIN jobs j ON j.id = e.job_id"
        ).fetchall()
    assert carried == [(True, True, 7)]


async def test_a_user_at_the_concurrent_runs_quota_gets_skips_and_holds_up_nobody(
    db: Database, service: JobsService, user: User
) -> None:
    await own_shards(db, "s1", 1)
    other = await new_user(service, "other")
    mine = await service.create_jobs(user, [spec(name=f"m{i}") for i in range(5)])
    theirs = await service.create_jobs(other, [spec(name=f"t{i}") for i in range(2)])
    claimed = (
        await claim_due_fires(
            db,
            scheduler_id="s1",
            epoch=1,
            horizon=datetime.now(UTC) + timedelta(seconds=1),
            batch=50,
            user_quota=3,
        )
    ).runs
    assert len([r for r in claimed if r.owner_id == user.id]) == 3, "three run; the batch counts its own"
    assert {r.job_id for r in claimed if r.owner_id == other.id} == {j.id for j in theirs}
    rows, _ = await service.list_executions(user)
    skipped = [r for r in rows if r.status == "skipped"]
    assert len(skipped) == 2 and all("quota reached: 3 concurrent runs" in (r.error or "") for r in skipped)
    assert {r.job_id for r in rows} == {j.id for j in mine}, "every fire recorded"


async def test_manual_runs_and_retries_are_pending_work(
    db: Database, service: JobsService, user: User
) -> None:
    await own_shards(db, "s1", 1)
    (job,) = await service.create_jobs(user, [spec(schedule="@yearly", max_retries=1)])
    run = await service.run_job(user, str(job.id))
    pending = await claim_pending(
        db, scheduler_id="s1", epoch=1, horizon=datetime.now(UTC) + timedelta(seconds=1), batch=10, queued=[]
    )
    assert [p.execution_id for p in pending] == [run.id]
    again = await claim_pending(
        db,
        scheduler_id="s1",
        epoch=1,
        horizon=datetime.now(UTC) + timedelta(seconds=1),
        batch=10,
        queued=[run.id],
    )
    assert again == []


async def test_claims_racing_deletes_never_deadlock(db: Database, service: JobsService, user: User) -> None:
    await own_shards(db, "s1", 1)
    jobs = await service.create_jobs(user, [spec(name=f"j{i}", schedule="* * * * * *") for i in range(60)])
    jobs += await service.create_jobs(user, [spec(name=f"once{i}") for i in range(60)])

    async def claimer() -> None:
        for _ in range(20):
            await claim(db, batch=10, ahead=5.0)

    async def deleter() -> None:
        for job in jobs:
            await service.delete_job(user, str(job.id))

    await asyncio.gather(claimer(), claimer(), deleter())  # a deadlock raises here
    assert (await service.list_jobs(user, None, 500, None))[0] == []


async def _set_next_run(db: Database, job_id: object, at: datetime) -> None:
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await conn.execute("UPDATE schedule SET next_run_at = %s WHERE job_id = %s", (at, job_id))


async def test_fires_missed_briefly_each_run_late(db: Database, service: JobsService, user: User) -> None:
    await own_shards(db, "s1", 1)
    (job,) = await service.create_jobs(user, [spec(schedule="* * * * * *")])
    behind = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    await _set_next_run(db, job.id, behind)  # as if its scheduler died 5 s ago
    fires = []
    while runs := await claim(db, ahead=0.0):
        fires += [r.scheduled_at for r in runs]
    assert fires[:5] == [behind + timedelta(seconds=i) for i in range(5)]


async def test_a_long_outage_ends_in_one_late_run(db: Database, service: JobsService, user: User) -> None:
    await own_shards(db, "s1", 1)
    (job,) = await service.create_jobs(user, [spec(schedule="* * * * * *")])
    await _set_next_run(db, job.id, datetime.now(UTC) - timedelta(minutes=10))
    runs = await claim(db, ahead=0.0)
    assert len(runs) == 1
    nxt = (await service.get_job(user, str(job.id))).next_run_at
    assert nxt is not None and nxt > datetime.now(UTC) - timedelta(seconds=1)


async def test_a_claim_records_the_workers_chosen_for_its_fires(
    db: Database, database_url: str, service: JobsService, user: User
) -> None:
    await own_shards(db, "s1", 1)
    await service.create_jobs(user, [spec(name=f"j{i}", priority=9 if i < 3 else 1) for i in range(5)])

    def three_to_w1(candidates: list[Candidate | None]) -> list[str]:  # the high-priority three
        return ["w1" if c is not None and c.priority == 9 else "" for c in candidates]

    claimed = await claim_due_fires(
        db,
        scheduler_id="s1",
        epoch=1,
        horizon=datetime.now(UTC) + timedelta(seconds=1),
        batch=10,
        choose_workers=three_to_w1,
    )
    assert len(claimed.assigned) == 3 and {w for _, w in claimed.assigned} == {"w1"}
    assert len(claimed.runs) == 2  # to the queue, assigned later
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, worker_id, assigned_at IS NOT NULL, scheduler_id FROM executions"
            " ORDER BY priority DESC"
        ).fetchall()
    assigned = {r.execution_id for r, _ in claimed.assigned}
    assert [(r[1], r[2], r[3]) for r in rows if r[0] in assigned] == [("w1", True, "s1")] * 3
    assert [(r[1], r[2]) for r in rows if r[0] not in assigned] == [(None, False)] * 2


async def test_a_scheduler_at_a_stale_epoch_claims_nothing(
    db: Database, service: JobsService, user: User
) -> None:
    # The fence: its shards went to another scheduler at a newer epoch while
    # it was frozen; woken, its claim finds nothing, and the new owner's all.
    await own_shards(db, "s1", 1)
    jobs = await service.create_jobs(user, [spec(name=f"j{i}") for i in range(5)])
    await own_shards(db, "s2", 2)
    assert await claim(db, scheduler_id="s1", epoch=1) == []
    assert {r.job_id for r in await claim(db, scheduler_id="s2", epoch=2)} == {j.id for j in jobs}


def _shard_lockers(database_url: str) -> dict[int, str]:
    """Each shard_owners row's xmax: FOR SHARE leaves its locker's transaction there."""
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT shard_id, xmax::text FROM shard_owners").fetchall())


async def test_a_claim_locks_only_the_shards_of_the_fires_it_took(
    db: Database, database_url: str, service: JobsService, user: User
) -> None:
    # Locking every owned shard wrote a WAL record per shard on every claim,
    # most of an idle cluster's WAL: a claim with nothing due locks none.
    await own_shards(db, "s1", 1)
    before = _shard_lockers(database_url)
    assert await claim(db) == []
    assert _shard_lockers(database_url) == before
    (job,) = await service.create_jobs(user, [spec(name="one")])
    assert [r.job_id for r in await claim(db)] == [job.id]
    after = _shard_lockers(database_url)
    changed = {shard for shard in after if after[shard] != before[shard]}
    assert changed == {job.shard_id}


async def test_a_shard_moved_while_the_claim_waits_for_it_is_not_claimed(
    db: Database, database_url: str, service: JobsService, user: User
) -> None:
    # The fence, concurrent: the leader is giving one of the scheduler's
    # shards away (its owner row changed, not yet committed) as the claim
    # takes due rows of it. The claim waits for that row, reads it again
    # once committed, and leaves that shard's fires to their new owner.
    await own_shards(db, "s1", 1)
    jobs = await service.create_jobs(user, [spec(name=f"j{i}") for i in range(16)])
    moved = jobs[0].shard_id
    with psycopg.connect(database_url) as leader:
        leader.execute("UPDATE shard_owners SET scheduler_id = 's2', epoch = 2 WHERE shard_id = %s", (moved,))
        claiming = asyncio.create_task(claim(db))
        try:
            with psycopg.connect(database_url, autocommit=True) as look:
                deadline = asyncio.get_running_loop().time() + 10
                while not look.execute(  # the claim's session, blocked by the leader's
                    "SELECT count(*) > 0 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (leader.info.backend_pid,),
                ).fetchone()[0]:  # type: ignore[index]
                    assert not claiming.done(), "the claim ended (or failed) without waiting for the shard"
                    assert asyncio.get_running_loop().time() < deadline, "the claim never waited"
                    await asyncio.sleep(0.02)
        except BaseException:
            claiming.cancel()
            raise
        leader.commit()
    taken = {r.job_id for r in await claiming}
    assert taken == {j.id for j in jobs if j.shard_id != moved}
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM schedule WHERE shard_id = %s", (moved,)).fetchone()
    assert left == (sum(1 for j in jobs if j.shard_id == moved),), "the moved shard's fires are still due"


async def test_a_job_the_api_holds_is_skipped_and_claimed_once_let_go(
    db: Database, database_url: str, service: JobsService, user: User
) -> None:
    # The claim locks each job row with SKIP LOCKED: a job being changed (its
    # row held) is left, schedule untouched, for the next claim.
    await own_shards(db, "s1", 1)
    held, free = await service.create_jobs(user, [spec(name="held"), spec(name="free")])
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (held.id,))
        assert [r.job_id for r in await claim(db)] == [free.id]
        with psycopg.connect(database_url) as look:
            left = look.execute("SELECT count(*) FROM schedule WHERE job_id = %s", (held.id,)).fetchone()
        assert left == (1,), "its fire is still due"
        holder.commit()
    assert [r.job_id for r in await claim(db)] == [held.id]
    assert await claim(db) == []


async def test_the_claim_reads_each_job_by_its_key_whatever_the_statistics(
    db: Database, database_url: str, user: User
) -> None:
    # With a backlog the planner knows of (analyzed), a join let it hash the
    # whole jobs table on every claim; each job is read and locked by key.
    await own_shards(db, "s1", 1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """
            WITH j AS (
                INSERT INTO jobs (id, owner_id, name, spec, shard_id, status)
                SELECT gen_random_uuid(), %(owner)s, 'bulk-' || g, '{"command": "true"}', g %% 8, 'active'
                FROM generate_series(1, 5000) g
                RETURNING id, shard_id)
            INSERT INTO schedule (job_id, shard_id, next_run_at)
            SELECT id, shard_id, now() - interval '1 s' FROM j
            """,
            {"owner": user.id},
        )
        conn.execute("ANALYZE jobs")
        conn.execute("ANALYZE schedule")
        params = {"scheduler_id": "s1", "epoch": 1, "horizon": datetime.now(UTC), "batch": 2000}
        row = conn.execute("EXPLAIN (FORMAT JSON) " + queries["select_due_fires"], params).fetchone()
    assert row is not None
    plan: Any = row[0] if isinstance(row[0], list) else json.loads(row[0])
    scans: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == "jobs":
            scans.append(node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    assert scans and set(scans) <= {"Index Scan"}, scans


async def test_advancing_a_batch_touches_only_its_fires_partition(database_url: str, user: User) -> None:
    # The advance names the batch's keys as lists too: the plan keeps only the
    # partitions of its fire times (it hashed every day's partition whole).
    at = datetime.now(UTC).replace(microsecond=0)
    params = {
        "job_ids": [uuid.uuid4() for _ in range(3)],
        "scheduled": [at] * 3,
        "next": [at + timedelta(seconds=1)] * 3,
        "runs": None,
        "triggers": None,
        "notes": None,
        "workers": None,
        "owners": [user.id] * 3,
        "shards": [0] * 3,
        "priorities": None,
        "max_live": None,
        "scheduler_id": "s1",
        "user_quota": 2147483647,
    }
    with psycopg.connect(database_url, autocommit=True) as conn:
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'schedule'::regclass"
        ).fetchone()
        plan = [r[0] for r in conn.execute("EXPLAIN " + queries["record_fires"], params).fetchall()]
    advance = plan[plan.index(next(line for line in plan if "CTE advanced" in line)) :]
    advance = advance[: advance.index(next(line for line in advance if "CTE retired" in line))]
    assert partitions is not None and partitions[0] > 2
    assert len([line for line in advance if "Update on schedule_" in line]) == 1, advance
