"""A coordinator, a scheduler and a worker in this process (no subprocess):
the no-op and process runtimes over 127.0.0.1:0, on real Postgres and etcd.
Fast enough to sit beside the rooms they exercise: dispatch and credits,
the outbox's resend after a reconnect, and self-fencing."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import docker
import psycopg
import pytest

from cronfleet import etcd
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.models import Job
from cronfleet.records import Execution, User
from cronfleet.rpc import InternalTls, internal_channel
from cronfleet.shards import shard_for
from cronfleet.v1 import dispatch_pb2, dispatch_pb2_grpc
from gateway.service import JobsService
from scheduler.node import Scheduler
from tests.helpers import Roles, as_role, assert_eventually, job_spec
from tests.integration.nodes import SHARDS, Cluster, equal, executions, true
from tests.integration.nodes import cluster as cluster  # fixtures
from tests.integration.nodes import roles as roles
from tests.integration.nodes import settings as settings
from tests.integration.nodes import shards as shards
from tests.registry import LocalRegistry, remove_local
from worker.docker_runtime import DockerRuntime
from worker.node import Worker
from worker.noop_runtime import NoopRuntime
from worker.process_runtime import ProcessRuntime

pytestmark = pytest.mark.integration


async def test_jobs_fire_through_scheduler_and_worker(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", NoopRuntime(), capacity=8)
    await cluster.ready()
    jobs = await service.create_jobs(user, [job_spec(name=f"once-{i}") for i in range(20)])
    (tick,) = await service.create_jobs(user, [job_spec(name="tick", schedule="* * * * * *")])

    async def all_ran() -> bool:
        done = {e.job_id for e in await executions(service, user) if e.status == "succeeded"}
        return {j.id for j in jobs} | {tick.id} <= done

    await assert_eventually(all_ran, timeout=20, what="every job ran on the worker")
    for e in await executions(service, user):
        if e.started_at is not None:
            assert e.worker_id == "w1" and e.started_at >= e.run_at


async def most_held_running_naps(
    cluster: Cluster, worker: Worker, service: JobsService, user: User, naps: int
) -> int:
    """The most runs ``worker`` held at once while at least ``naps`` short
    sleeps ran through it, on the shards of every scheduler (more are added
    until each scheduler has some: job ids, and so shards, are random)."""
    owners = {r["shard_id"]: r["scheduler_id"] for r in await cluster.db.fetch_all("shard_owners")}
    jobs: list[Job] = []
    while len(jobs) < naps or {owners[shard_for(j.id, SHARDS)] for j in jobs} != set(owners.values()):
        jobs += await service.create_jobs(user, [job_spec(name=f"nap-{len(jobs)}", command="sleep 0.3")])
    most = 0

    async def all_ran() -> bool:
        nonlocal most
        most = max(most, len(worker.runs))
        done = [e for e in await executions(service, user) if e.status == "succeeded"]
        return len(done) == len(jobs)

    await assert_eventually(all_ran, timeout=30, interval=0.02, what=f"{len(jobs)} runs through the worker")
    return most


async def test_a_worker_never_holds_more_runs_than_its_credit(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    cluster.coordinator()
    cluster.scheduler("s1")
    worker = cluster.worker("w1", ProcessRuntime(1.0), capacity=2)
    await cluster.ready()
    most = await most_held_running_naps(cluster, worker, service, user, 6)
    assert most == 2, f"the worker held {most} runs at once with credit for 2"


async def two_schedulers_and_a_worker(cluster: Cluster, capacity: int) -> Worker:
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.scheduler("s2")
    worker = cluster.worker("w1", ProcessRuntime(1.0), capacity=capacity)
    await cluster.ready(schedulers=2)
    return worker


async def test_a_workers_capacity_is_shared_by_all_its_schedulers(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    """Two schedulers, each with shards of the jobs: the worker's capacity is
    its own, not each scheduler's (each used to be granted all of it)."""
    worker = await two_schedulers_and_a_worker(cluster, capacity=2)
    most = await most_held_running_naps(cluster, worker, service, user, 10)
    assert most == 2, f"the worker held {most} runs at once with a capacity of 2 and two schedulers"


