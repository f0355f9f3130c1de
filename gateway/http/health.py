"""Liveness, readiness and request counts, for operators and orchestrators."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from gateway.http.common import error_response

router = APIRouter(tags=["health"])
ReadyCheck = Callable[[], Awaitable[bool]]

# (route, status) -> requests served; filled by the app's middleware.
RequestCounts = collections.Counter[tuple[str, int]]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    ready: ReadyCheck = request.app.state.ready
    if await ready():
        return JSONResponse({"status": "ready"})
    return error_response(503, "unavailable", "database not reachable")


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    counts: RequestCounts = request.app.state.request_counts
    lines = ["# TYPE cronfleet_http_requests_total counter"]
    for (path, status), n in sorted(counts.items()):
        lines.append(f'cronfleet_http_requests_total{{path="{path}",status="{status}"}} {n}')
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
