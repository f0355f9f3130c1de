"""The HTTP/JSON facade of API.md, one route per JobService RPC."""

from __future__ import annotations

import collections
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import yaml
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from google.protobuf.json_format import MessageToDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from cronfleet.errors import CronfleetError, InvalidArgument
from cronfleet.models import JobSpec
from cronfleet.v1 import jobs_pb2
from gateway import views
from gateway.service import JobsService, User

MAX_BODY = 1 << 20


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise _TooLarge()
    if not raw:
        raise InvalidArgument("request body is empty; send a JSON object")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        if ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidArgument(f"malformed {'YAML' if 'yaml' in ctype else 'JSON'}: {exc}") from exc


class _TooLarge(Exception):
    pass


def _yaml_jobs(doc: Any) -> list[JobSpec]:
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list) or not doc["jobs"]:
        raise InvalidArgument("a YAML body needs a non-empty 'jobs:' list", field="jobs")
    specs = []
    for i, item in enumerate(doc["jobs"]):
        if not isinstance(item, dict):
            raise InvalidArgument("must be a mapping", field=f"jobs[{i}]")
        item = dict(item)
        run_once = item.pop("run_once", False)
        if run_once and item.get("schedule"):
            raise InvalidArgument("run_once and schedule cannot both be set", field=f"jobs[{i}].run_once")
        try:
            specs.append(JobSpec.from_mapping(item))
        except InvalidArgument as exc:
            exc.field = f"jobs[{i}].{exc.field}"
            raise
    return specs


