"""What a worker tells its scheduler of a run: a run that ends before its
start was said is reported in one event (FINISHED, with when it started),
a longer one in two."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cronfleet.codec import proto
from cronfleet.logstore import LocalLogStore
from cronfleet.models import JobSpec
from cronfleet.v1 import dispatch_pb2
from tests.helpers import Recorder, until
from worker.lifecycle import Runs
from worker.noop_runtime import NoopRuntime
from worker.outbox import Outbox
from worker.process_runtime import ProcessRuntime
from worker.run_folders import kept_folder_for, make_spares

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


async def test_a_run_of_a_runtime_without_files_takes_no_folder_and_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The no-op runtime writes nothing: a folder made ahead stays for a run
    # that needs one, and no live publisher is set up for its output.
    sink = Recorder()
    runs = _runs(tmp_path, sink)
    make_spares(tmp_path / "spool", 1)

    async def no_watch(*args: object) -> None:
        raise AssertionError("a run without files has no output to publish")

    monkeypatch.setattr(runs.live, "watch", no_watch)
    _assign(runs, 1, time.time() - 0.5)
    await until(lambda: sink.finished(1) is not None)
    finished = sink.finished(1)
    assert finished is not None and finished.status == "succeeded", finished
    assert kept_folder_for(tmp_path / "spool", "owner") is not None, "the spare is still there"


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
