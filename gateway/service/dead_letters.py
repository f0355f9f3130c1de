"""Dead letters: attempts that failed for good, listed, replayed or discarded."""

from __future__ import annotations

from datetime import UTC, datetime

from cronfleet.codec import rows
from cronfleet.errors import NotFound
from cronfleet.records import DeadLetter, Execution, User
from gateway.service import limits
from gateway.service.base import encode_page_token, page_after_id, page_size, parse_serial, parse_uuid
from gateway.service.jobs import Jobs


class DeadLetters(Jobs):
    async def list_dead_letters(
        self,
        user: User,
        *,
        job_id: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[DeadLetter], str]:
        n = page_size(limit)
        before = page_after_id(page_token) if page_token else None
        found = await self.db.fetch_all(
            "list_dead_letters",
            {
                "owner_id": user.id,
                "job_id": parse_uuid(job_id, "job") if job_id else None,
                "before_id": before,
                "limit": n + 1,
            },
        )
        nxt = encode_page_token(found[n - 1]["id"]) if len(found) > n else ""
        return [rows.dead_letter_from_row(r) for r in found[:n]], nxt

    async def replay_dead_letter(self, user: User, dead_letter_id: str) -> Execution:
        """A fresh attempt chain of the job, now (trigger "replay"); the dead
        letter is taken in the same transaction."""
        async with self.db.transaction() as tx:
            await tx.execute("lock_user", {"id": user.id})
            row = await tx.fetch_one(
                "take_dead_letter", {"id": parse_serial(dead_letter_id, "dead letter"), "owner_id": user.id}
            )
            if row is None:
                raise NotFound(f"no such dead letter {dead_letter_id}")
            job = await self._lock(tx, user, str(row["job_id"]))
            now = _now()
            await limits.check_runs(tx, user, self.quotas, adding=1, now=now)
            (execution,) = await self._trigger(tx, job, "replay", [now])
            return await self._with_link(execution)

    async def delete_dead_letter(self, user: User, dead_letter_id: str) -> None:
        row = await self.db.fetch_one(
            "take_dead_letter", {"id": parse_serial(dead_letter_id, "dead letter"), "owner_id": user.id}
        )
        if row is None:
            raise NotFound(f"no such dead letter {dead_letter_id}")


def _now() -> datetime:
    return datetime.now(UTC)
