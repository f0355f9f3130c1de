"""What follows a failed attempt, on a real Postgres: retries by the job's
policy (timing within the jitter, classes, exit codes, budget), dead letters
on the last attempt only, lost runs by the delivery guarantee, replay."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from coordinator.fencing import fenced_transaction
from coordinator.lost_runs import declare_lost
from cronfleet.codec import proto
from cronfleet.db import Database
from cronfleet.errors import NotFound
from cronfleet.models import Job, RetryPolicy
from cronfleet.outcomes import LOST_RERUNS, retry_delay
from cronfleet.records import Execution, User
from cronfleet.v1 import dispatch_pb2
from gateway.service import JobsService
from scheduler.events import EventRecorder
from scheduler.streams import WorkerStream
from tests.helpers import job_spec, new_user

pytestmark = pytest.mark.integration
POLICY = {
    "backoff_seconds": 1,
    "multiplier": 2,
    "max_backoff_seconds": 60,
    "jitter": 0.2,
    "on": ["failed", "lost"],
    "never_exit_codes": [2],
}


async def attempts(service: JobsService, user: User, job: Job) -> list[Execution]:
    found, _ = await service.list_executions(user, job_id=str(job.id))
    return sorted(found, key=lambda e: e.attempt)


async def finish(
    db: Database, execution: Execution, status: str = "failed", exit_code: int | None = 1
) -> None:
    """Report the attempt finished, as a worker would, through the scheduler's recorder."""
    event = dispatch_pb2.RunEvent(
        execution_id=execution.id,
        kind=dispatch_pb2.EVENT_KIND_FINISHED,
        at=proto.timestamp(datetime.now(UTC)),
        status=status,
        error="oom_killed" if status == "oom" else "",
    )
    if status == "oom":
        event.status = "failed"
    if exit_code is not None:
        event.exit_code = exit_code
    recorder = EventRecorder(db, flush_interval=0, retry_backoff_seconds=2.0)
    recorder.add(WorkerStream("w1", credits=0), [event])
    await recorder.flush()


def test_the_delay_grows_by_the_multiplier_up_to_the_cap_within_the_jitter() -> None:
    policy = RetryPolicy(backoff_seconds=1, multiplier=2, max_backoff_seconds=5, jitter=0.2)
    rand = random.Random(7)
    for attempt, base in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        for _ in range(50):
            assert base * 0.8 <= retry_delay(policy, attempt, rand) <= base * 1.2


async def test_failures_retry_by_the_policy_then_land_in_dead_letters(
    db: Database, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(retry=POLICY, max_retries=3)])
    await service.run_job(user, str(job.id))
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0)]:
        current = (await attempts(service, user, job))[-1]
        assert current.attempt == attempt
        before = datetime.now(UTC)
        await finish(db, current)
        after = datetime.now(UTC)
        nxt = (await attempts(service, user, job))[-1]
        assert (nxt.attempt, nxt.trigger, nxt.status) == (attempt + 1, "retry", "scheduled")
        assert nxt.scheduled_at == current.scheduled_at, "each attempt of one fire"
        assert before + timedelta(seconds=base * 0.8) <= nxt.run_at <= after + timedelta(seconds=base * 1.2)
        assert (await service.list_dead_letters(user))[0] == [], "no dead letter while a retry is left"
    await finish(db, (await attempts(service, user, job))[-1])
    assert len(await attempts(service, user, job)) == 4, "three retries, then no more"
    (dead,), _ = await service.list_dead_letters(user)
    assert dead.attempts == 4 and dead.job_id == job.id and "exit code 1" in dead.reason
    assert dead.job_name == job.spec.name, "named, even once the job is deleted"


@pytest.mark.parametrize(
    ("status", "exit_code", "why"),
    [
        ("failed", 2, "never retried for exit code 2"),
        ("timed_out", 143, "does not retry timed_out"),
        ("oom", 137, "does not retry oom_killed"),
    ],
)
async def test_what_the_policy_excludes_is_not_retried(
    db: Database, service: JobsService, user: User, status: str, exit_code: int, why: str
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(retry=POLICY, max_retries=3)])
    run = await service.run_job(user, str(job.id))
    await finish(db, run, status, exit_code)
    assert len(await attempts(service, user, job)) == 1
    (dead,), _ = await service.list_dead_letters(user)
    assert dead.execution_id == run.id and why in dead.reason


