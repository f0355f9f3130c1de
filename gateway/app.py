"""Gateway process: gRPC JobService and the HTTP facade on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import aetcd
import grpc
import structlog
import uvicorn
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cronfleet import etcd
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.errors import CronfleetError, Unavailable
from cronfleet.logstore import open_log_store
from cronfleet.models import Resources
from cronfleet.v1 import coordinator_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from gateway.grpc_api import JobServicer
from gateway.http import build_http_app
from gateway.service import JobsService

log = structlog.get_logger()


class ClusterView:
    """Asks the elected coordinator for the cluster state."""

    def __init__(self, client: aetcd.Client, keys: etcd.Keys) -> None:
        self.client = client
        self.keys = keys
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def __call__(self) -> jobs_pb2.Cluster:
        try:
            leader, _ = await etcd.read_json(self.client, self.keys.leader)
        except (aetcd.exceptions.ClientError, OSError) as exc:
            raise Unavailable(f"etcd unavailable: {exc}") from exc
        if not leader:
            raise Unavailable("no coordinator is leader right now")
        address = leader["address"]
        if address not in self._channels:
            self._channels[address] = grpc.aio.insecure_channel(address)
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(self._channels[address])
        try:
            return await stub.GetCluster(jobs_pb2.GetClusterRequest(), timeout=3)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"coordinator {leader.get('id')} did not answer: {exc.details()}") from exc

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()


async def run_gateway(settings: Settings, stop: asyncio.Event) -> None:
    async with Database.connected(settings.database_url, max_size=16) as db:
        await _serve(settings, db, stop)


async def _serve(settings: Settings, db: Database, stop: asyncio.Event) -> None:
    logs = open_log_store(settings)
    client = etcd.connect(settings.etcd_endpoints)
    cluster = ClusterView(client, etcd.Keys(settings.etcd_prefix))
    service = JobsService(
        db,
        logs,
        shards=settings.shards,
        token_ttl=timedelta(hours=settings.token_ttl_hours),
        limits=Resources(cpus=settings.max_cpus, memory_mb=settings.max_memory_mb, pids=settings.max_pids),
    )

    async def ready() -> bool:
        try:
            await db.fetch_one("ping")
            return True
        except CronfleetError:
            return False

    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(service, cluster), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(settings.grpc_addr)
    await server.start()
    await health_servicer.set("cronfleet.v1.JobService", health_pb2.HealthCheckResponse.SERVING)

    host, _, port = settings.http_addr.rpartition(":")
    http = uvicorn.Server(
        uvicorn.Config(
            build_http_app(service, cluster, ready),
            host=host,
            port=int(port),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    # uvicorn captures SIGINT/SIGTERM while it serves and re-raises them when
    # it stops, so the role's stop event still fires and everything drains.
    http_task = asyncio.create_task(http.serve())
    log.info("gateway_started", http=f"http://{settings.http_addr}", grpc=settings.grpc_addr)
    try:
        await stop.wait()
    finally:
        http.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http_task, 5)
        await server.stop(grace=2)
        await cluster.close()
        await logs.close()
        with contextlib.suppress(Exception):
            await client.close()
