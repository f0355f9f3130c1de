"""What a worker tells its scheduler of a run: a run that ends before its
start was said is reported in one event (FINISHED, with when it started),
a longer one in two."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from cronfleet.codec import proto
from cronfleet.logstore import LocalLogStore
from cronfleet.models import JobSpec
from cronfleet.v1 import dispatch_pb2
from tests.helpers import Recorder, until
from worker.lifecycle import Runs
from worker.noop_runtime import NoopRuntime
from worker.outbox import Outbox
from worker.process_runtime import ProcessRuntime
from worker.runtime import ArmedRun, RunSpec

STARTED, FINISHED = dispatch_pb2.EVENT_KIND_STARTED, dispatch_pb2.EVENT_KIND_FINISHED


def _runs(tmp_path: Path, sink: Recorder, runtime: ProcessRuntime | None = None) -> Runs:
    return Runs(
        runtime or NoopRuntime(),
        LocalLogStore(tmp_path / "logs", "http://logs"),
        Outbox(lambda _: sink),
        http=NoopRuntime(),
        spool_root=tmp_path / "spool",
        arm_concurrency=4,
        live_log_interval=0,
        give_back=lambda _: None,
    )


def _assign(runs: Runs, execution_id: int, fire_at: float, command: str = "true") -> None:
    runs.start(
        dispatch_pb2.Assignment(
            execution_id=execution_id,
            job_id="job",
            attempt=1,
            owner_id="owner",
            fire_at=proto.timestamp_at(fire_at),
            scheduled_at=proto.timestamp_at(fire_at),
            job=proto.spec_to_proto(JobSpec(name="j", command=command)),
        ),
        origin="scheduler",
    )


async def test_a_run_that_ends_at_once_is_reported_in_one_event(tmp_path: Path) -> None:
    sink = Recorder()
    runs = _runs(tmp_path, sink)
    fire_at = time.time() - 0.5  # overdue: released at once, and the no-op run ends there
    _assign(runs, 1, fire_at)
    await until(lambda: sink.finished(1) is not None)
    finished = sink.finished(1)
    assert finished is not None and sink.kinds(1) == [FINISHED]
    assert finished.HasField("started_at") and finished.status == "succeeded"
    started = proto.to_epoch(finished.started_at)
    assert fire_at < started <= proto.to_epoch(finished.at)
    assert abs(finished.lateness_ms - (started - fire_at) * 1000) < 1.0


async def test_a_run_that_put_a_file_where_its_folder_was_is_reported(tmp_path: Path) -> None:
    # Its output's path then fails "not a directory": no output, not a run
    # that never ends (its slot held for good).
    sink = Recorder()
    runtime = ProcessRuntime(1.0)
    runs = _runs(tmp_path, sink, runtime)
    try:
        _assign(runs, 1, time.time() - 0.5, command='d=$PWD; cd /; rm -rf "$d"; : >"$d"')
        await until(lambda: sink.finished(1) is not None)
        finished = sink.finished(1)
        assert finished is not None and finished.status == "succeeded"
        assert (finished.log_url, finished.log_bytes) == ("", 0)
        assert len(runs) == 0, "its slot given back"
    finally:
        await runtime.close()


class HeldStart(ProcessRuntime):
    """Starts runs past their instant only once the test lets it."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.starting, self.go_on = asyncio.Event(), asyncio.Event()

    async def start_now(self, spec: RunSpec) -> ArmedRun:
        self.starting.set()
        await self.go_on.wait()
        return await super().start_now(spec)


async def _late_run_started_while(
    tmp_path: Path, command: str, meanwhile: Callable[[Runs], None]
) -> dispatch_pb2.RunEvent:
    """Run 1, armed after its instant; ``meanwhile`` while it is being started."""
    sink = Recorder()
    runtime = HeldStart()
    runs = _runs(tmp_path, sink, runtime)
    try:
        _assign(runs, 1, time.time() - 0.5, command=command)
        await asyncio.wait_for(runtime.starting.wait(), 10)
        meanwhile(runs)
        runtime.go_on.set()
        await until(lambda: sink.finished(1) is not None, timeout=20)
        finished = sink.finished(1)
        assert finished is not None
        return finished
    finally:
        await runtime.close()


async def test_a_withdrawal_while_a_late_run_starts_lets_it_go_on(tmp_path: Path) -> None:
    # Armed after its instant, a run is started as it is armed: from then on
    # it is released, and a withdrawal (a pause) lets it go on, as it does a
    # run released before the withdrawal came.
    finished = await _late_run_started_while(tmp_path, "echo ran", lambda runs: runs.withdraw([1]))
    assert (finished.status, finished.log_bytes) == ("succeeded", 4)


async def test_a_cancel_while_a_late_run_starts_kills_it(tmp_path: Path) -> None:
    # The cancel came while nothing was armed to kill: the run is killed as
    # soon as it is, not left to run its course.
    finished = await _late_run_started_while(tmp_path, "sleep 60", lambda runs: runs.cancel([1]))
    assert finished.status == "cancelled"


async def test_a_later_run_of_the_owner_gets_the_kept_folder_of_an_earlier_one(tmp_path: Path) -> None:
    # Kept under its first run's name, and named for the next run as it
    # arrives (no rename either way).
    sink = Recorder()
    runtime = ProcessRuntime(1.0)
    runs = _runs(tmp_path, sink, runtime)
    try:
        _assign(runs, 1, time.time() - 0.5, command="true")
        await until(lambda: sink.finished(1) is not None and len(runs) == 0)
        _assign(runs, 2, time.time() - 0.5, command="pwd")
        await until(lambda: sink.finished(2) is not None)
        finished = sink.finished(2)
        assert finished is not None and finished.log_url.startswith("file://")
        said = await runs.logs.read(runs.logs.key_for("owner", "job", 2, 1))
        assert said.decode().strip() == str(tmp_path / "spool" / "1-1")
    finally:
        await runtime.close()
