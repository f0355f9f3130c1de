"""`container: per_job` on a real engine: one long-lived container per job,
each run a fresh process group and folder with its own environment and
timeout, the container retired when a run leaves something running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cronfleet.codec import proto
from cronfleet.logstore import LocalLogStore
from cronfleet.models import JobSpec
from cronfleet.v1 import dispatch_pb2
from tests.helpers import Recorder, assert_eventually, until
from tests.integration.docker_runs import either as either  # fixtures
from tests.integration.docker_runs import labelled, per_job, warm
from tests.integration.docker_runs import runtime as runtime
from worker.docker_runtime import DockerRuntime
from worker.lifecycle import Runs
from worker.outbox import Outbox
from worker.pool import Profile

pytestmark = pytest.mark.integration


# ------------------------------------------------- per_job: resident containers


async def test_a_jobs_runs_share_its_container_but_not_their_env_or_folder(
    either: DockerRuntime, tmp_path: Path
) -> None:
    first = per_job(tmp_path, 'echo one > mine; echo "$ONLY_FIRST"; pwd; exit 3', env={"ONLY_FIRST": "x1"})
    second = per_job(tmp_path, steps=(("look", 'ls; echo "first=${ONLY_FIRST:-gone}"'),))
    a = await either.arm(first)
    assert a.cold, "the job had no container yet"
    await a.release()
    outcome = await a.wait()
    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    out = first.spool_path.read_text().splitlines()
    assert out[0] == "x1" and out[1].startswith("/work/run-")
    b = await either.arm(second)
    assert not b.cold, "the job has its container already"
    await b.release()
    assert b.container_id == a.container_id, "the same resident container"
    outcome = await b.wait()
    assert outcome.status == "succeeded" and [s.name for s in outcome.steps] == ["look"]
    log = second.spool_path.read_text()
    assert "==> step look\nfirst=gone\n" in log, "a fresh (empty) folder, none of the first's env"


async def test_a_resident_run_times_out_alone_and_the_container_serves_on(
    either: DockerRuntime, tmp_path: Path
) -> None:
    slow = await either.arm(
        per_job(tmp_path, 'echo half > "$CRONFLEET_CHECKPOINT"; sleep 60', timeout_seconds=1)
    )
    await slow.release()
    outcome = await slow.wait()
    assert outcome.status == "timed_out" and outcome.checkpoint == b"half\n"
    nxt = await either.arm(per_job(tmp_path, "echo next"))
    await nxt.release()
    assert nxt.container_id == slow.container_id
    assert (await nxt.wait()).status == "succeeded"


async def test_a_run_that_leaves_a_process_behind_retires_the_container(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    messy = await runtime.arm(per_job(tmp_path, "sleep 30 & echo left"))
    await messy.release()
    outcome = await messy.wait()
    assert outcome.status == "succeeded" and "replaced" in outcome.error

    async def gone() -> bool:
        return messy.container_id not in {c.id for c in labelled(runtime)}

    await assert_eventually(gone, timeout=20, what="the dirty container removed")
    clean = await runtime.arm(per_job(tmp_path, "true"))
    assert clean.cold
    await clean.release()
    assert clean.container_id != messy.container_id
    await clean.wait()


async def test_per_job_runs_are_prepared_ahead_and_may_overlap_in_the_jobs_container(
    either: DockerRuntime, tmp_path: Path
) -> None:
    """Arming prepares a run in the job's one container; a run still going
    does not hold up the next; a prepared run that is dropped never runs."""
    first = await either.arm(per_job(tmp_path, "sleep 1; echo first"))
    second = await either.arm(per_job(tmp_path, "echo second"))
    dropped = await either.arm(per_job(tmp_path, "echo never > /tmp/never"))
    assert not second.cold and second.container_id == first.container_id
    await first.release()
    await second.release()
    released = time.time()
    done = await second.wait()
    assert done.status == "succeeded", "the second ran while the first still slept"
    assert done.ended_at is not None and done.ended_at < time.time() - 0.2, (
        "its end is when it exited, not when the gate had reported (0.3 s later)"
    )
    assert done.ended_at >= released
    await dropped.kill("cancelled")
    assert (await dropped.wait()).status == "cancelled"
    assert (await first.wait()).status == "succeeded"
    look_spec = per_job(tmp_path, "ls /tmp/never 2>&1 || echo absent")
    look = await either.arm(look_spec)
    await look.release()
    await look.wait()
    assert "absent" in look_spec.spool_path.read_text(), "the dropped run never ran"
    assert len(labelled(either, job_id="frequent")) == 1, "one container for the job"


async def test_a_restarted_worker_calls_the_runs_in_a_per_job_container_lost(
    either: DockerRuntime, tmp_path: Path
) -> None:
    running = await either.arm(per_job(tmp_path, "sleep 60", execution_id=911))
    await running.release()
    await either.arm(per_job(tmp_path, "true", execution_id=912))  # prepared, never released
    again = DockerRuntime(either.settings, either.worker_id)
    found = {r.execution_id: r.outcome.status for r in await again.recover()}
    assert found == {911: "lost", 912: "lost"}
    assert labelled(either) == [], "the job's container is gone with them"


async def test_a_per_job_run_gets_its_environment_byte_for_byte(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    tricky = "it's a \\ back'slash\n$(echo no) `echo no` \"quoted\"  spaced  é ✓\ttab"
    job = per_job(tmp_path, 'printf %s "$TRICKY"', env={"TRICKY": tricky, "EMPTY": ""})
    armed = await runtime.arm(job)
    await armed.release()
    assert (await armed.wait()).status == "succeeded"
    assert job.spool_path.read_text() == tricky


async def test_a_per_job_container_being_made_holds_up_no_other_run(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    # Making a job's container is engine time (0.2-2 s a container); fifty
    # new per_job jobs once held every arming slot for ~8 s, and other
    # jobs' runs, their warm containers ready, waited. With one slot, a run
    # of another job arms and ends while the per_job container is held.
    stop = await warm(runtime, 1)
    let_go = asyncio.Event()
    make = runtime.make

    async def held(create: Callable[..., Any], profile: Profile, *args: Any) -> Any:
        if create == runtime.residents._create:
            await let_go.wait()
        return await make(create, profile, *args)

    runtime.make = held  # type: ignore[method-assign]
    sink = Recorder()
    runs = Runs(
        runtime,
        LocalLogStore(tmp_path / "logs", "http://logs"),
        Outbox(lambda _: sink),
        http=runtime,
        spool_root=tmp_path / "spool",
        arm_concurrency=1,
        live_log_interval=0,
        give_back=lambda _: None,
    )
    now = proto.timestamp_at(time.time())

    def assign(execution_id: int, job_id: str, **spec: Any) -> None:
        job = proto.spec_to_proto(JobSpec(name=job_id, command="true", **spec))
        runs.start(
            dispatch_pb2.Assignment(
                execution_id=execution_id, job_id=job_id, attempt=1, owner_id="o", fire_at=now, job=job
            ),
            origin="scheduler",
        )

    try:
        assign(1, "frequent", container="per_job")
        await until(lambda: runtime.residents._creating)  # its container asked for
        assign(2, "other")
        await until(lambda: sink.finished(2), timeout=30)
        assert sink.finished(1) is None, "the per_job run still waits for its container"
        let_go.set()
        await until(lambda: sink.finished(1), timeout=30)
        first, other = sink.finished(1), sink.finished(2)
        assert first is not None and other is not None
        assert (first.status, first.cold_start) == ("succeeded", True)
        assert (other.status, other.cold_start) == ("succeeded", False)
    finally:
        let_go.set()
        stop.set()
        await runs.wait_all(10)
