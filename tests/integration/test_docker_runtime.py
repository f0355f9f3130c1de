"""The Docker runtime on a real engine: isolation, limits, kills, steps,
checkpoints, recovery and the watchdog (the warm pool: test_docker_pool.py;
per_job containers: test_docker_per_job.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cronfleet.models import Resources
from tests.helpers import assert_eventually
from tests.integration.docker_runs import either as either  # fixtures
from tests.integration.docker_runs import labelled, per_job, run, spec
from tests.integration.docker_runs import runtime as runtime
from worker.docker_claims import LABEL, Claim
from worker.docker_runtime import DockerRuntime
from worker.runtime import RunRejected

pytestmark = pytest.mark.integration


async def test_command_runs_as_non_root_with_no_capabilities(runtime: DockerRuntime, tmp_path: Path) -> None:
    outcome, out = await run(
        runtime,
        spec(tmp_path, "id -u; grep CapEff /proc/self/status; echo $GREETING", env={"GREETING": "hi"}),
    )
    assert outcome.status == "succeeded", out
    assert out.splitlines() == ["1000", "CapEff:\t0000000000000000", "hi"]


async def test_root_is_read_only_and_tmp_is_writable(runtime: DockerRuntime, tmp_path: Path) -> None:
    outcome, out = await run(
        runtime, spec(tmp_path, "touch /evil || echo ro-root; touch /tmp/ok && echo tmp-ok; pwd")
    )
    assert outcome.status == "succeeded"
    assert "ro-root" in out and "tmp-ok" in out and "/work" in out


async def test_no_network_but_loopback(runtime: DockerRuntime, tmp_path: Path) -> None:
    # Only the loopback interface exists: nothing outside is reachable.
    outcome, out = await run(runtime, spec(tmp_path, "ls /sys/class/net"))
    assert outcome.status == "succeeded" and out.split() == ["lo"]


async def test_fork_bomb_stops_at_the_pids_limit(runtime: DockerRuntime, tmp_path: Path) -> None:
    bomb = "i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); done; echo spawned"
    outcome, out = await run(runtime, spec(tmp_path, bomb, resources=Resources(pids=16), timeout_seconds=3))
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out
    assert outcome.status in ("timed_out", "failed")


async def test_memory_hog_is_oom_killed_and_reported(runtime: DockerRuntime, tmp_path: Path) -> None:
    hog = "head -c 200m /dev/zero | tail -c 150m > /dev/null"
    outcome, out = await run(runtime, spec(tmp_path, hog, resources=Resources(memory_mb=16)))
    assert (outcome.status, outcome.error, outcome.exit_code) == ("failed", "oom_killed", 137), (outcome, out)


async def test_timeout_stops_the_container(runtime: DockerRuntime, tmp_path: Path) -> None:
    outcome, _ = await run(runtime, spec(tmp_path, "sleep 60", timeout_seconds=1))
    assert outcome.status == "timed_out"


STUBBORN = "trap '' TERM; echo ready; while :; do sleep 1; done"  # only SIGKILL ends it


async def started(runtime: DockerRuntime, armed: Any) -> None:
    async def said_ready() -> bool:
        logs = await asyncio.to_thread(runtime.client.containers.get(armed.container_id).logs)
        return b"ready" in logs

    await assert_eventually(said_ready, timeout=30, what="the command started")


async def test_a_run_that_ignores_sigterm_is_killed_after_the_grace(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    armed = await runtime.arm(spec(tmp_path, STUBBORN))
    await armed.release()
    await started(runtime, armed)
    await armed.kill("cancelled")
    outcome = await asyncio.wait_for(armed.wait(), 30)  # the grace here is 1 s
    assert (outcome.status, outcome.exit_code) == ("cancelled", 137), outcome


async def test_a_kill_holds_no_engine_thread_for_the_grace(runtime: DockerRuntime, tmp_path: Path) -> None:
    """The SIGKILL comes from a timer: a kill returns once SIGTERM is sent
    (`docker stop` held one of the engine calls' eight threads for the whole
    grace, so a worker stopping fifty runs stopped them eight at a time)."""
    patient = DockerRuntime(dataclasses.replace(runtime.settings, kill_grace_seconds=600), runtime.worker_id)
    armed = [await patient.arm(spec(tmp_path, STUBBORN)) for _ in range(9)]
    for a in armed:
        await a.release()
    for a in armed:
        await started(patient, a)
    await asyncio.wait_for(asyncio.gather(*(a.kill("cancelled") for a in armed)), 60)
    for a in armed:
        container = patient.client.containers.get(a.container_id)
        assert container.status == "running", "SIGTERM is ignored; the SIGKILL waits for the grace"
        container.kill()  # the grace, cut short
    outcomes = await asyncio.wait_for(asyncio.gather(*(a.wait() for a in armed)), 60)
    assert {o.status for o in outcomes} == {"cancelled"}
    await patient.close()


async def test_missing_image_fails_fast(runtime: DockerRuntime, tmp_path: Path) -> None:
    # Pulled from Docker Hub by the default policy (unreachable here: the
    # engine's answer is named); never pulled with policy "never".
    with pytest.raises(RunRejected, match="image_pull_failed: cronfleet/no-such-image:1: "):
        await asyncio.wait_for(runtime.arm(spec(tmp_path, "true", image="cronfleet/no-such-image:1")), 30)
    never = DockerRuntime(dataclasses.replace(runtime.settings, image_pull_policy="never"), runtime.worker_id)
    with pytest.raises(RunRejected, match="image_not_found: cronfleet/no-such-image:1"):
        await asyncio.wait_for(never.arm(spec(tmp_path, "true", image="cronfleet/no-such-image:1")), 30)


async def test_steps_run_in_order_and_stop_at_the_first_failure(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    steps = (("hello", "echo hi"), ("fail", "exit 3"), ("never", "echo no"))
    outcome, out = await run(runtime, spec(tmp_path, steps=steps))
    assert (outcome.status, outcome.exit_code) == ("failed", 3)
    assert "==> step hello\nhi\n==> step hello exited 0 in" in out
    assert "==> step never" not in out and "no\n" not in out
    assert [(r.name, r.exit_code) for r in outcome.steps] == [("hello", 0), ("fail", 3)]


async def test_an_armed_container_waits_for_release_and_its_run_is_recorded(
    either: DockerRuntime, tmp_path: Path
) -> None:
    s = spec(tmp_path, "echo released")
    armed = await either.arm(s)
    (c,) = labelled(either)
    assert c.status == "running"  # started, and held at the gate
    # A container is made before its run is known: the worker records whose run it holds.
    assert either.claims.read(c.id) == Claim(s.execution_id, 1, "job", "")
    assert c.labels[f"{LABEL}.profile"] == "cronfleet/runner:busybox|1|256|128"
    host = c.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] and host["NetworkMode"] == "none"
    assert "no-new-privileges" in host["SecurityOpt"]
    # Its one bind mount, if any: its own folder of release FIFOs, read-only.
    fifo = armed.go  # type: ignore[attr-defined]
    assert host.get("Binds") == ([f"{Path(fifo.path).parent}:/gate:ro"] if either.fifos.enabled else None)
    assert (fifo is not None) == either.fifos.enabled
    assert not any(e.startswith("CRONFLEET_") for e in c.attrs["Config"]["Env"]), (
        "nothing of the run in its env"
    )
    await armed.release()
    assert (await armed.wait()).status == "succeeded"
    assert s.spool_path.read_text() == "released\n"
    assert labelled(either) == [] and either.claims.read(c.id) is None


async def test_restarted_worker_reports_or_kills_what_it_left(runtime: DockerRuntime, tmp_path: Path) -> None:
    done = await runtime.arm(spec(tmp_path, "echo finished-while-down", execution_id=901))
    await done.release()
    container = runtime.client.containers.get(done.container_id)
    await asyncio.to_thread(container.wait, timeout=30)
    await runtime.arm(spec(tmp_path, "sleep 60", execution_id=902))  # armed, never released
    again = DockerRuntime(runtime.settings, runtime.worker_id)
    found = {r.execution_id: r for r in await again.recover()}
    assert found[901].outcome.status == "succeeded"
    assert found[901].spool_path.read_text() == "finished-while-down\n"
    assert found[902].outcome.status == "lost"
    assert labelled(runtime) == []


CHECKPOINTING = 'echo "from=$(cat "$CRONFLEET_CHECKPOINT")"; echo "step 3" > "$CRONFLEET_CHECKPOINT"; exit 1'


async def test_the_checkpoint_is_seeded_and_kept(runtime: DockerRuntime, tmp_path: Path) -> None:
    outcome, out = await run(runtime, spec(tmp_path, CHECKPOINTING, checkpoint=b"step 2"))
    assert out == "from=step 2\n"
    assert (outcome.status, outcome.checkpoint, outcome.checkpoint_truncated) == (
        "failed",
        b"step 3\n",
        False,
    )


async def test_a_checkpoint_over_64_kib_is_cut_and_says_so(runtime: DockerRuntime, tmp_path: Path) -> None:
    big = 'head -c 70000 /dev/zero | tr "\\0" x > "$CRONFLEET_CHECKPOINT"'
    outcome, _ = await run(runtime, spec(tmp_path, big))
    assert outcome.checkpoint == b"x" * 65536 and outcome.checkpoint_truncated


async def test_a_live_checkpoint_can_be_read_and_survives_a_timeout(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    armed = await runtime.arm(
        spec(tmp_path, 'echo half > "$CRONFLEET_CHECKPOINT"; sleep 60', timeout_seconds=2)
    )
    await armed.release()

    async def live() -> bytes | None:
        return await armed.read_checkpoint()

    assert await assert_eventually(live, timeout=10) == b"half\n"
    outcome = await armed.wait()
    assert outcome.status == "timed_out" and outcome.checkpoint == b"half\n"


# ------------------------------------------------------------ the watchdog
def watched(runtime: DockerRuntime, limit: float) -> DockerRuntime:
    """A runtime of the same worker whose watchdog kills after ``limit`` s of silence."""
    return DockerRuntime(dataclasses.replace(runtime.settings, watchdog_seconds=limit), runtime.worker_id)


async def test_a_silent_worker_has_its_containers_killed_and_the_runs_end_lost(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    """A frozen worker (nobody beats the watchdog here) has its runs'
    containers killed through the engine, a per_run one and a run in a
    per_job container alike, and each run ends lost, not failed."""
    rt = watched(runtime, 1.0)
    try:
        per_run = await rt.arm(spec(tmp_path, "sleep 60"))
        resident = await rt.arm(per_job(tmp_path, "sleep 60"))
        for armed in (per_run, resident):
            await armed.release()
        outcomes = await asyncio.wait_for(asyncio.gather(per_run.wait(), resident.wait()), 30)
        for outcome in outcomes:
            assert outcome.status == "lost", outcome
            assert "watchdog" in (outcome.error or "") and "did not answer" in (outcome.error or "")
    finally:
        await rt.close()


async def test_a_beating_worker_keeps_its_runs(runtime: DockerRuntime, tmp_path: Path) -> None:
    rt = watched(runtime, 1.0)
    stop = asyncio.Event()
    beating = asyncio.create_task(rt._beat(stop))
    try:
        outcome, out = await run(rt, spec(tmp_path, "sleep 2.5; echo survived"))
        assert (outcome.status, out) == ("succeeded", "survived\n")
    finally:
        stop.set()
        await beating
        await rt.close()


async def test_a_dead_worker_has_its_containers_killed_and_reported_lost_on_restart(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    """The worker is a child process here, so that it can die by SIGKILL: its
    watchdog kills the container it held, and the restarted worker reports
    the run lost (from the watchdog's mark), not failed with exit 137."""
    script = (
        "import asyncio, dataclasses, sys; from pathlib import Path\n"
        "from cronfleet.config import Settings\n"
        "from worker.docker_runtime import DockerRuntime\n"
        "from worker.runtime import RunSpec\n"
        "async def main():\n"
        f"    s = dataclasses.replace(Settings(), state_dir={str(tmp_path)!r}, watchdog_seconds=30)\n"
        f"    rt = DockerRuntime(s, {runtime.worker_id!r})\n"
        f"    spool = Path({str(tmp_path)!r}) / 'child' / 'out.log'\n"
        "    armed = await rt.arm(RunSpec(execution_id=77, job_id='job', attempt=1, spool=spool,"
        " command='sleep 60', timeout_seconds=60))\n"
        "    await armed.release()\n"
        "    print(armed.container_id, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    worker = subprocess.Popen(  # noqa: ASYNC220 - a worker process to SIGKILL, started once
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    assert worker.stdout is not None
    container_id = (await asyncio.to_thread(worker.stdout.readline)).decode().strip()
    container = runtime.client.containers.get(container_id)
    assert container.status == "running"
    worker.send_signal(signal.SIGKILL)
    await asyncio.to_thread(worker.wait)

    async def killed() -> bool:
        container.reload()
        return bool(container.status == "exited")

    await assert_eventually(killed, timeout=10, what="the dead worker's container killed")
    again = DockerRuntime(runtime.settings, runtime.worker_id)  # the same state dir and id
    found = {r.execution_id: r for r in await again.recover()}
    assert found[77].outcome.status == "lost" and "the worker died" in (found[77].outcome.error or "")
