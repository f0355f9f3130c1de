"""Executions: list, read, follow the console output, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from cronfleet.codec import jsonapi
from gateway.http import schemas as S
from gateway.http.common import Caller, Service
from gateway.http.openapi import doc

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])


@router.get("", **doc(200, S.ExecutionPage, errors=(400, 404, 422)))
async def list_executions(
    service: Service,
    user: Caller,
    job_id: str | None = None,
    status: str | None = None,
    worker_id: str | None = None,
    limit: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    executions, nxt = await service.list_executions(
        user, job_id=job_id, status=status, worker_id=worker_id, limit=limit, page_token=page_token
    )
    return {"executions": [jsonapi.execution_to_json(e) for e in executions], "next_page_token": nxt}


@router.get("/{execution_id}", **doc(200, S.ExecutionReply, errors=(404,)))
async def get_execution(execution_id: str, service: Service, user: Caller) -> dict[str, Any]:
    return jsonapi.execution_to_json(await service.get_execution(user, execution_id))


@router.get("/{execution_id}/logs", **doc(200, text=True, errors=(400, 404, 410)))
async def execution_logs(execution_id: str, service: Service, user: Caller, follow: bool = False) -> Response:
    if not follow:
        data = await service.execution_logs(user, execution_id)
        return PlainTextResponse(data.decode(errors="replace"))
    chunks = service.follow_logs(user, execution_id)
    first = await anext(chunks, b"")  # errors (404) surface before the stream starts

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


@router.post("/{execution_id}/cancel", status_code=202, **doc(202, S.ExecutionReply, errors=(404, 409)))
async def cancel_execution(execution_id: str, service: Service, user: Caller) -> dict[str, Any]:
    return jsonapi.execution_to_json(await service.cancel_execution(user, execution_id))
