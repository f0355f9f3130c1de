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
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import psycopg
import pytest

from coordinator.node import Coordinator
from cronfleet import etcd
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.logstore import LocalLogStore
from cronfleet.models import Job
from cronfleet.records import Execution, User
from cronfleet.rpc import InternalTls, internal_channel
from cronfleet.tls import TlsFiles
from cronfleet.v1 import dispatch_pb2, dispatch_pb2_grpc
from gateway.service import JobsService
from launch.devservices import LocalEtcd
from scheduler.node import Scheduler
from tests.helpers import Roles, as_role, assert_eventually, job_spec
from tests.registry import LocalRegistry, remove_local
from worker.docker_runtime import DockerRuntime
from worker.node import Worker
from worker.noop_runtime import NoopRuntime
from worker.process_runtime import ProcessRuntime
from worker.runtime import Runtime

pytestmark = pytest.mark.integration
SHARDS = 8


@pytest.fixture
def shards() -> int:
    return SHARDS


@pytest.fixture
def settings(etcd_server: LocalEtcd, etcd_prefix: str, database_url: str, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        Settings(),
        database_url=database_url,
        etcd_endpoints=etcd_server.endpoint,
        etcd_prefix=etcd_prefix,
        state_dir=str(tmp_path / "state"),
        log_dir=str(tmp_path / "logs"),
        shards=SHARDS,
        member_ttl=2,
        coordinator_id="c1",
        coordinator_addr="127.0.0.1:0",
        dispatch_addr="127.0.0.1:0",
        claim_interval=0.05,
        heartbeat_interval=0.2,
        kill_grace_seconds=1,
        self_fence_seconds=1.0,
        live_log_interval=0,
        capacity=4,
    )


@pytest.fixture
async def roles() -> AsyncIterator[Roles]:
    r = Roles()
    yield r
    await r.close()


class Cluster:
    """Start roles in-process against one database and etcd prefix."""

    def __init__(self, settings: Settings, db: Database, roles: Roles, pki: dict[str, TlsFiles]) -> None:
        self.settings = settings
        self.pki = pki
        self.db = db
        self.roles = roles
        self.client = etcd.connect(settings.etcd_endpoints)
        self.workers: dict[str, Worker] = {}

    def coordinator(self) -> None:
        settings = as_role(self.settings, self.pki, "coordinator")
        self.roles.start("coordinator", Coordinator(settings, self.db, self.client).run)

    def scheduler(self, scheduler_id: str) -> None:
        settings = as_role(self.settings, self.pki, "scheduler")
        settings = dataclasses.replace(settings, scheduler_id=scheduler_id)
        self.roles.start(scheduler_id, Scheduler(settings, self.db, self.client).run)

    def worker(self, worker_id: str, runtime: Runtime, **changes: object) -> Worker:
        settings = dataclasses.replace(
            as_role(self.settings, self.pki, "worker"),
            worker_id=worker_id,
            **changes,  # type: ignore[arg-type]
        )
        worker = Worker(settings, runtime, LocalLogStore(settings.logs_path, "http://gw"), self.client)
        self.workers[worker_id] = worker
        self.roles.start(worker_id, worker.run)
        return worker

    async def ready(self, schedulers: int = 1) -> None:
        """Every shard owned and every worker connected to every scheduler."""

        async def up() -> bool:
            owners = await self.db.fetch_all("shard_owners")
            connected = all(len(w.connections.live()) == schedulers for w in self.workers.values())
            return len(owners) == SHARDS and connected

        await assert_eventually(up, timeout=20, what="cluster ready")


@pytest.fixture
def cluster(settings: Settings, db: Database, roles: Roles, pki: dict[str, TlsFiles]) -> Cluster:
    return Cluster(settings, db, roles, pki)


async def executions(service: JobsService, user: User) -> list[Execution]:
    found, _ = await service.list_executions(user, limit=500)
    return found


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