def build_http_app(
    service: JobsService,
    cluster: Callable[[], Awaitable[jobs_pb2.Cluster]],
    ready: Callable[[], Awaitable[bool]],
) -> FastAPI:
    app = FastAPI(title="cronfleet", version="1", openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs")
    requests_total: collections.Counter[tuple[str, int]] = collections.Counter()

    @app.exception_handler(CronfleetError)
    async def _cronfleet_error(request: Request, exc: CronfleetError) -> JSONResponse:
        return error_response(exc.http_status, exc.code, str(exc))

    @app.exception_handler(_TooLarge)
    async def _too_large(request: Request, exc: _TooLarge) -> JSONResponse:
        return error_response(413, "too_large", f"request body over {MAX_BODY} bytes")

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

    @app.middleware("http")
    async def _count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        requests_total[(getattr(route, "path", "unmatched"), response.status_code)] += 1
        return response

    async def user_of(request: Request) -> User:
        return await service.authenticate(_bearer(request))

    # ---- health
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if await ready():
            return JSONResponse({"status": "ready"})
        return error_response(503, "unavailable", "database not reachable")

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        lines = ["# TYPE cronfleet_http_requests_total counter"]
        for (path, status), n in sorted(requests_total.items()):
            lines.append(f'cronfleet_http_requests_total{{path="{path}",status="{status}"}} {n}')
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    # ---- auth
    @app.post("/api/v1/auth/signup", status_code=201)
    async def signup(request: Request) -> dict[str, Any]:
        body = await _body(request)
        if not isinstance(body, dict):
            raise InvalidArgument("body must be an object {name, email, password}")
        unknown = set(body) - {"name", "email", "password"}
        if unknown:
            raise InvalidArgument("unknown field", field=sorted(unknown)[0])
        row = await service.signup(
            str(body.get("name") or ""), str(body.get("email") or ""), str(body.get("password") or "")
        )
        return {k: v for k, v in views.user_json(row).items() if k != "created_at"}

    @app.post("/api/v1/auth/login")
    async def login(request: Request) -> dict[str, Any]:
        body = await _body(request)
        if not isinstance(body, dict):
            raise InvalidArgument("body must be an object {email, password}")
        token, expires = await service.login(str(body.get("email") or ""), str(body.get("password") or ""))
        return {"token": token, "expires_at": views.iso(expires)}

    @app.post("/api/v1/auth/logout", status_code=204)
    async def logout(request: Request) -> Response:
        await user_of(request)
        await service.logout(_bearer(request) or "")
        return Response(status_code=204)

    @app.get("/api/v1/me")
    async def me(request: Request) -> dict[str, Any]:
        return views.user_json(vars(await user_of(request)))

    @app.patch("/api/v1/me")
    async def update_me(request: Request) -> dict[str, Any]:
        user = await user_of(request)
        body = await _body(request)
        if not isinstance(body, dict):
            raise InvalidArgument("body must be an object")
        unknown = set(body) - {"name", "email", "password"}
        if unknown:
            raise InvalidArgument("unknown field", field=sorted(unknown)[0])
        return views.user_json(
            await service.update_me(user, body.get("name"), body.get("email"), body.get("password"))
        )

    # ---- jobs
    @app.post("/api/v1/jobs", status_code=201)
    async def create_job(request: Request) -> dict[str, Any]:
        user = await user_of(request)
        body = await _body(request)
        if isinstance(body, dict) and "jobs" in body and "name" not in body:
            rows = await service.create_jobs(user, _yaml_jobs(body))
            return {"jobs": [views.job_json(r) for r in rows]}
        (row,) = await service.create_jobs(user, [JobSpec.from_mapping(body)])
        return views.job_json(row)

    @app.get("/api/v1/jobs")
    async def list_jobs(
        request: Request, status: str | None = None, limit: int | None = None, page_token: str | None = None
    ) -> dict[str, Any]:
        user = await user_of(request)
        rows, nxt = await service.list_jobs(user, status, limit, page_token)
        return {"jobs": [views.job_json(r) for r in rows], "next_page_token": nxt}

    @app.get("/api/v1/jobs/{job_id}")
    async def get_job(request: Request, job_id: str) -> dict[str, Any]:
        return views.job_json(await service.get_job(await user_of(request), job_id))

    @app.put("/api/v1/jobs/{job_id}")
    async def replace_job(request: Request, job_id: str) -> dict[str, Any]:
        user = await user_of(request)
        spec = JobSpec.from_mapping(await _body(request))
        return views.job_json(await service.replace_job(user, job_id, spec))

    @app.patch("/api/v1/jobs/{job_id}")
    async def update_job(request: Request, job_id: str) -> dict[str, Any]:
        user = await user_of(request)
        body = await _body(request)
        if not isinstance(body, dict):
            raise InvalidArgument("body must be an object of fields to change")
        return views.job_json(await service.update_job(user, job_id, body))

    @app.delete("/api/v1/jobs/{job_id}", status_code=204)
    async def delete_job(request: Request, job_id: str) -> Response:
        await service.delete_job(await user_of(request), job_id)
        return Response(status_code=204)

    @app.post("/api/v1/jobs/{job_id}/run", status_code=202)
    async def run_job(request: Request, job_id: str) -> dict[str, Any]:
        row = await service.run_job(await user_of(request), job_id)
        return await views.execution_json(row, service.logs)

    @app.post("/api/v1/jobs/{job_id}/pause")
    async def pause_job(request: Request, job_id: str) -> dict[str, Any]:
        return views.job_json(await service.pause_job(await user_of(request), job_id))

    @app.post("/api/v1/jobs/{job_id}/resume")
    async def resume_job(request: Request, job_id: str) -> dict[str, Any]:
        return views.job_json(await service.resume_job(await user_of(request), job_id))

    @app.get("/api/v1/jobs/{job_id}/executions")
    async def job_executions(
        request: Request,
        job_id: str,
        status: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        user = await user_of(request)
        rows, nxt = await service.list_executions(
            user, job_id=job_id, status=status, limit=limit, page_token=page_token
        )
        return {
            "executions": [await views.execution_json(r, service.logs) for r in rows],
            "next_page_token": nxt,
        }

    # ---- executions
    @app.get("/api/v1/executions")
    async def list_executions(
        request: Request,
        job_id: str | None = None,
        status: str | None = None,
        worker_id: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> dict[str, Any]:
        user = await user_of(request)
        rows, nxt = await service.list_executions(
            user, job_id=job_id, status=status, worker_id=worker_id, limit=limit, page_token=page_token
        )
        return {
            "executions": [await views.execution_json(r, service.logs) for r in rows],
            "next_page_token": nxt,
        }

    @app.get("/api/v1/executions/{execution_id}")
    async def get_execution(request: Request, execution_id: str) -> dict[str, Any]:
        row = await service.get_execution(await user_of(request), execution_id)
        return await views.execution_json(row, service.logs)

    @app.get("/api/v1/executions/{execution_id}/logs")
    async def execution_logs(request: Request, execution_id: str, follow: bool = False) -> Response:
        user = await user_of(request)
        if follow:
            chunks = service.follow_logs(user, execution_id)
            first = await anext(chunks, b"")  # errors (404) surface before the stream starts

            async def body() -> AsyncIterator[bytes]:
                yield first
                async for chunk in chunks:
                    yield chunk

            return StreamingResponse(body(), media_type="text/plain; charset=utf-8")
        data = await service.execution_logs(user, execution_id)
        return PlainTextResponse(data.decode(errors="replace"))

    @app.post("/api/v1/executions/{execution_id}/cancel", status_code=202)
    async def cancel_execution(request: Request, execution_id: str) -> dict[str, Any]:
        row = await service.cancel_execution(await user_of(request), execution_id)
        return await views.execution_json(row, service.logs)

    # ---- cluster
    @app.get("/api/v1/cluster")
    async def get_cluster(request: Request) -> dict[str, Any]:
        await user_of(request)
        c = await cluster()
        d = MessageToDict(c, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        return {
            "leader": d["leader"],
            "epoch": int(d.get("epoch", 0)),
            "coordinators": d["coordinators"],
            "schedulers": [
                {"id": s["id"], "shards": s["shards"], "address": s["address"]} for s in d["schedulers"]
            ],
            "workers": d["workers"],
        }

    return app
