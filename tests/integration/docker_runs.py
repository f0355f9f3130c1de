"""The Docker runtime's test fixtures, on a real engine: a runtime of a
worker of its own (its containers removed after), a run's spec, a run armed,
released and waited for, and the warm pool kept warm."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest

from cronfleet.config import Settings
from cronfleet.models import Resources, Step
from tests.helpers import assert_eventually
from worker.docker_claims import LABEL
from worker.docker_runtime import DockerRuntime
from worker.runtime import RunOutcome, RunSpec

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
    await rt.close()  # as a stopping worker does: its pool and resident containers go
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
        "spool": tmp_path / f"run{n}" / "out.log",
    }
    return RunSpec(**(fields | kw))  # type: ignore[arg-type]


async def run(rt: DockerRuntime, s: RunSpec) -> tuple[RunOutcome, str]:
    armed = await rt.arm(s)
    await armed.release()
    outcome = await armed.wait()
    return outcome, s.spool_path.read_text()


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


def per_job(tmp_path: Path, command: str = "", **kw: Any) -> RunSpec:
    return spec(tmp_path, command, container="per_job", job_id="frequent", **kw)
