"""A worker's runs withdrawn (job paused, edited, deleted) against cancelled
by a user: a withdrawal drops a run not yet started, and leaves one that
started alone (it started before the change was acknowledged); a cancel
stops it either way. Real processes (the process runtime), a real outbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cronfleet.codec import proto
from cronfleet.logstore import LocalLogStore
from cronfleet.models import JobSpec
from cronfleet.v1 import dispatch_pb2
from tests.helpers import Recorder, until
from worker.lifecycle import Runs
from worker.outbox import Outbox
from worker.process_runtime import ProcessRuntime
from worker.runtime import ArmedRun, RunOutcome, RunSpec


def make_runs(tmp_path: Path, sink: Recorder, give_back: Callable[[str], None] = lambda _: None) -> Runs:
    return Runs(
        ProcessRuntime(0.5),
        LocalLogStore(tmp_path / "logs", "http://logs"),
        Outbox(lambda _: sink),
        http=ProcessRuntime(0.5),
        spool_root=tmp_path / "spool",
        arm_concurrency=4,
        live_log_interval=0,
        give_back=give_back,
    )


def assign(runs: Runs, execution_id: int, command: str, fire_at: float) -> None:
    assignment = dispatch_pb2.Assignment(
        execution_id=execution_id,
        job_id="job",
        attempt=1,
        owner_id="owner",
        fire_at=proto.timestamp_at(fire_at),
        job=proto.spec_to_proto(JobSpec(name="j", command=command)),
    )
    runs.start(assignment, origin="scheduler")


async def test_a_withdrawn_run_not_yet_started_never_starts(tmp_path: Path) -> None:
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    marker = tmp_path / "ran"
    assign(runs, 1, f"touch {marker}", time.time() + 1.0)
    await until(lambda: runs.active[1].armed is not None)
    runs.withdraw([1])
    await until(lambda: sink.finished(1) is not None)
    finished = sink.finished(1)
    assert finished is not None and finished.status == "cancelled"
    assert dispatch_pb2.EVENT_KIND_STARTED not in sink.kinds(1)
    assert not marker.exists()


async def test_a_withdrawn_run_is_reported_before_its_clean_up_ends(tmp_path: Path) -> None:
    # Its release was the only way to start it, so the word goes out at once
    # (a pause or delete waits for it; a container's removal or a per_job
    # gate's wait took 0.2-0.3 s more), and its slot comes back only after
    # the clean-up.
    sink = Recorder()
    given_back: list[str] = []
    runs = make_runs(tmp_path, sink, given_back.append)
    marker = tmp_path / "ran"
    assign(runs, 5, f"touch {marker}", time.time() + 5)
    await until(lambda: runs.active[5].armed is not None)
    armed = runs.active[5].armed
    assert armed is not None
    cleaned_up = asyncio.Event()
    real_wait = armed.wait

    async def slow_clean_up() -> RunOutcome:
        await cleaned_up.wait()
        return await real_wait()

    armed.wait = slow_clean_up  # type: ignore[method-assign]
    runs.withdraw([5])
    await until(lambda: sink.finished(5) is not None)
    finished = sink.finished(5)
    assert finished is not None and finished.status == "cancelled"
    assert 5 in runs.active and given_back == []
    cleaned_up.set()
    await until(lambda: 5 not in runs.active)
    assert given_back == ["scheduler"]
    assert sink.kinds(5) == [dispatch_pb2.EVENT_KIND_FINISHED] and not marker.exists()


async def test_a_withdrawn_run_that_started_goes_on(tmp_path: Path) -> None:
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    release = tmp_path / "go"
    assign(runs, 2, f"while [ ! -e {release} ]; do sleep 0.02; done; echo done", time.time())
    await until(lambda: runs.active[2].started_at is not None)
    runs.withdraw([2])
    release.touch()
    await until(lambda: sink.finished(2) is not None)
    finished = sink.finished(2)
    assert finished is not None and (finished.status, finished.exit_code) == ("succeeded", 0)
    # Its start is said: on its own, or on the finish if it ended first.
    assert dispatch_pb2.EVENT_KIND_STARTED in sink.kinds(2) or finished.HasField("started_at")


async def test_a_cancel_stops_a_started_run(tmp_path: Path) -> None:
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    assign(runs, 3, "sleep 30", time.time())
    await until(lambda: runs.active[3].started_at is not None)
    runs.cancel([3])
    await until(lambda: sink.finished(3) is not None)
    finished = sink.finished(3)
    assert finished is not None and finished.status == "cancelled"


def while_it_arms(runs: Runs, then: Callable[[], Awaitable[None]]) -> None:
    """``then`` is done as the runtime's arming ends, before the worker has
    the armed run: a run armed after its instant is running by then (forked
    running, worker.launcher)."""
    arm = runs.runtime.arm

    async def arm_then(spec: RunSpec) -> ArmedRun:
        armed = await arm(spec)
        await then()
        return armed

    runs.runtime.arm = arm_then  # type: ignore[method-assign]


async def test_a_late_run_cancelled_while_it_arms_is_stopped_either_way(tmp_path: Path) -> None:
    # Kept from beginning (its claim taken first: worker.launcher), or begun
    # and killed: cancelled at once either way, and said started if it ran.
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    while_it_arms(runs, lambda: runs.kill(runs.active[6], "cancelled"))  # what a cancel does
    marker = tmp_path / "ran"
    assign(runs, 6, f"touch {marker}; sleep 30", time.time() - 1)
    await until(lambda: sink.finished(6) is not None, timeout=10)
    finished = sink.finished(6)
    assert finished is not None and finished.status == "cancelled"
    started = dispatch_pb2.EVENT_KIND_STARTED in sink.kinds(6) or finished.HasField("started_at")
    assert started or not marker.exists(), "a run that ran is said started"


async def test_a_late_run_withdrawn_before_its_fork_starts_only_if_it_had_begun(tmp_path: Path) -> None:
    # The withdrawal arrives while the run is on its way to the launcher:
    # kept from beginning (withdrawn, never started) or begun (goes on, said
    # started), whichever came first, and never a mix of the two.
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    arm = runs.runtime.arm

    async def withdrawn_then_armed(spec: RunSpec) -> ArmedRun:
        runs.withdraw([spec.execution_id])
        return await arm(spec)

    runs.runtime.arm = withdrawn_then_armed  # type: ignore[method-assign]
    ids = range(10, 20)
    for execution_id in ids:
        assign(runs, execution_id, f"touch {tmp_path / str(execution_id)}", time.time() - 1)
    await until(lambda: all(sink.finished(i) is not None for i in ids), timeout=20)
    for execution_id in ids:
        finished = sink.finished(execution_id)
        assert finished is not None
        said = sink.kinds(execution_id)
        started = dispatch_pb2.EVENT_KIND_STARTED in said or finished.HasField("started_at")
        ran = (tmp_path / str(execution_id)).exists()
        assert started == ran and finished.status == ("succeeded" if ran else "cancelled")


async def test_a_withdrawal_that_overtakes_its_assignment_keeps_it_from_starting(tmp_path: Path) -> None:
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    marker = tmp_path / "ran"
    runs.withdraw([4])
    assign(runs, 4, f"touch {marker}", time.time())
    await until(lambda: sink.finished(4) is not None)
    assert not marker.exists()


async def test_a_stopping_worker_takes_no_new_run(tmp_path: Path) -> None:
    # Its graceful stop has killed what it held; a run arriving now would be
    # armed with nothing left to stop it (a container left running after the
    # worker). It is not taken but returned, to be assigned elsewhere.
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    marker = tmp_path / "ran"
    runs.stopping = True
    assign(runs, 3, f"touch {marker}", time.time())
    assert 3 not in runs.active
    await runs.wait_all(1.0)
    assert sink.kinds(3) == [dispatch_pb2.EVENT_KIND_RETURNED] and not marker.exists()


async def test_a_stopping_worker_returns_what_it_has_not_started(tmp_path: Path) -> None:
    # Armed and waiting for its time when the stop comes: returned whole
    # (it never ran); one already running is killed and reported lost.
    sink = Recorder()
    runs = make_runs(tmp_path, sink)
    waiting, running = tmp_path / "waiting", tmp_path / "running"
    assign(runs, 1, f"touch {waiting}", time.time() + 30)
    assign(runs, 2, f"touch {running}; sleep 30", time.time())
    await until(running.exists)
    runs.stopping = True
    await runs.kill_all("lost")
    await runs.wait_all(10.0)
    assert sink.kinds(1) == [dispatch_pb2.EVENT_KIND_RETURNED] and not waiting.exists()
    finished = sink.finished(2)
    assert finished is not None and finished.status == "lost"
    # It started: said on its own, or on the finish if the kill came first.
    started, ended = dispatch_pb2.EVENT_KIND_STARTED, dispatch_pb2.EVENT_KIND_FINISHED
    said_apart = sink.kinds(2) == [started, ended]
    assert said_apart or (sink.kinds(2) == [ended] and finished.HasField("started_at"))
