"""Alerts: a user's, each with how its deliveries went; the user's signing
secret for them (shown once)."""

from __future__ import annotations

from cronfleet import alerts
from cronfleet.codec import rows
from cronfleet.records import Alert, User
from gateway.service.base import ServiceBase, encode_page_token, page_after_id, page_size, parse_uuid


class Alerts(ServiceBase):
    async def list_alerts(
        self,
        user: User,
        *,
        job_id: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Alert], str]:
        n = page_size(limit)
        before = page_after_id(page_token) if page_token else None
        found = await self.db.fetch_all(
            "list_alerts",
            {
                "owner_id": user.id,
                "job_id": parse_uuid(job_id, "job") if job_id else None,
                "before_id": before,
                "limit": n + 1,
            },
        )
        nxt = encode_page_token(found[n - 1]["id"]) if len(found) > n else ""
        return [rows.alert_from_row(r) for r in found[:n]], nxt

    async def new_webhook_secret(self, user: User) -> str:
        """A new secret for signing the user's alert deliveries, replacing the
        old one (deliveries from now on are signed with it)."""
        secret = alerts.new_secret()
        await self.db.execute("set_webhook_secret", {"id": user.id, "secret": secret})
        return secret
