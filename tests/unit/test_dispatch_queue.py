"""The scheduler's dispatch queue: priority first, never past a worker's credit."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cronfleet.codec import proto
from cronfleet.config import Settings
from cronfleet.v1 import dispatch_pb2, jobs_pb2
from scheduler.claim_loop import ClaimLoop
from scheduler.dispatch import Candidate, Dispatcher, DispatchQueue, QueuedRun
from scheduler.streams import WorkerStream, WorkerStreams

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def queued(execution_id: int, priority: int = 5, due_in: float = 0.0) -> QueuedRun:
    fire_at = NOW + timedelta(seconds=due_in)
    return QueuedRun(
        sort_key=(-priority, fire_at, execution_id),
        execution_id=execution_id,
        job_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        scheduled_at=fire_at,
        attempt=1,
        fire_at=fire_at,
        job=jobs_pb2.JobSpec(name="j", command="true"),
    )


def test_highest_priority_then_soonest_goes_first() -> None:
    queue = DispatchQueue()
    queue.push(
        [queued(1, priority=5, due_in=0), queued(2, priority=9, due_in=5), queued(3, priority=5, due_in=-1)]
    )
    plan = queue.plan([WorkerStream("w", credits=10)])
    assert [run.execution_id for run, _ in plan] == [2, 3, 1]


def test_no_worker_gets_more_runs_than_its_credit() -> None:
    queue = DispatchQueue()
    queue.push([queued(i) for i in range(10)])
    a, b = WorkerStream("a", credits=3), WorkerStream("b", credits=2)
    plan = queue.plan([a, b])
    given = [stream.worker_id for _, stream in plan]
    assert (given.count("a"), given.count("b")) == (3, 2)
    assert len(queue) == 5, "the rest wait for credit"
    assert queue.plan([a, b]) != [], "credits are spent on recording, not on planning"


def test_runs_spread_to_the_worker_with_most_room() -> None:
    queue = DispatchQueue()
    queue.push([queued(i) for i in range(4)])
    plan = queue.plan([WorkerStream("a", credits=10), WorkerStream("b", credits=2)])
    assert [stream.worker_id for _, stream in plan] == ["a"] * 4


def test_a_run_is_queued_once_until_forgotten() -> None:
    queue = DispatchQueue()
    run = queued(7)
    queue.push([run])
    queue.push([run])
    assert len(queue) == 1 and queue.queued_ids == [7]
    (taken,) = queue.plan([WorkerStream("w", credits=1)])
    queue.put_back([taken[0]])  # could not be recorded: waits for the next round
    assert len(queue) == 1 and queue.queued_ids == [7]
    queue.plan([WorkerStream("w", credits=1)])
    queue.forget([run])
    assert queue.queued_ids == []


def test_a_silent_worker_gets_no_assignment() -> None:
    streams = WorkerStreams(heartbeat_interval=1.0)
    quiet, talking = WorkerStream("quiet", credits=5), WorkerStream("talking", credits=5)
    streams.add(quiet)
    streams.add(talking)
    quiet.last_heard -= 10  # frozen or cut off: its TCP stream stays open
    assert streams.responsive() == [talking]
    queue = DispatchQueue()
    queue.push([queued(1)])
    assert [s.worker_id for _, s in queue.plan(streams.responsive())] == ["talking"]


def test_a_stopping_worker_gets_no_assignment() -> None:
    streams = WorkerStreams(heartbeat_interval=1.0)
    leaving, staying = WorkerStream("leaving", credits=50), WorkerStream("staying", credits=1)
    streams.add(leaving)
    streams.add(staying)
    leaving.leaving = True  # its Leaving message: the runs it returns must not come back to it
    assert streams.responsive() == [staying]


def test_a_reconnecting_worker_replaces_its_old_stream() -> None:
    streams = WorkerStreams(heartbeat_interval=1.0)
    old, new = WorkerStream("w", credits=1), WorkerStream("w", credits=4)
    streams.add(old)
    streams.add(new)
    assert streams.get("w") is new and old.outbox.get_nowait() is None  # the old one is closed
    streams.remove(old)  # the old stream's own cleanup must not drop the new one
    assert streams.get("w") is new


def test_a_worker_that_cannot_start_its_runs_in_time_gets_no_more() -> None:
    streams = WorkerStreams(heartbeat_interval=1.0)
    slow, keeping_up = WorkerStream("slow", credits=50), WorkerStream("ok", credits=50)
    streams.add(slow)
    streams.add(keeping_up)
    now = time.time()
    slow.unstarted = {i: now - 5 for i in range(4)}  # four runs overdue by 5 s
    keeping_up.unstarted = {10: now + 2}  # armed ahead of its time: fine
    assert streams.responsive() == [keeping_up]
    slow.unstarted.pop(0)  # it started one
    assert streams.responsive() == [slow, keeping_up]


def test_runs_handed_over_late_are_the_workers_to_start_from_then() -> None:
    """A backlog's runs were late before the worker had them: it is judged
    by how soon it starts them, not by the lateness it was handed."""
    streams = WorkerStreams(heartbeat_interval=1.0)
    worker = WorkerStream("w", credits=100)
    streams.add(worker)
    late = [queued(i, due_in=-30) for i in range(10)]  # long overdue when handed over
    assert _dispatcher(streams).send_assigned([(run, "w") for run in late]) == 10
    assert streams.responsive() == [worker], "just handed over: not yet behind"
    worker.unstarted = dict.fromkeys(worker.unstarted, time.time() - 2)  # 2 s later, none started
    assert streams.responsive() == []


def test_nothing_more_is_claimed_for_workers_that_are_behind() -> None:
    """Fires a worker cannot take stay in Postgres, where the misfire policy
    bounds their lateness, instead of waiting here late without limit."""
    streams = WorkerStreams(heartbeat_interval=1.0)
    nobody: Any = None
    loop = ClaimLoop(Settings(claim_batch=500), nobody, nobody, nobody, nobody, streams, nobody, nobody)
    assert loop.queue_bound() == 500, "no worker yet: one batch waits here"
    worker = WorkerStream("w", credits=40)
    streams.add(worker)
    assert loop.queue_bound() == 40, "what the worker has room for"
    worker.unstarted = {i: time.time() - 10 for i in range(4)}
    assert loop.queue_bound() == 0, "behind: nothing more"


def test_runs_needing_a_fresh_container_go_only_where_there_is_room_for_them() -> None:
    """A docker worker tells its room (warm containers and the cold starts it
    makes at once): runs beyond it would wait there for containers, late."""
    queue = DispatchQueue()
    per_run = [queued(i, priority=9) for i in range(5)]
    per_job = queued(10)
    per_job.job.container = "per_job"
    http = queued(11)
    http.job.http.url = "https://example.com/"
    queue.push([*per_run, per_job, http])
    docker = WorkerStream("docker", credits=50, room=4)
    docker.pooled = {100, 101}  # two of its room held already
    plan = queue.plan([docker])
    assert [run.execution_id for run, _ in plan] == [0, 1, 10, 11], "room for two; the rest pass by"
    assert len(queue) == 3 and queue.fresh_container_runs() == 3
    unlimited = WorkerStream("process", credits=50)  # sends no Room: credit alone
    assert [run.execution_id for run, _ in queue.plan([docker, unlimited])] == [2, 3, 4]


def test_fires_needing_containers_are_not_claimed_beyond_the_workers_room() -> None:
    streams = WorkerStreams(heartbeat_interval=1.0)
    nobody: Any = None
    queue = DispatchQueue()
    loop = ClaimLoop(Settings(claim_batch=500), nobody, nobody, queue, nobody, streams, nobody, nobody)
    worker = WorkerStream("w", credits=40, room=6)
    streams.add(worker)
    assert loop.fresh_room() == 6
    worker.pooled = {1, 2}
    assert loop.fresh_room() == 4
    streams.add(WorkerStream("p", credits=10))
    assert loop.fresh_room() is None, "a worker with no such limit takes what the others cannot"


def _dispatcher(streams: WorkerStreams, queue: DispatchQueue | None = None) -> Dispatcher:
    nobody: Any = None
    return Dispatcher(nobody, "s1", nobody, queue or DispatchQueue(), streams)


def test_fires_being_claimed_get_workers_by_priority_within_credit() -> None:
    streams = WorkerStreams(heartbeat_interval=1.0)
    streams.add(WorkerStream("w1", credits=2))
    streams.add(WorkerStream("w2", credits=1))
    candidates: list[Candidate | None] = [
        Candidate(1, NOW, needs_fresh_container=False),
        None,  # not to run (skipped by its misfire policy): no worker
        Candidate(9, NOW + timedelta(seconds=2), needs_fresh_container=False),
        Candidate(5, NOW, needs_fresh_container=False),
        Candidate(5, NOW + timedelta(seconds=1), needs_fresh_container=False),
    ]
    chosen = _dispatcher(streams).choose_workers(candidates)
    assert chosen[1] == "" and chosen[0] == ""  # the lowest priority waits: credit for three only
    assert sorted(chosen[2:]) == ["w1", "w1", "w2"]


def test_fires_being_claimed_wait_behind_runs_already_queued() -> None:
    streams = WorkerStreams(heartbeat_interval=1.0)
    streams.add(WorkerStream("w1", credits=10))
    queue = DispatchQueue()
    queue.push([queued(1, priority=1)])
    chosen = _dispatcher(streams, queue).choose_workers([Candidate(9, NOW, needs_fresh_container=False)])
    assert chosen == [""]  # the queue goes first (the dispatcher plans it by priority)


def test_fires_needing_a_fresh_container_get_a_worker_only_within_its_room() -> None:
    streams = WorkerStreams(heartbeat_interval=1.0)
    streams.add(WorkerStream("w1", credits=10, room=1))
    fresh = Candidate(5, NOW, needs_fresh_container=True)
    per_job = Candidate(5, NOW, needs_fresh_container=False)
    assert _dispatcher(streams).choose_workers([fresh, fresh, per_job]) == ["w1", "", "w1"]


def test_an_assignment_made_in_its_batch_carries_the_run_and_its_job() -> None:
    fire = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    first = dataclasses.replace(queued(7), scheduled_at=fire, fire_at=fire)
    retry = dataclasses.replace(
        queued(8), scheduled_at=fire, attempt=2, fire_at=fire + timedelta(seconds=30), checkpoint=b"at 3"
    )
    message = dispatch_pb2.SchedulerMessage()
    first.add_to(message.assignments.assignments)
    retry.add_to(message.assignments.assignments)
    sent = dispatch_pb2.SchedulerMessage.FromString(message.SerializeToString()).assignments.assignments
    assert [a.execution_id for a in sent] == [7, 8]
    for got, expected in zip(sent, (first, retry), strict=True):
        assert (got.job_id, got.owner_id) == (str(expected.job_id), str(expected.owner_id))
        assert proto.to_datetime(got.scheduled_at) == fire
        assert proto.to_datetime(got.fire_at) == expected.fire_at
        assert got.attempt == expected.attempt and got.checkpoint == expected.checkpoint
        assert got.job == expected.job
