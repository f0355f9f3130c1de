"""Internal gRPC is mutual TLS: a real scheduler and coordinator (in this
process, on 127.0.0.1:0) refuse a client without a certificate their CA
signed, and a certificate of the wrong role; plaintext only by setting."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from coordinator.node import Coordinator
from cronfleet import etcd, rpc
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.tls import TlsFiles, ensure_local_pki
from cronfleet.v1 import coordinator_pb2_grpc, dispatch_pb2, dispatch_pb2_grpc, jobs_pb2
from gateway.cluster_view import ClusterView
from launch.devservices import LocalEtcd
from scheduler.node import Scheduler
from tests.helpers import Roles, as_role, assert_eventually

pytestmark = pytest.mark.integration
REFUSED = 5.0  # seconds a refused call may take to say so


@pytest.fixture
def settings(etcd_server: LocalEtcd, etcd_prefix: str, database_url: str) -> Settings:
    return dataclasses.replace(
        Settings(),
        database_url=database_url,
        etcd_endpoints=etcd_server.endpoint,
        etcd_prefix=etcd_prefix,
        member_ttl=2,
        shards=4,
        coordinator_id="c1",
        scheduler_id="s1",
        coordinator_addr="127.0.0.1:0",
        dispatch_addr="127.0.0.1:0",
    )


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsFiles]:
    """Certificates of another CA, for every role."""
    return ensure_local_pki(tmp_path_factory.mktemp("stranger") / "tls")


@pytest.fixture
async def roles() -> AsyncIterator[Roles]:
    r = Roles()
    yield r
    await r.close()


def credentials(trust: TlsFiles, present: TlsFiles | None) -> grpc.ChannelCredentials:
    """Trusting ``trust``'s CA (so the server's certificate checks out), presenting ``present``."""
    if present is None:
        return grpc.ssl_channel_credentials(trust.ca.read_bytes())
    return grpc.ssl_channel_credentials(
        trust.ca.read_bytes(), present.key.read_bytes(), present.cert.read_bytes()
    )


def clients(
    pki: dict[str, TlsFiles], stranger: dict[str, TlsFiles]
) -> dict[str, grpc.ChannelCredentials | None]:
    """Every client that must be refused a connection (None: plaintext)."""
    return {
        "plaintext": None,
        "no certificate": credentials(pki["worker"], None),
        "another CA's certificate": credentials(pki["worker"], stranger["worker"]),
    }


def channel(address: str, creds: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address) if creds is None else grpc.aio.secure_channel(address, creds)


async def open_stream(address: str, creds: grpc.ChannelCredentials | None, worker_id: str) -> grpc.StatusCode:
    """Dial a scheduler as a worker would; the status the stream ends with
    (OK: it is still open after the hello)."""
    async with channel(address, creds) as ch:
        call = dispatch_pb2_grpc.DispatchServiceStub(ch).Connect()
        try:
            await call.write(
                dispatch_pb2.WorkerMessage(hello=dispatch_pb2.Hello(worker_id=worker_id, capacity=1))
            )
            await asyncio.wait_for(call.read(), REFUSED)
        except grpc.aio.AioRpcError as exc:
            # The call's own end, not the error our write or read raced into
            # (a write racing the server's abort once ended INTERNAL here).
            final = await asyncio.wait_for(call.code(), REFUSED)
            return final if final != grpc.StatusCode.INTERNAL else exc.code()
        except (TimeoutError, grpc.aio.UsageError):
            return grpc.StatusCode.OK
        finally:
            call.cancel()
    return grpc.StatusCode.OK


async def start_scheduler(settings: Settings, db: Database, roles: Roles) -> Scheduler:
    scheduler = Scheduler(settings, db, etcd.connect(settings.etcd_endpoints))
    roles.start("s1", scheduler.run)
    await assert_eventually(lambda: _serving(scheduler), what="scheduler serving")
    return scheduler


async def _serving(node: Scheduler | Coordinator) -> bool:
    return bool(node.address)


async def test_a_scheduler_streams_only_to_workers_its_ca_signed(
    settings: Settings, db: Database, roles: Roles, pki: dict[str, TlsFiles], stranger: dict[str, TlsFiles]
) -> None:
    scheduler = await start_scheduler(as_role(settings, pki, "scheduler"), db, roles)
    for what, creds in clients(pki, stranger).items():
        code = await open_stream(scheduler.address, creds, f"intruder-{what}")
        assert code == grpc.StatusCode.UNAVAILABLE, what
    assert scheduler.streams.all() == [], "no refused client ever got a stream"
    gateway = credentials(pki["worker"], pki["gateway"])  # signed by the CA, but not a worker's
    assert await open_stream(scheduler.address, gateway, "a-gateway") == grpc.StatusCode.PERMISSION_DENIED
    assert scheduler.streams.get("a-gateway") is None

    worker = credentials(pki["worker"], pki["worker"])
    opened = asyncio.create_task(open_stream(scheduler.address, worker, "w1"))
    await assert_eventually(lambda: _has_stream(scheduler, "w1"), what="the worker's stream is taken")
    assert await opened == grpc.StatusCode.OK


async def _has_stream(scheduler: Scheduler, worker_id: str) -> bool:
    return scheduler.streams.get(worker_id) is not None


async def test_a_coordinator_answers_only_gateways_its_ca_signed(
    settings: Settings, db: Database, roles: Roles, pki: dict[str, TlsFiles], stranger: dict[str, TlsFiles]
) -> None:
    coordinator = Coordinator(
        as_role(settings, pki, "coordinator"), db, etcd.connect(settings.etcd_endpoints)
    )
    roles.start("c1", coordinator.run)
    await assert_eventually(lambda: _serving(coordinator), what="coordinator serving")

    async def get_cluster(creds: grpc.ChannelCredentials | None) -> grpc.StatusCode:
        async with channel(coordinator.address, creds) as ch:
            try:
                await coordinator_pb2_grpc.CoordinatorServiceStub(ch).GetCluster(
                    jobs_pb2.GetClusterRequest(), timeout=REFUSED
                )
            except grpc.aio.AioRpcError as exc:
                return exc.code()
        return grpc.StatusCode.OK

    for what, creds in clients(pki, stranger).items():
        assert await get_cluster(creds) == grpc.StatusCode.UNAVAILABLE, what
    worker = credentials(pki["coordinator"], pki["worker"])
    assert await get_cluster(worker) == grpc.StatusCode.PERMISSION_DENIED
    assert await get_cluster(credentials(pki["coordinator"], pki["gateway"])) == grpc.StatusCode.OK

    # The gateway's own client, as it runs: mutual TLS with its certificate.
    gateway = as_role(settings, pki, "gateway")
    view = ClusterView(
        etcd.connect(settings.etcd_endpoints),
        etcd.Keys(settings.etcd_prefix),
        rpc.InternalTls.from_settings(gateway),
    )
    try:
        cluster = await assert_eventually(view, what="the leader answers the gateway")
        assert cluster.leader == "c1"
    finally:
        await view.close()


async def test_plaintext_only_when_said_and_tls_without_files_does_not_start(
    settings: Settings, db: Database, roles: Roles, tmp_path: Path
) -> None:
    with pytest.raises(rpc.TlsNotConfigured, match="CRONFLEET_TLS_CA"):
        Scheduler(settings, db, etcd.connect(settings.etcd_endpoints))
    scheduler = await start_scheduler(dataclasses.replace(settings, internal_tls=False), db, roles)
    opened = asyncio.create_task(open_stream(scheduler.address, None, "plain"))
    await assert_eventually(lambda: _has_stream(scheduler, "plain"), what="a plaintext stream, by setting")
    assert await opened == grpc.StatusCode.OK
