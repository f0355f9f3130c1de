"""Schedule preview: the next fires, the schedule in words, and warnings."""

from __future__ import annotations

from datetime import datetime

from cronfleet import cron, preview
from cronfleet.errors import InvalidArgument, InvalidSpec
from cronfleet.models import MAX_SCHEDULE, MAX_TIMEZONE, check_moment, check_text
from cronfleet.records import User
from gateway.service.base import ServiceBase


class Schedules(ServiceBase):
    async def preview_schedule(
        self, user: User, text: str, timezone: str = "UTC", after: datetime | None = None, count: int = 5
    ) -> preview.Preview:
        if not isinstance(text, str) or not text.strip():
            raise InvalidSpec("is required", field="schedule")
        if not 1 <= count <= preview.MAX_COUNT:
            raise InvalidArgument(f"must be 1-{preview.MAX_COUNT}", field="count")
        check_text(text, "schedule", MAX_SCHEDULE)
        check_text(timezone, "timezone", MAX_TIMEZONE)
        check_moment(after, "after")
        cron.load_timezone(timezone)
        return preview.preview(text, timezone, after, count)