async def test_a_worker_never_holds_more_runs_than_its_credit(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    cluster.coordinator()
    cluster.scheduler("s1")
    worker = cluster.worker("w1", ProcessRuntime(1.0), capacity=2)
    await cluster.ready()
    jobs = await service.create_jobs(user, [job_spec(name=f"nap-{i}", command="sleep 0.3") for i in range(6)])
    most = 0

    async def all_ran() -> bool:
        nonlocal most
        most = max(most, len(worker.runs))
        done = [e for e in await executions(service, user) if e.status == "succeeded"]
        return len(done) == len(jobs)

    await assert_eventually(all_ran, timeout=30, interval=0.02, what="six runs through two slots")
    assert most == 2, f"the worker held {most} runs at once with credit for 2"


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

    await assert_eventually(lambda: _eq(status(), "running"), timeout=20, what="run started")
    assert _running(nap)

    # The only scheduler goes: the worker is cut off with its run still going.
    await cluster.roles.stop("s1")
    await assert_eventually(lambda: _true(not worker.runs), timeout=10, what="the worker fenced its run")
    assert not _running(nap), "self-fencing kills the run's process"
    assert len(worker.outbox) >= 1, "the lost run's report waits in the outbox"
    assert await status() == "running", "nothing could be recorded yet"

    # A scheduler comes back: the outbox resends, and the run is recorded as lost.
    cluster.scheduler("s2")
    await assert_eventually(lambda: _eq(status(), "lost"), timeout=20, what="the report delivered")
    first = next(e for e in await executions(service, user) if e.job_id == job.id and e.attempt == 1)
    assert first.error == "stopped: lost" and first.worker_id == "w1", "reported by the worker, not declared"
    await assert_eventually(lambda: _true(len(worker.outbox) == 0), timeout=10, what="acknowledged")
    # Delivery at least once (the default): the lost run runs again.
    await assert_eventually(lambda: _eq(status(attempt=2), "running"), timeout=20, what="run again")


def _running(command: str) -> bool:
    return subprocess.run(["pgrep", "-f", command], capture_output=True).returncode == 0


async def _eq(value: Awaitable[object], expected: object) -> bool:
    return (await value) == expected


async def _true(flag: bool) -> bool:
    return flag


class Api:
    """A small HTTP server on loopback for HTTP jobs to call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        method, path, _ = head.split("\r\n")[0].split(" ")
        self.calls.append(f"{method} {path}")
        if path == "/slow":
            await asyncio.sleep(5)
        status, body = ("200 OK", b"hello from the api") if path == "/ok" else ("500 Oops", b"broken")
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        writer.write(body)
        await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_http_jobs_call_the_api_and_the_retry_policy_sees_failures(
    cluster: Cluster, service: JobsService, user: User, settings: Settings
) -> None:
    api = Api()
    base = await api.start()
    try:
        cluster.coordinator()
        cluster.scheduler("s1")
        cluster.worker("w1", NoopRuntime(), http_allow_internal=True)
        await cluster.ready()
        ok, bad, slow = await service.create_jobs(
            user,
            [
                job_spec(name="ok", command=None, http={"url": f"{base}/ok", "method": "POST"}),
                job_spec(
                    name="bad",
                    command=None,
                    http={"url": f"{base}/fail"},
                    max_retries=1,
                    retry={"backoff_seconds": 0},
                ),
                job_spec(name="slow", command=None, http={"url": f"{base}/slow", "timeout_seconds": 1}),
            ],
        )

        async def settled() -> list[Execution] | None:
            runs = [e for e in await executions(service, user) if e.finished_at]
            return runs if len(runs) == 4 else None

        runs = await assert_eventually(settled, timeout=20, what="four attempts ended")
        by_job = {(e.job_id, e.attempt): e for e in runs}
        assert by_job[ok.id, 1].status == "succeeded"
        log = await service.execution_logs(user, str(by_job[ok.id, 1].id))
        assert log.startswith(f"> POST {base}/ok\n< 200 OK in ".encode()) and log.endswith(
            b"hello from the api"
        )
        assert [(by_job[bad.id, n].status, by_job[bad.id, n].error) for n in (1, 2)] == [
            ("failed", "HTTP 500 (expected 2xx)")
        ] * 2
        assert by_job[slow.id, 1].status == "timed_out"
        assert sorted(api.calls) == ["GET /fail", "GET /fail", "GET /slow", "POST /ok"]
    finally:
        await api.close()


async def test_http_jobs_may_not_call_the_clusters_insides(
    cluster: Cluster, service: JobsService, user: User
) -> None:
    cluster.coordinator()
    cluster.scheduler("s1")
    cluster.worker("w1", NoopRuntime(), http_allow_internal=False)
    await cluster.ready()
    (job,) = await service.create_jobs(
        user, [job_spec(command=None, http={"url": "http://127.0.0.1:1/admin"})]
    )

    async def ended() -> Execution | None:
        return next((e for e in await executions(service, user) if e.finished_at), None)

    run = await assert_eventually(ended, timeout=20, what="run refused")
    assert run.status == "failed" and (run.error or "").startswith("blocked_destination: 127.0.0.1")


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
    await assert_eventually(lambda: _eq(status_of(a), "cancelled"), timeout=5, what="SIGTERM ends it")
    await assert_eventually(lambda: _eq(status_of(b), "cancelled"), timeout=5, what="SIGKILL after the grace")

    d, e = await service.create_jobs(
        user, [job_spec(name="d", command="sleep 60"), job_spec(name="e", command="sleep 60")]
    )
    for job in (d, e):
        await assert_eventually(functools.partial(running, job), timeout=20, what="running")
    await service.delete_job(user, str(d.id))
    await service.delete_job(user, str(e.id), cancel_running=True)
    await assert_eventually(lambda: _eq(status_of(e), "cancelled"), timeout=5, what="cancel_running stops it")
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
