"""The Docker runtime on a real engine: isolation, limits, steps, recovery."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest

from cronfleet.config import Settings
from cronfleet.models import Resources, Step
from tests.helpers import assert_eventually
from worker.docker_claims import LABEL, Claim
from worker.docker_run import DockerRun
from worker.docker_runtime import DockerRuntime
from worker.runtime import RunOutcome, RunRejected, RunSpec

pytestmark = pytest.mark.integration
_ids = itertools.count(1)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[DockerRuntime]:
    # No watchdog here: these tests run no keep_warm to beat it (its own
    # tests below turn it on).
    settings = dataclasses.replace(
        Settings(), state_dir=str(tmp_path), kill_grace_seconds=1, watchdog_seconds=0
    )
    rt = DockerRuntime(settings, f"test-{uuid.uuid4().hex[:8]}")
    yield rt
    for c in labelled(rt):
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: the runtime's own removal is still under way
                raise


def labelled(rt: DockerRuntime, **labels: object) -> list[Any]:
    """This test runtime's containers (other clusters may share the engine)."""
    wanted = [f"{LABEL}.worker_id={rt.worker_id}"] + [f"{LABEL}.{k}={v}" for k, v in labels.items()]
    return list(rt.client.containers.list(all=True, filters={"label": wanted}, ignore_removed=True))


def spec(
    tmp_path: Path,
    command: str = "",
    steps: tuple[tuple[str, str], ...] = (),
    resources: Resources = Resources(),
    **kw: object,
) -> RunSpec:
    n = next(_ids)
    fields: dict[str, object] = {
        "execution_id": n,
        "job_id": "job",
        "attempt": 1,
        "command": command,
        "steps": tuple(Step(name=name, run=run) for name, run in steps),
        "resources": resources,
        "timeout_seconds": 30,
        "spool_path": tmp_path / f"run{n}" / "out.log",
    }
    return RunSpec(**(fields | kw))  # type: ignore[arg-type]


async def run(rt: DockerRuntime, s: RunSpec) -> tuple[RunOutcome, str]:
    armed = await rt.arm(s)
    await armed.release()
    outcome = await armed.wait()
    return outcome, s.spool_path.read_text()


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


# ------------------------------------------------------------ the warm pool
async def warm(runtime: DockerRuntime, count: int) -> asyncio.Event:
    """Start keeping the pool warm; return its stop event once ``count`` are idle."""
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.keep_warm(stop, _no_wait))
    runtime.pool_task = task  # type: ignore[attr-defined]  # kept alive by the test
    await idle(runtime, count)
    return stop


async def idle(runtime: DockerRuntime, count: int) -> None:
    async def ready() -> bool:
        return runtime.pool.idle() >= count

    await assert_eventually(ready, timeout=30, what=f"{count} warm containers")


async def _no_wait() -> None:
    return None


@pytest.fixture(params=["fifos", "engine"])
async def either(request: pytest.FixtureRequest, runtime: DockerRuntime) -> DockerRuntime:
    """The runtime releasing runs through FIFOs (the probe passed: this engine
    sees the worker's files), or through the engine's attach stream."""
    if request.param == "fifos":
        await runtime.probe_release_fifos()
        assert runtime.fifos.enabled, "the probe container read the worker's token"
    else:
        runtime.settings = dataclasses.replace(runtime.settings, docker_release_fifos=False)
    return runtime


@pytest.fixture
def pooled_runtime(either: DockerRuntime) -> DockerRuntime:
    either.pool.floor, either.pool.most = 2, 3
    return either


async def test_a_pooled_container_runs_one_run_and_keeps_nothing_of_it(
    pooled_runtime: DockerRuntime, tmp_path: Path
) -> None:
    stop = await warm(pooled_runtime, 2)
    try:
        first = spec(
            tmp_path, "echo secret > /tmp/left; echo x > /work/left; echo $TOKEN", env={"TOKEN": "t0p"}
        )
        second = spec(
            tmp_path,
            steps=(
                ("look", 'ls /tmp/left /work/left 2>/dev/null || echo clean; echo "token=${TOKEN:-none}"'),
            ),
        )
        a, b = await pooled_runtime.arm(first), await pooled_runtime.arm(second)
        assert not a.cold and not b.cold, "both came warm from the pool"
        for armed in (a, b):
            await armed.release()
        assert (await a.wait()).status == "succeeded" and first.spool_path.read_text() == "t0p\n"
        outcome = await b.wait()
        assert outcome.status == "succeeded" and [s.name for s in outcome.steps] == ["look"]
        assert "clean\ntoken=none\n" in second.spool_path.read_text()
    finally:
        stop.set()


