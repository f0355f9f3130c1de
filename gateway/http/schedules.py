"""Schedule preview: try cron text before a job uses it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from cronfleet import cron
from cronfleet.codec import jsonapi
from cronfleet.errors import InvalidArgument, InvalidSpec
from gateway.http import schemas as S
from gateway.http.common import Caller, Service, read_object
from gateway.http.openapi import doc

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])


@router.post("/preview", **doc(200, S.PreviewReply, body=S.PreviewBody, errors=(400, 422)))
async def preview_schedule(request: Request, service: Service, user: Caller) -> dict[str, Any]:
    body = await read_object(request, ("schedule", "timezone", "after", "count"))
    timezone = body.get("timezone") or "UTC"
    count = body.get("count", 5)
    if not isinstance(count, int) or isinstance(count, bool):
        raise InvalidArgument("must be an integer", field="count")
    if not isinstance(timezone, str):
        raise InvalidArgument("must be a string", field="timezone")
    after = jsonapi.parse_time(body["after"], "after") if body.get("after") is not None else None
    text = body.get("schedule")
    if not isinstance(text, str):
        raise InvalidSpec("is required (cron text)", field="schedule")
    found = await service.preview_schedule(user, text, timezone, after, count)
    tz = cron.load_timezone(timezone)
    return {
        "next": [jsonapi.iso(t) for t in found.next],
        "next_local": [t.astimezone(tz).isoformat() for t in found.next],
        "description": found.description,
        "warnings": list(found.warnings),
    }
