"""Alerts: what was sent about the caller's jobs, and how each delivery went."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cronfleet.codec import jsonapi
from gateway.http import schemas as S
from gateway.http.common import Caller, Service
from gateway.http.openapi import doc

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.get("", **doc(200, S.AlertPage, errors=(400, 404)))
async def list_alerts(
    service: Service,
    user: Caller,
    job_id: str | None = None,
    limit: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    found, nxt = await service.list_alerts(user, job_id=job_id, limit=limit, page_token=page_token)
    return {"alerts": [jsonapi.alert_to_json(a) for a in found], "next_page_token": nxt}