async def test_the_pool_refills_and_never_exceeds_its_bound(
    pooled_runtime: DockerRuntime, tmp_path: Path
) -> None:
    stop = await warm(pooled_runtime, 2)
    try:
        taken = [await pooled_runtime.arm(spec(tmp_path, "true")) for _ in range(2)]
        assert not any(t.cold for t in taken)
        await idle(pooled_runtime, 2)  # refilled behind them
        default = pooled_runtime.pool.default
        pooled_runtime.pool.expect({default: 10})  # more asked for than it may hold
        await idle(pooled_runtime, 3)
        await asyncio.sleep(1.5)  # give it room to overshoot, if it would
        assert pooled_runtime.pool.idle() == 3
        assert len(labelled(pooled_runtime)) == 3 + 2  # idle, plus the two armed runs
        for t in taken:
            await t.kill("cancelled")
            await t.wait()
    finally:
        stop.set()


async def test_a_profile_the_pool_does_not_hold_starts_cold(
    pooled_runtime: DockerRuntime, tmp_path: Path
) -> None:
    stop = await warm(pooled_runtime, 2)
    try:
        armed = await pooled_runtime.arm(spec(tmp_path, "true", resources=Resources(memory_mb=64)))
        assert armed.cold and pooled_runtime.pool.idle() == 2
        await armed.release()
        assert (await armed.wait()).status == "succeeded"
    finally:
        stop.set()


async def test_a_restarted_worker_leaves_no_pooled_container_behind(
    pooled_runtime: DockerRuntime, tmp_path: Path
) -> None:
    stop = await warm(pooled_runtime, 2)
    stop.set()  # as if the worker were killed: its pool is left running
    assert len(labelled(pooled_runtime)) >= 2
    again = DockerRuntime(pooled_runtime.settings, pooled_runtime.worker_id)
    assert await again.recover() == []  # nothing held a run
    assert labelled(pooled_runtime) == []


async def test_a_container_sees_only_its_own_release_fifo_read_only(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    runtime.pool.floor, runtime.pool.most = 1, 1
    stop = await warm(runtime, 1)
    try:
        assert runtime.fifos.enabled
        look = spec(tmp_path, "ls -A /gate; touch /gate/x 2>/dev/null || echo refused; id -u")
        armed = await runtime.arm(look)
        assert isinstance(armed, DockerRun) and armed.go is not None
        folder = Path(armed.go.path).parent
        assert (
            folder.parent == runtime.fifos.root and oct(runtime.fifos.root.stat().st_mode & 0o777) == "0o700"
        )
        await armed.release()
        assert (await armed.wait()).status == "succeeded"
        assert look.spool_path.read_text() == "go\nrefused\n1000\n"
        assert not folder.exists(), "the folder goes with its container"
    finally:
        stop.set()


async def test_an_engine_that_cannot_see_the_workers_files_releases_through_the_engine(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    """A worker whose engine is elsewhere (or in another mount namespace): the
    probe finds no token, and runs are released on the attach stream."""
    runtime.fifos.reset = lambda: "a token the probe container cannot see"  # type: ignore[method-assign]
    runtime.pool.floor, runtime.pool.most = 1, 1
    stop = await warm(runtime, 1)
    try:
        assert not runtime.fifos.enabled
        look = spec(tmp_path, "ls -A /gate 2>/dev/null | wc -l")
        armed = await runtime.arm(look)
        assert isinstance(armed, DockerRun) and armed.go is None and not armed.cold
        await armed.release()
        assert (await armed.wait()).status == "succeeded"
        assert look.spool_path.read_text().strip() == "0", "no folder mounted"
    finally:
        stop.set()


# ------------------------------------------------- per_job: resident containers
def per_job(tmp_path: Path, command: str = "", **kw: Any) -> RunSpec:
    return spec(tmp_path, command, container="per_job", job_id="frequent", **kw)


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
        "    armed = await rt.arm(RunSpec(execution_id=77, job_id='job', attempt=1, spool_path=spool,"
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
