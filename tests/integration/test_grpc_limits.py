"""The public gRPC API refuses as the HTTP one does: throttled logins and
spent rate quotas are RESOURCE_EXHAUSTED with a ``retry-after`` trailer
(the SDK's ``ClientError.retry_after``), a stored quota too, an invalid spec
INVALID_ARGUMENT (it was INTERNAL), a message over 1 MiB refused unread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from cronfleet import rpc
from cronfleet.client import AsyncClient, ClientError
from cronfleet.db import Database
from cronfleet.logstore import LocalLogStore
from cronfleet.v1 import jobs_pb2, jobs_pb2_grpc
from gateway.grpc_api import JobServicer
from gateway.http.common import MAX_BODY
from gateway.service import JobsService
from gateway.service.limits import AuthLimits, Quotas

pytestmark = pytest.mark.integration


@pytest.fixture
async def address(db: Database, tmp_path: Path) -> AsyncIterator[str]:
    service = JobsService(
        db,
        LocalLogStore(tmp_path / "logs", "http://gw"),
        shards=8,
        token_ttl=timedelta(hours=1),
        auth_limits=AuthLimits(account_failures=2),
        quotas=Quotas(jobs=2, runs_per_minute=1),
    )

    async def cluster() -> jobs_pb2.Cluster:
        return jobs_pb2.Cluster()

    servicer = JobServicer(service, cluster)
    server = await rpc.serve(
        "127.0.0.1:0",
        [("cronfleet.v1.JobService", lambda s: jobs_pb2_grpc.add_JobServiceServicer_to_server(servicer, s))],
        tls=None,  # the public API: plaintext, as the gateway serves it
        options=[("grpc.max_receive_message_length", MAX_BODY)],
    )
    yield server.address
    await server.stop(grace=0)


async def test_throttled_and_over_quota_over_grpc(address: str) -> None:
    async with AsyncClient(address) as c:
        await c.signup("Ann", "ann@example.com", "password123")
        for _ in range(2):
            with pytest.raises(ClientError) as err:
                await c.login("ann@example.com", "wrong-password")
            assert err.value.code == "unauthenticated"
        with pytest.raises(ClientError) as err:
            await c.login("ann@example.com", "password123")
        assert (err.value.code, err.value.field) == ("throttled", "login_failures_per_account")
        assert err.value.retry_after is not None and err.value.retry_after > 0

    async with AsyncClient(address) as c:
        await c.signup("Bob", "bob@example.com", "password123")
        await c.login("bob@example.com", "password123")
        with pytest.raises(ClientError) as err:
            await c.create_job(name="j", command="true", schedule="99 * * * * *")
        assert err.value.code == "invalid_spec" and err.value.field == "schedule"
        job = await c.create_job(name="j", command="true", run_at="2100-01-01T00:00:00Z")
        await c.run_job(job["id"])
        with pytest.raises(ClientError) as err:
            await c.run_job(job["id"])
        assert (err.value.code, err.value.field) == ("quota_exceeded", "runs_per_minute")
        assert err.value.retry_after is not None
        await c.create_job(name="k", command="true", run_at="2100-01-01T00:00:00Z")
        with pytest.raises(ClientError) as err:
            await c.create_job(name="l", command="true", run_at="2100-01-01T00:00:00Z")
        assert (err.value.code, err.value.field, err.value.retry_after) == (
            "quota_exceeded",
            "jobs_per_user",
            None,
        )
        with pytest.raises(ClientError) as err:
            await c.create_job(name="big", command="x" * (MAX_BODY + 1))
        assert err.value.code == "resource_exhausted"  # grpc's own refusal: the message was not read
