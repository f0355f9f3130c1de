"""Stats for people: the caller's totals and one job's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cronfleet.codec import jsonapi
from gateway.http import schemas as S
from gateway.http.common import Caller, Service
from gateway.http.openapi import doc

router = APIRouter(prefix="/api/v1", tags=["stats"])


@router.get("/stats", **doc(200, S.StatsReply, errors=()))
async def my_stats(service: Service, user: Caller) -> dict[str, Any]:
    return jsonapi.stats_to_json(await service.stats(user))


@router.get("/jobs/{job_id}/stats", **doc(200, S.StatsReply, errors=(404,)))
async def job_stats(job_id: str, service: Service, user: Caller) -> dict[str, Any]:
    return jsonapi.stats_to_json(await service.stats(user, job_id))
