"""The cluster as the elected coordinator sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import APIRouter, Request

from cronfleet.codec import proto
from cronfleet.v1 import jobs_pb2
from gateway.http import schemas as S
from gateway.http.common import Caller
from gateway.http.openapi import doc

router = APIRouter(prefix="/api/v1", tags=["cluster"])
PROBE_TIMEOUT = 1.0  # seconds
ClusterSource = Callable[[], Awaitable[jobs_pb2.Cluster]]


@router.get("/cluster", **doc(200, S.ClusterReply, errors=()))
async def get_cluster(request: Request, user: Caller) -> dict[str, Any]:
    source: ClusterSource = request.app.state.cluster
    view = proto.cluster_to_json(await source())
    view["metrics"]["gateway"] = request.app.state.metrics_addr  # this gateway's own
    view["health"] = await probe_members(view["metrics"])
    return view


async def probe_members(addresses: dict[str, str]) -> dict[str, str]:
    """Each member's health as seen from here: "ok" when its metrics server
    answers within PROBE_TIMEOUT. A member is listed while its etcd lease
    lives; a process that stopped (SIGSTOP, a frozen VM) keeps that lease for
    a few seconds but stops answering at once."""

    async def probe(client: httpx.AsyncClient, addr: str) -> str:
        try:
            reply = await client.get(f"http://{addr}/metrics")
        except httpx.HTTPError as exc:
            return f"not answering: {type(exc).__name__}"
        return "ok" if reply.status_code == 200 else f"answers {reply.status_code}"

    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as client:
        found = await asyncio.gather(*(probe(client, a) for a in addresses.values()))
    return dict(zip(addresses, found, strict=True))
