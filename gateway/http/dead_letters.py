"""Dead letters: runs whose retries are spent, to replay or discard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from cronfleet.codec import jsonapi
from gateway.http import schemas as S
from gateway.http.common import Caller, Service
from gateway.http.openapi import doc

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])


@router.get("", **doc(200, S.DeadLetterPage, errors=(400, 404)))
async def list_dead_letters(
    service: Service,
    user: Caller,
    job_id: str | None = None,
    limit: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    found, nxt = await service.list_dead_letters(user, job_id=job_id, limit=limit, page_token=page_token)
    return {"dead_letters": [jsonapi.dead_letter_to_json(d) for d in found], "next_page_token": nxt}


@router.post("/{dead_letter_id}/replay", status_code=202, **doc(202, S.ExecutionReply, errors=(404, 429)))
async def replay_dead_letter(dead_letter_id: str, service: Service, user: Caller) -> dict[str, Any]:
    return jsonapi.execution_to_json(await service.replay_dead_letter(user, dead_letter_id))


@router.delete("/{dead_letter_id}", status_code=204, **doc(204, errors=(404,)))
async def delete_dead_letter(dead_letter_id: str, service: Service, user: Caller) -> Response:
    await service.delete_dead_letter(user, dead_letter_id)
    return Response(status_code=204)
