"""The HTTP/JSON facade of API.md: one router per area, over the same
service layer the gRPC API uses (``gateway.service``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cronfleet import metrics
from cronfleet.errors import CronfleetError, RetryLater
from gateway.http import (
    alerts,
    auth,
    cluster,
    dashboard,
    dead_letters,
    executions,
    health,
    jobs,
    openapi,
    schedules,
    stats,
)
from gateway.http.cluster import ClusterSource
from gateway.http.common import BodyLimit, error_response
from gateway.http.health import ReadyCheck
from gateway.service import JobsService

REQUEST_ID_HEADER = "X-Request-Id"


def build_http_app(
    service: JobsService, cluster_source: ClusterSource, ready: ReadyCheck, web_dir: Path | None = None
) -> FastAPI:
    app = FastAPI(
        title="cronfleet",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        separate_input_output_schemas=False,
    )
    app.state.service = service
    app.state.cluster = cluster_source
    app.state.ready = ready
    for area in (health, auth, jobs, executions, dead_letters, alerts, schedules, stats, cluster):
        app.include_router(area.router)
    if web_dir is not None:
        dashboard.mount(app, web_dir)  # last: its catch-all must not shadow a route
    _add_error_handlers(app)
    app.add_middleware(BodyLimit)
    openapi.install(app)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Bind a request id into the log context; time the request by route."""
        started = time.perf_counter()
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.clear_contextvars()
        response.headers[REQUEST_ID_HEADER] = request_id
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.HTTP_DURATION.labels(route, request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is ``{"error": {"code", "message", "field"?}}`` with its status (API.md)."""

    @app.exception_handler(CronfleetError)
    async def _cronfleet_error(request: Request, exc: CronfleetError) -> JSONResponse:
        retry_after = exc.retry_after if isinstance(exc, RetryLater) else None
        return error_response(exc.http_status, exc.code, str(exc), exc.field, retry_after)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(
            exc.status_code, "not_found" if exc.status_code == 404 else "http_error", str(exc.detail)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        return error_response(400, "invalid_argument", f"{where}: {first['msg']}")