async def test_success_and_cancellation_leave_no_dead_letter(
    db: Database, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec()])
    await finish(db, await service.run_job(user, str(job.id)), "succeeded", 0)
    await finish(db, await service.run_job(user, str(job.id)), "cancelled", None)
    assert (await service.list_dead_letters(user))[0] == []


async def test_the_default_policy_keeps_the_old_behaviour(
    db: Database, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(max_retries=1)])
    run = await service.run_job(user, str(job.id))
    before = datetime.now(UTC)
    await finish(db, run, "timed_out", 143)
    retry = (await attempts(service, user, job))[-1]
    assert retry.attempt == 2 and before + timedelta(seconds=2) <= retry.run_at <= before + timedelta(
        seconds=3
    )


async def lose(db: Database, execution: Execution) -> int:
    """Hand the attempt to a worker that then vanished; the leader declares it lost."""
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE executions SET worker_id = 'gone', assigned_at = now() - interval '1 minute'"
            " WHERE id = %s",
            (execution.id,),
        )
    async with fenced_transaction(db, 1):
        pass
    return await declare_lost(db, 1, live_workers=[], retry_backoff_seconds=0.0)


async def test_a_lost_run_runs_again_up_to_the_cluster_bound(
    db: Database, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec()])  # no retries configured
    run = await service.run_job(user, str(job.id))
    for attempt in range(2, 2 + LOST_RERUNS):
        await lose(db, run)
        *_, run = await attempts(service, user, job)
        assert (run.attempt, run.trigger, run.status) == (attempt, "retry", "scheduled")
        assert run.run_at - run.scheduled_at < timedelta(minutes=1), "at once, not after a backoff"
    await lose(db, run)
    assert len(await attempts(service, user, job)) == 1 + LOST_RERUNS, "a bounded number, not forever"
    (dead,), _ = await service.list_dead_letters(user)
    assert dead.attempts == 1 + LOST_RERUNS and f"lost {1 + LOST_RERUNS} times" in dead.reason


async def test_a_run_lost_before_its_time_runs_again_at_its_time_not_before(
    db: Database, service: JobsService, user: User
) -> None:
    """Fires are claimed and armed seconds ahead: a worker that dies holding
    one loses a run that had not started, and its re-run keeps its time (the
    chaos suite found such re-runs started up to 0.6 s early)."""
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    (job,) = await service.create_jobs(user, [job_spec(run_at=due.isoformat())])
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await conn.execute(  # as the claim records it, ahead of its time
            "INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, run_at, status)"
            " VALUES (%s, %s, %s, %s, %s, 'scheduled')",
            (job.id, job.owner_id, job.shard_id, due, due),
        )
    (armed,) = await attempts(service, user, job)
    await lose(db, armed)
    first, again = await attempts(service, user, job)
    assert first.status == "lost" and (again.attempt, again.status) == (2, "scheduled")
    assert again.run_at == due, "at its time, not at once"


async def test_lost_attempts_use_none_of_the_jobs_retries(
    db: Database, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(max_retries=1)])
    await lose(db, await service.run_job(user, str(job.id)))
    _, second = await attempts(service, user, job)
    await finish(db, second)  # fails: its one retry is still there
    *_, third = await attempts(service, user, job)
    assert (third.attempt, third.status) == (3, "scheduled")
    await finish(db, third)  # fails again: now the budget is spent
    assert len(await attempts(service, user, job)) == 3
    (dead,), _ = await service.list_dead_letters(user)
    assert "retries spent (2 attempts)" in dead.reason


async def test_at_most_once_never_runs_a_lost_run_again(
    db: Database, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec(delivery="at_most_once", max_retries=3)])
    await lose(db, await service.run_job(user, str(job.id)))
    assert [e.status for e in await attempts(service, user, job)] == ["lost"]
    (dead,), _ = await service.list_dead_letters(user)
    assert "at_most_once" in dead.reason


