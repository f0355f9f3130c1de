"""A worker's graceful stop (a deploy) with real roles in this process: it
stays a member until its runs have ended, so none lives twice, and hands back
the runs it has not started, which run elsewhere as the same attempt."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coordinator.cluster import read_cluster
from cronfleet import etcd
from cronfleet.records import Execution, User
from gateway.service import JobsService
from tests.helpers import assert_eventually, job_spec
from tests.integration.nodes import Cluster, executions
from tests.integration.nodes import cluster as cluster  # fixtures
from tests.integration.nodes import roles as roles
from tests.integration.nodes import settings as settings
from tests.integration.nodes import shards as shards
from worker.process_runtime import ProcessRuntime

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    """Running (a zombie, killed and not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


async def test_a_stopping_worker_stays_a_member_until_its_runs_end_and_they_run_again_elsewhere(
    cluster: Cluster, service: JobsService, user: User, tmp_path: Path
) -> None:
    """A graceful stop: the run ignores SIGTERM and dies by SIGKILL after the
    grace (6 s, longer than the coordinator's lost margin of 2 s and its sweep). The worker
    leaves the cluster only then, so the run's second attempt, elsewhere,
    starts after the first has died: never live twice."""
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", ProcessRuntime(6.0), kill_grace_seconds=6)
    await cluster.ready()
    pids = tmp_path / "pids"
    pids.mkdir()
    stubborn = f'echo $$ > {pids}/$CRONFLEET_ATTEMPT; trap "" TERM; sleep 60'
    (job,) = await service.create_jobs(user, [job_spec(name="stubborn", command=stubborn)])
    await assert_eventually(lambda: asyncio.to_thread(_started, pids, "1"), timeout=20, what="attempt 1 runs")
    cluster.worker("w2", ProcessRuntime(1.0))  # somewhere to run again
    await cluster.ready()
    stopping = asyncio.create_task(cluster.roles.stop("w1"))

    async def shown_stopping() -> dict[str, bool]:
        view = await read_cluster(cluster.client, etcd.Keys(cluster.settings.etcd_prefix), cluster.db)
        states = {w.id: w.stopping for w in view.workers}
        return states if states == {"w1": True, "w2": False} else {}

    await assert_eventually(shown_stopping, timeout=5, what="the cluster view says w1 is stopping")
    await assert_eventually(lambda: asyncio.to_thread(_started, pids), timeout=30, what="attempt 2+")
    first = int((pids / "1").read_text())
    assert not _alive(first), "a later attempt started while attempt 1 was still alive"
    await stopping
    attempts = {e.attempt: e for e in await executions(service, user) if e.job_id == job.id}
    assert attempts[1].status == "lost" and attempts[1].worker_id == "w1", attempts[1]
    assert attempts[max(attempts)].worker_id == "w2", attempts


async def test_a_stopping_worker_returns_the_runs_it_has_not_started(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    """A graceful stop (a deploy) seconds before a run's time: the run,
    assigned to the stopping worker and waiting for its instant there, goes
    whole to another worker and runs there, the same attempt. Reported lost
    instead, an at_most_once run was dead-lettered without ever running."""
    cluster.settings = dataclasses.replace(cluster.settings, lookahead_process=30.0)
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", ProcessRuntime(1.0))
    await cluster.ready()
    at = datetime.now(UTC) + timedelta(seconds=8)  # claimed and assigned at once (lookahead 30 s)
    (job,) = await service.create_jobs(
        user, [job_spec(name="once", run_at=at.isoformat(), delivery="at_most_once")]
    )

    async def runs() -> list[Execution]:
        return [e for e in await executions(service, user) if e.job_id == job.id]

    async def waiting_on(worker_id: str) -> bool:
        return [(e.status, e.worker_id) for e in await runs()] == [("scheduled", worker_id)]

    await assert_eventually(functools.partial(waiting_on, "w1"), timeout=5, what="assigned to w1")
    cluster.worker("w2", ProcessRuntime(1.0))
    await cluster.ready()
    await cluster.roles.stop("w1")
    (run,) = await runs()
    assert run.worker_id != "w1", f"still w1's after it stopped: {run}"

    async def done() -> bool:
        return all(e.finished_at is not None for e in await runs())

    await assert_eventually(done, timeout=20, what="the run ends")
    (run,) = await runs()
    assert (run.status, run.attempt, run.worker_id) == ("succeeded", 1, "w2"), run
    assert run.started_at is not None and run.started_at >= at, "never early"
    dead, _ = await service.list_dead_letters(user, job_id=str(job.id), limit=10)
    assert dead == []


def _started(pids: Path, attempt: str = "") -> bool:
    """Attempt ``attempt`` wrote its pid; without one, an attempt after the first."""
    return any(
        p.read_text().strip() and (p.name == attempt if attempt else p.name != "1") for p in pids.iterdir()
    )


async def test_a_process_worker_makes_its_runs_folders_ahead_and_removes_them_at_its_stop(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    """Folders made while the worker joins (worker.run_folders): a run takes
    one rather than making its own, and is kept back into them when it ends;
    the stop removes them all."""
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", ProcessRuntime(1.0), capacity=3)
    await cluster.ready()
    spool = Path(cluster.settings.state_dir) / "spool" / "w1"

    async def spares() -> set[int]:
        return {p.stat().st_ino for p in spool.iterdir() if p.name.startswith(".spare-")}

    await assert_eventually(lambda: _has(spares(), 3), timeout=10, what="three folders made ahead")
    ahead = await spares()
    (job,) = await service.create_jobs(user, [job_spec(name="quick", command="true")])

    async def done() -> bool:
        return [e.status for e in await executions(service, user) if e.job_id == job.id] == ["succeeded"]

    await assert_eventually(done, timeout=20, what="the run ends")
    await assert_eventually(lambda: _same(spares(), ahead), timeout=5, what="its folder kept back")
    await cluster.roles.stop("w1")
    assert await spares() == set(), "the stop removes the folders kept"


async def _has(found: Awaitable[set[int]], n: int) -> bool:
    return len(await found) == n


async def _same(found: Awaitable[set[int]], expected: set[int]) -> bool:
    return await found == expected
