"""HTTP jobs through a real scheduler and worker (in this process): the call,
its log, the retry policy on failures, the timeout, and the destinations a
job may not call."""

from __future__ import annotations

import asyncio

import pytest

from cronfleet.config import Settings
from cronfleet.records import Execution, User
from gateway.service import JobsService
from tests.helpers import assert_eventually, job_spec
from tests.integration.nodes import Cluster, executions
from tests.integration.nodes import cluster as cluster  # fixtures
from tests.integration.nodes import roles as roles
from tests.integration.nodes import settings as settings
from tests.integration.nodes import shards as shards
from worker.noop_runtime import NoopRuntime

pytestmark = pytest.mark.integration


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
