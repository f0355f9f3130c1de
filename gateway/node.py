"""The gateway process: the gRPC JobService and the HTTP facade, one event loop."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import structlog
import uvicorn

from cronfleet import etcd, rpc
from cronfleet.aio import within
from cronfleet.config import Settings
from cronfleet.db import Database
from cronfleet.errors import CronfleetError
from cronfleet.logstore import open_log_store
from cronfleet.models import Resources
from cronfleet.sealing import SecretKey
from cronfleet.v1 import jobs_pb2_grpc
from gateway.cluster_view import ClusterView
from gateway.grpc_api import JobServicer
from gateway.http import build_http_app
from gateway.http.common import MAX_BODY
from gateway.service import JobsService
from gateway.service.limits import AuthLimits, Quotas

log = structlog.get_logger()


def web_dir(settings: Settings) -> Path:
    return Path(settings.web_dir) if settings.web_dir else Path(__file__).parents[1] / "web" / "dist"


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """The gateway role, until ``stop`` is set. It starts without Postgres or
    etcd and answers 503 until they are back."""
    async with (
        Database.connected(settings.database_url, max_size=16) as db,
        etcd.connected(settings.etcd_endpoints) as client,
    ):
        logs = open_log_store(settings)
        tls = rpc.InternalTls.from_settings(settings)
        cluster = ClusterView(client, etcd.Keys(settings.etcd_prefix), tls)
        service = JobsService(
            db,
            logs,
            shards=settings.shards,
            token_ttl=timedelta(hours=settings.token_ttl_hours),
            limits=Resources(
                cpus=settings.max_cpus, memory_mb=settings.max_memory_mb, pids=settings.max_pids
            ),
            secret_key=SecretKey.from_settings(settings),
            auth_limits=AuthLimits(
                account_failures=settings.auth_account_failures,
                account_window_seconds=settings.auth_account_window_seconds,
                address_requests=settings.auth_address_requests,
                address_window_seconds=settings.auth_address_window_seconds,
            ),
            quotas=Quotas(jobs=settings.quota_jobs, runs_per_minute=settings.quota_runs_per_minute),
        )
        try:
            await _serve(settings, db, service, cluster, stop)
        finally:
            await cluster.close()
            await logs.close()


async def _serve(
    settings: Settings, db: Database, service: JobsService, cluster: ClusterView, stop: asyncio.Event
) -> None:
    async def ready() -> bool:
        try:
            await db.fetch_one("ping")
            return True
        except CronfleetError:
            return False

    servicer = JobServicer(service, cluster)
    grpc_server = await rpc.serve(
        settings.grpc_addr,
        [("cronfleet.v1.JobService", lambda s: jobs_pb2_grpc.add_JobServiceServicer_to_server(servicer, s))],
        # The public API: bearer tokens, not certificates; TLS for it belongs to
        # the proxy or load balancer in front (README: Security).
        tls=None,
        # As the HTTP API's bodies: a larger request is RESOURCE_EXHAUSTED before it is parsed.
        options=[("grpc.max_receive_message_length", MAX_BODY)],
    )
    host, _, port = settings.http_addr.rpartition(":")
    app = build_http_app(service, cluster, ready, web_dir(settings))
    app.state.metrics_addr = settings.http_addr  # the gateway serves /metrics on its API port
    http = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=int(port),
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
    )
    # uvicorn captures SIGINT/SIGTERM while it serves and re-raises them when
    # it stops, so the role's stop event still fires and everything drains.
    http_task = asyncio.create_task(http.serve())
    log.info("gateway_started", http=f"http://{settings.http_addr}", grpc=grpc_server.address)
    try:
        await stop.wait()
    finally:
        http.should_exit = True
        with contextlib.suppress(Exception):
            await within(http_task, 5)
        await grpc_server.stop(grace=2)