async def test_a_returned_run_is_assigned_again_as_the_same_attempt_unless_cancelled_meanwhile(
    db: Database, service: JobsService, user: User
) -> None:
    """A stopping worker returns the runs it never started (RETURNED): no
    worker holds them, nothing is lost or retried; one whose cancel was on
    its way to that worker is cancelled; another worker's word moves
    nothing, nor does a word older than the assignment (resent late, after
    the same worker id restarted and was given the run again)."""
    (job,) = await service.create_jobs(user, [job_spec(delivery="at_most_once")])
    kept, cancelled, others, again = [await service.run_job(user, str(job.id)) for _ in range(4)]
    async with await psycopg.AsyncConnection.connect(db.url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE executions SET worker_id = 'w1', assigned_at = now() - interval '1 minute'"
            " WHERE id = ANY(%s)",
            ([kept.id, cancelled.id, others.id, again.id],),
        )
        await conn.execute("UPDATE executions SET assigned_at = now() WHERE id = %s", (again.id,))
    await service.cancel_execution(user, str(cancelled.id))  # flagged: it is on a worker
    recorder = EventRecorder(db, flush_interval=0, retry_backoff_seconds=2.0)

    def returned(e: Execution, ago: float = 0.0) -> dispatch_pb2.RunEvent:
        at = proto.timestamp(datetime.now(UTC) - timedelta(seconds=ago))
        return dispatch_pb2.RunEvent(execution_id=e.id, kind=dispatch_pb2.EVENT_KIND_RETURNED, at=at)

    recorder.add(WorkerStream("w1", credits=0), [returned(kept), returned(cancelled), returned(again, 30)])
    recorder.add(WorkerStream("w2", credits=0), [returned(others)])
    await recorder.flush()
    now = {e.id: e for e in await attempts(service, user, job)}
    assert len(now) == 4, "no retry, no new attempt"
    assert (now[kept.id].status, now[kept.id].worker_id, now[kept.id].attempt) == ("scheduled", None, 1)
    assert now[cancelled.id].status == "cancelled" and now[cancelled.id].finished_at is not None
    assert now[cancelled.id].error == "stopped before its time: cancelled"
    assert (now[others.id].status, now[others.id].worker_id) == ("scheduled", "w1")
    assert (now[again.id].status, now[again.id].worker_id) == ("scheduled", "w1"), "assigned after the word"
    assert (await service.list_dead_letters(user))[0] == []


async def test_a_dead_letter_is_replayed_as_a_fresh_chain_or_discarded(
    db: Database, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec()])
    await finish(db, await service.run_job(user, str(job.id)))
    await finish(db, await service.run_job(user, str(job.id)))
    (newer, older), _ = await service.list_dead_letters(user)
    bob = await new_user(service, "bob")
    with pytest.raises(NotFound):
        await service.replay_dead_letter(bob, str(newer.id))
    assert len((await service.list_dead_letters(bob))[0]) == 0
    replay = await service.replay_dead_letter(user, str(newer.id))
    assert (replay.trigger, replay.attempt, replay.status) == ("replay", 1, "scheduled")
    await service.delete_dead_letter(user, str(older.id))
    assert (await service.list_dead_letters(user))[0] == []
    with pytest.raises(NotFound):
        await service.delete_dead_letter(user, str(older.id))


def _event(
    execution: Execution, kind: dispatch_pb2.EventKind, at: datetime, **fields: object
) -> dispatch_pb2.RunEvent:
    """As a worker reports it: naming the run's fire (its partition)."""
    return dispatch_pb2.RunEvent(
        execution_id=execution.id,
        kind=kind,
        at=proto.timestamp(at),
        scheduled_at=proto.timestamp(execution.scheduled_at),
        **fields,  # type: ignore[arg-type]
    )


