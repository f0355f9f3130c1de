"""The Docker runtime's warm pool on a real engine: a pooled container runs
one run and keeps nothing of it, refills within its bound, leaves nothing
behind a restart, and a profile it does not hold starts cold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cronfleet.models import Resources
from tests.integration.docker_runs import either as either  # fixtures
from tests.integration.docker_runs import idle, labelled, spec, warm
from tests.integration.docker_runs import runtime as runtime
from worker.docker_run import DockerRun
from worker.docker_runtime import DockerRuntime

pytestmark = pytest.mark.integration


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