async def test_a_worker_with_one_slot_serves_both_its_schedulers(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    """Fewer slots than schedulers: the one slot, left unspent by one
    scheduler for a tick, is lent to the other (worker.slots), so the jobs
    of both run, one at a time."""
    worker = await two_schedulers_and_a_worker(cluster, capacity=1)
    most = await most_held_running_naps(cluster, worker, service, user, 4)
    assert most == 1, f"the worker held {most} runs at once with a capacity of 1"


async def test_a_cut_off_worker_fences_itself_and_reports_once_back(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    nap = f"sleep 61.{uuid.uuid4().int % 10_000:04d}"  # a command line to look for
    cluster.coordinator()
    cluster.scheduler("s1")
    worker = cluster.worker("w1", ProcessRuntime(1.0))
    await cluster.ready()
    (job,) = await service.create_jobs(user, [job_spec(command=nap)])

    async def status(attempt: int = 1) -> str:
        runs = await executions(service, user)
        return next((e.status for e in runs if e.job_id == job.id and e.attempt == attempt), "")

    await assert_eventually(lambda: equal(status(), "running"), timeout=20, what="run started")
    assert _running(nap)

    # The only scheduler goes: the worker is cut off with its run still going.
    await cluster.roles.stop("s1")
    await assert_eventually(lambda: true(not worker.runs), timeout=10, what="the worker fenced its run")
    assert not _running(nap), "self-fencing kills the run's process"
    assert len(worker.outbox) >= 1, "the lost run's report waits in the outbox"
    assert await status() == "running", "nothing could be recorded yet"

    # A scheduler comes back: the outbox resends, and the run is recorded as lost.
    cluster.scheduler("s2")
    await assert_eventually(lambda: equal(status(), "lost"), timeout=20, what="the report delivered")
    first = next(e for e in await executions(service, user) if e.job_id == job.id and e.attempt == 1)
    assert first.error == "stopped: lost" and first.worker_id == "w1", "reported by the worker, not declared"
    await assert_eventually(lambda: true(len(worker.outbox) == 0), timeout=10, what="acknowledged")
    # Delivery at least once (the default): the lost run runs again.
    await assert_eventually(lambda: equal(status(attempt=2), "running"), timeout=20, what="run again")


def _running(command: str) -> bool:
    return subprocess.run(["pgrep", "-f", command], capture_output=True).returncode == 0


async def test_cancel_stops_a_running_run_and_delete_leaves_it_unless_asked(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", ProcessRuntime(1.0))
    await cluster.ready()
    stubborn = "trap '' TERM; sleep 60"  # ignores SIGTERM: only the SIGKILL after the grace ends it
    a, b = await service.create_jobs(
        user, [job_spec(name="a", command="sleep 60"), job_spec(name="b", command=stubborn)]
    )

    async def status_of(job: Job) -> str:
        return next((e.status for e in await executions(service, user) if e.job_id == job.id), "")

    async def running(job: Job) -> bool:
        return await status_of(job) == "running"

    for job in (a, b):
        await assert_eventually(functools.partial(running, job), timeout=20, what="running")
    await service.cancel_execution(
        user, str(next(e.id for e in await executions(service, user) if e.job_id == a.id))
    )
    await service.cancel_execution(
        user, str(next(e.id for e in await executions(service, user) if e.job_id == b.id))
    )
    await assert_eventually(lambda: equal(status_of(a), "cancelled"), timeout=5, what="SIGTERM ends it")
    await assert_eventually(
        lambda: equal(status_of(b), "cancelled"), timeout=5, what="SIGKILL after the grace"
    )

    d, e = await service.create_jobs(
        user, [job_spec(name="d", command="sleep 60"), job_spec(name="e", command="sleep 60")]
    )
    for job in (d, e):
        await assert_eventually(functools.partial(running, job), timeout=20, what="running")
    await service.delete_job(user, str(d.id))
    await service.delete_job(user, str(e.id), cancel_running=True)
    await assert_eventually(
        lambda: equal(status_of(e), "cancelled"), timeout=5, what="cancel_running stops it"
    )
    assert await status_of(d) == "running", "a deleted job's running run finishes unless asked"


async def test_a_checkpoint_carries_over_to_the_next_attempt(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", ProcessRuntime(1.0))
    await cluster.ready()
    count = (
        'n=$(cat "$CRONFLEET_CHECKPOINT"); n=$(( ${n:-0} + 1 )); '
        'echo "$n" > "$CRONFLEET_CHECKPOINT"; echo "try $n"; exit 1'
    )
    (job,) = await service.create_jobs(
        user, [job_spec(command=count, max_retries=2, retry={"backoff_seconds": 0})]
    )

    async def three_ended() -> list[Execution] | None:
        runs = sorted((e for e in await executions(service, user) if e.finished_at), key=lambda e: e.attempt)
        return runs if len(runs) == 3 else None

    runs = await assert_eventually(three_ended, timeout=20, what="three attempts")
    assert [e.checkpoint for e in runs] == [b"1\n", b"2\n", b"3\n"]
    logs = [await service.execution_logs(user, str(e.id)) for e in runs]
    assert logs == [b"try 1\n", b"try 2\n", b"try 3\n"]
    assert runs[0].id != runs[2].id and job.id == runs[2].job_id


async def test_the_pool_grows_for_what_is_coming_before_it_is_claimed(
    cluster: Cluster, service: JobsService, user: User, settings: Settings
) -> None:
    runtime = DockerRuntime(dataclasses.replace(settings, worker_id="w1", pool_floor=1), "w1")
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", runtime)
    await cluster.ready()
    try:
        at = (datetime.now(UTC) + timedelta(seconds=9)).isoformat()
        await service.create_jobs(user, [job_spec(name=f"soon-{i}", run_at=at) for i in range(5)])

        async def warm_enough() -> bool:
            return runtime.pool.idle(runtime.pool.default) >= 5

        await assert_eventually(warm_enough, timeout=20, what="five warm containers for five runs due soon")
        assert await executions(service, user) == [], "forecast, not claimed: they are 9 s away"

        async def ran_warm() -> list[Execution] | None:
            runs = [e for e in await executions(service, user) if e.finished_at]
            return runs if len(runs) == 5 else None

        runs = await assert_eventually(ran_warm, timeout=30, what="five runs")
        assert [e.status for e in runs] == ["succeeded"] * 5 and not any(e.cold_start for e in runs)
    finally:
        await cluster.roles.stop("w1")


async def test_a_job_naming_an_image_the_worker_lacks_runs_once_pulled(
    cluster: Cluster, service: JobsService, user: User, settings: Settings, registry: LocalRegistry
) -> None:
    """Through scheduler and worker: the image is pulled (the run is late for
    it, and says cold_start); a pull that fails ends the run failed, naming
    the image and the registry's answer."""
    engine = docker.from_env()
    image = registry.push_runner(engine)
    absent = f"{registry.address}/cronfleet-test/absent:{uuid.uuid4().hex[:8]}"
    runtime = DockerRuntime(dataclasses.replace(settings, worker_id="w1", pool_floor=0), "w1")
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", runtime)
    await cluster.ready()
    try:
        specs = [
            job_spec(name="pulled", image=image, command="echo hi"),
            job_spec(name="absent", image=absent),
        ]
        pulled, missing = await service.create_jobs(user, specs)

        async def both_ended() -> dict[uuid.UUID, Execution] | None:
            ended = {e.job_id: e for e in await executions(service, user) if e.finished_at}
            return ended if len(ended) == 2 else None

        ended = await assert_eventually(both_ended, timeout=60, what="both runs ended")
        ran, failed = ended[pulled.id], ended[missing.id]
        assert (ran.status, ran.cold_start) == ("succeeded", True), ran
        assert failed.status == "failed" and failed.error is not None
        assert failed.error.startswith(f"image_pull_failed: {absent}: "), failed.error
        assert "manifest unknown" in failed.error
    finally:
        await cluster.roles.stop("w1")
        remove_local(engine, image)
        engine.close()


async def test_a_worker_back_without_its_runs_has_them_run_again(
    cluster: Cluster, settings: Settings, db: Database, roles: Roles, service: JobsService, user: User
) -> None:
    """A worker restarted under the same id keeps its member key alive, so
    the leader never sees it gone: its hello says which runs it holds, and
    the scheduler declares the others lost (and they run again)."""
    cluster.coordinator()
    scheduler_settings = dataclasses.replace(as_role(settings, cluster.pki, "scheduler"), scheduler_id="s1")
    scheduler = Scheduler(scheduler_settings, db, cluster.client)
    roles.start("s1", scheduler.run)
    worker_tls = InternalTls.from_settings(as_role(settings, cluster.pki, "worker"))

    async def owned() -> bool:
        return len(await db.fetch_all("shard_owners")) == SHARDS and bool(scheduler.address)

    await assert_eventually(owned, timeout=20, what="shards owned")
    hello = dispatch_pb2.Hello(worker_id="w9", capacity=4, runtimes=["process"])
    async with internal_channel(scheduler.address, worker_tls) as channel:
        call = dispatch_pb2_grpc.DispatchServiceStub(channel).Connect()
        await call.write(dispatch_pb2.WorkerMessage(hello=hello))
        (job,) = await service.create_jobs(user, [job_spec(name="held")])
        while (message := await asyncio.wait_for(call.read(), 10)).WhichOneof("kind") != "assignments":
            pass
        (given,) = message.assignments.assignments
        call.cancel()  # the process dies with the run
    async with internal_channel(scheduler.address, worker_tls) as channel:
        call = dispatch_pb2_grpc.DispatchServiceStub(channel).Connect()
        await call.write(dispatch_pb2.WorkerMessage(hello=hello))  # holding nothing

        async def run_again() -> list[Execution]:
            found, _ = await service.list_executions(user, job_id=str(job.id))
            return found if len(found) == 2 else []

        again, first = await assert_eventually(run_again, timeout=10, what="a second attempt")
        assert first.id == given.execution_id and first.status == "lost"
        assert "came back without it" in (first.error or "")
        assert (again.attempt, again.trigger) == (2, "retry")
        call.cancel()


async def test_a_gone_schedulers_runs_are_judged_by_another(
    cluster: Cluster, settings: Settings, db: Database, roles: Roles, service: JobsService, user: User
) -> None:
    """A run given by a scheduler that is no longer a member, to a worker
    that came back under the same id without it, is declared lost by the
    scheduler the worker says hello to (nobody else would); one given by a
    live scheduler is left to that one."""
    cluster.coordinator()
    scheduler_settings = dataclasses.replace(as_role(settings, cluster.pki, "scheduler"), scheduler_id="s1")
    scheduler = Scheduler(scheduler_settings, db, cluster.client)
    roles.start("s1", scheduler.run)
    worker_tls = InternalTls.from_settings(as_role(settings, cluster.pki, "worker"))

    async def owned() -> bool:
        return len(await db.fetch_all("shard_owners")) == SHARDS and bool(scheduler.address)

    await assert_eventually(owned, timeout=20, what="shards owned")
    hello = dispatch_pb2.Hello(worker_id="w9", capacity=4, runtimes=["process"])
    given: list[dispatch_pb2.Assignment] = []
    async with internal_channel(scheduler.address, worker_tls) as channel:
        call = dispatch_pb2_grpc.DispatchServiceStub(channel).Connect()
        await call.write(dispatch_pb2.WorkerMessage(hello=hello))
        jobs = await service.create_jobs(user, [job_spec(name="gone"), job_spec(name="live")])
        while len(given) < 2:
            message = await asyncio.wait_for(call.read(), 10)
            if message.WhichOneof("kind") == "assignments":
                given += list(message.assignments.assignments)
        call.cancel()  # the process dies with both runs
    by_job = {a.job_id: a.execution_id for a in given}
    gone, live = by_job[str(jobs[0].id)], by_job[str(jobs[1].id)]
    # As if other schedulers had given them: s-gone is no member, s-live is one.
    await cluster.client.put(etcd.Keys(settings.etcd_prefix).member("schedulers", "s-live"), b"{}")
    async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
        for execution_id, by in ((gone, "s-gone"), (live, "s-live")):
            await conn.execute("UPDATE executions SET scheduler_id = %s WHERE id = %s", (by, execution_id))
    async with internal_channel(scheduler.address, worker_tls) as channel:
        call = dispatch_pb2_grpc.DispatchServiceStub(channel).Connect()
        await call.write(dispatch_pb2.WorkerMessage(hello=hello))  # holding nothing

        async def judged() -> dict[int, Execution]:
            found, _ = await service.list_executions(user)
            runs = {e.id: e for e in found}
            return runs if runs.get(gone) and runs[gone].status == "lost" else {}

        runs = await assert_eventually(judged, timeout=10, what="the gone scheduler's run declared lost")
        assert "came back without it" in (runs[gone].error or "")
        assert runs[live].status in ("scheduled", "running"), "a live scheduler's run is its own to judge"
        call.cancel()


async def test_an_idle_scheduler_claims_a_fire_its_lookahead_before_its_time(
    cluster: Cluster, service: JobsService, user: User, settings: Settings
) -> None:
    """Idle (nothing due), a scheduler claims when its soonest fire comes
    within its lookahead, not every claim interval: a fire that only the
    clock brings due (no NOTIFY says so) is still claimed its lookahead less
    one claim interval before its time, as when busy, and never earlier."""
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", NoopRuntime(), capacity=8)
    await cluster.ready()
    lookahead, interval = settings.lookahead_process, settings.claim_interval
    assert settings.claim_idle_interval >= 0.5 > interval, "the defaults this test is about"
    # Beyond the reach of the claim their NOTIFY wakes, and each further
    # apart than the scheduler takes to go idle again after claiming one, at
    # steps that fall at a new point of its idle interval each time.
    first = datetime.now(UTC) + timedelta(seconds=lookahead + 2)
    ats = [first + timedelta(seconds=1.37 * i) for i in range(5)]
    specs = [job_spec(name=f"later-{i}", run_at=at.isoformat()) for i, at in enumerate(ats)]
    await service.create_jobs(user, specs)

    async def claimed() -> list[tuple[datetime, datetime]] | None:
        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            cur = await conn.execute("SELECT scheduled_at, assigned_at FROM executions")
            rows = await cur.fetchall()
        return rows if len(rows) == len(ats) and all(a for _, a in rows) else None

    rows = await assert_eventually(claimed, timeout=30, interval=0.5, what="every fire claimed and assigned")
    leads = sorted((fire - assigned).total_seconds() for fire, assigned in rows)
    # A loaded machine runs a claim a little late; one that waited the
    # whole idle interval would be up to that much later.
    assert leads[0] >= lookahead - interval - 0.3, leads
    assert leads[-1] <= lookahead + 0.1, f"claimed before its lookahead: {leads}"