def _row_version(database_url: str, execution: Execution) -> str:
    """The row's xmin: which transaction wrote its current version."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT xmin::text FROM executions WHERE id = %s", (execution.id,)).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_start_that_arrives_alone_waits_a_round_and_its_finish_is_written_with_it(
    db: Database, database_url: str, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec()])
    await service.run_job(user, str(job.id))
    (run,) = await attempts(service, user, job)
    recorder = EventRecorder(db, flush_interval=0, retry_backoff_seconds=2.0, hold_starts=True)
    stream = WorkerStream("w1", credits=0)
    started = datetime.now(UTC)
    recorder.add(stream, [_event(run, dispatch_pb2.EVENT_KIND_STARTED, started, lateness_ms=3.0)])
    before = _row_version(database_url, run)
    await recorder.flush(hold=True)
    assert _row_version(database_url, run) == before  # held, not written
    assert stream.outbox.empty()  # nor acknowledged: the worker would resend it
    recorder.add(
        stream, [_event(run, dispatch_pb2.EVENT_KIND_FINISHED, started, status="succeeded", exit_code=0)]
    )
    await recorder.flush(hold=True)
    (done,) = await attempts(service, user, job)
    assert done.status == "succeeded" and done.started_at == started and done.lateness_ms == 3.0
    assert stream.outbox.qsize() == 1  # both acknowledged, in one message


async def test_a_short_runs_one_event_records_its_start_and_its_end(
    db: Database, service: JobsService, user: User
) -> None:
    """A run that ended before its start was said is reported in one FINISHED
    event carrying when it started (started_at) and how late."""
    (job,) = await service.create_jobs(user, [job_spec()])
    await service.run_job(user, str(job.id))
    (run,) = await attempts(service, user, job)
    recorder = EventRecorder(db, flush_interval=0, retry_backoff_seconds=2.0, hold_starts=True)
    started = datetime.now(UTC)
    ended = started + timedelta(milliseconds=4)
    finished = _event(run, dispatch_pb2.EVENT_KIND_FINISHED, ended, status="succeeded", exit_code=0)
    finished.started_at.CopyFrom(proto.timestamp(started))
    finished.lateness_ms = 2.5
    recorder.add(WorkerStream("w1", credits=0), [finished])
    await recorder.flush(hold=True)
    (done,) = await attempts(service, user, job)
    assert (done.status, done.started_at, done.finished_at) == ("succeeded", started, ended)
    assert done.lateness_ms == 2.5


async def test_a_held_start_is_written_in_the_next_round_without_its_finish(
    db: Database, service: JobsService, user: User
) -> None:
    (job,) = await service.create_jobs(user, [job_spec()])
    await service.run_job(user, str(job.id))
    (run,) = await attempts(service, user, job)
    recorder = EventRecorder(db, flush_interval=0, retry_backoff_seconds=2.0, hold_starts=True)
    recorder.add(
        WorkerStream("w1", credits=0), [_event(run, dispatch_pb2.EVENT_KIND_STARTED, datetime.now(UTC))]
    )
    await recorder.flush(hold=True)
    await recorder.flush(hold=True)  # a round with nothing new
    assert (await attempts(service, user, job))[0].status == "running"


async def test_a_batch_of_finishes_writes_each_runs_own_columns_whether_its_neighbours_set_them_or_not(
    db: Database, service: JobsService, user: User
) -> None:
    """The finish sends a column whose every value is the default as NULL
    (rows.sparse): a run with everything set beside a plain one, then a
    plain one alone, each keep what they reported."""
    jobs = await service.create_jobs(user, [job_spec(), job_spec(), job_spec()])
    for job in jobs:
        await service.run_job(user, str(job.id))
    full, plain, alone = [(await attempts(service, user, job))[0] for job in jobs]
    at = datetime.now(UTC)
    everything = _event(
        full, dispatch_pb2.EVENT_KIND_FINISHED, at, status="failed", exit_code=3, error="boom",
        log_url="file:///logs/x.log", log_bytes=12, cold_start=True, checkpoint=b"cp",
        checkpoint_truncated=True, container_id="c1",
    )  # fmt: skip
    everything.started_at.CopyFrom(proto.timestamp(at))
    everything.lateness_ms = 1.5
    recorder = EventRecorder(db, flush_interval=0, retry_backoff_seconds=2.0)
    stream = WorkerStream("w1", credits=0)
    plain_end = _event(plain, dispatch_pb2.EVENT_KIND_FINISHED, at, status="succeeded")
    recorder.add(stream, [everything, plain_end])
    await recorder.flush()
    recorder.add(stream, [_event(alone, dispatch_pb2.EVENT_KIND_FINISHED, at, status="succeeded")])
    await recorder.flush()
    (got_full,) = [e for e in await attempts(service, user, jobs[0]) if e.id == full.id]
    assert (got_full.status, got_full.exit_code, got_full.error) == ("failed", 3, "boom")
    assert got_full.log_url and (got_full.log_bytes, got_full.container_id) == (12, "c1")  # a link to it
    assert (got_full.cold_start, got_full.checkpoint, got_full.checkpoint_truncated) == (True, b"cp", True)
    assert (got_full.started_at, got_full.lateness_ms) == (at, 1.5)
    for run, job in ((plain, jobs[1]), (alone, jobs[2])):
        (got,) = await attempts(service, user, job)
        assert (got.id, got.status, got.exit_code, got.error, got.log_url, got.log_bytes) == (
            run.id, "succeeded", None, None, None, None,
        )  # fmt: skip
        assert (got.cold_start, got.checkpoint, got.checkpoint_truncated, got.container_id) == (
            False, None, False, None,
        )  # fmt: skip
        assert (got.started_at, got.lateness_ms, got.finished_at) == (None, None, at)
