"""Liveness, readiness and metrics, for operators and orchestrators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import prometheus_client
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateway.http import schemas as S
from gateway.http.common import error_response
from gateway.http.openapi import doc

router = APIRouter(tags=["health"])
ReadyCheck = Callable[[], Awaitable[bool]]


@router.get("/healthz", **doc(200, S.HealthReply, auth=False, errors=()))
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", **doc(200, S.HealthReply, auth=False, errors=()))
async def readyz(request: Request) -> Response:
    ready: ReadyCheck = request.app.state.ready
    if await ready():
        return JSONResponse({"status": "ready"})
    return error_response(503, "unavailable", "database not reachable")


@router.get("/metrics", **doc(200, text=True, auth=False, errors=()))
async def metrics() -> Response:
    """This process's metrics (cronfleet.metrics), Prometheus text."""
    return Response(prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST)
