"""Runs a job gets outside its schedule: run now (``manual``), backfill, and
the first attempts every such trigger inserts (a dead letter's replay too)."""

from __future__ import annotations

from datetime import UTC, datetime

from cronfleet import schedule
from cronfleet.codec import rows
from cronfleet.db import Session
from cronfleet.errors import InvalidSpec
from cronfleet.models import Job, check_moment
from cronfleet.records import Execution, User
from gateway.service import limits
from gateway.service.base import ServiceBase
from gateway.service.idempotency import IdempotentRequest, earlier_reply, save_reply

MAX_BACKFILL = 1000
COUNT_UP_TO = 10 * MAX_BACKFILL  # how far a refused backfill counts its fires


class Triggers(ServiceBase):
    async def run_job(self, user: User, job_id: str, idempotency_key: str | None = None) -> Execution:
        """Fire now, outside the schedule (also for paused or completed jobs).
        With an idempotency key, a repeat returns the same execution."""
        key = (
            IdempotentRequest.of(idempotency_key, "run_job", job_id) if idempotency_key is not None else None
        )
        async with self.db.transaction() as tx:
            await tx.execute("lock_user", {"id": user.id})
            job = await self._lock(tx, user, job_id)
            if key is not None and (earlier := await earlier_reply(tx, user, key)) is not None:
                row = await tx.fetch_one("get_execution", {"id": earlier["execution"], "owner_id": user.id})
                assert row is not None
                return await self._with_link(rows.execution_from_row(row))
            now = datetime.now(UTC)
            await limits.check_runs(tx, user, self.quotas, adding=1, now=now)
            (execution,) = await self._trigger(tx, job, "manual", [now])
            if key is not None:
                await save_reply(tx, user, key, 202, {"execution": execution.id})
            return await self._with_link(execution)

    @staticmethod
    async def _trigger(
        tx: Session,
        job: Job,
        trigger: str,
        fires: list[datetime],
        upstream_execution_id: int | None = None,
    ) -> list[Execution]:
        """First attempts of ``job`` at ``fires``, due now; a fire that already
        has one is left alone. Wakes the job's shard."""
        found = await tx.fetch_all(
            "insert_triggered_executions",
            {
                "job_ids": [job.id] * len(fires),
                "scheduled": fires,
                "upstream_ids": [upstream_execution_id] * len(fires),
                "trigger": trigger,
                "run_at": datetime.now(UTC),
            },
        )
        await tx.execute("notify_due", {"shard_id": job.shard_id})
        return sorted((rows.execution_from_row(r) for r in found), key=lambda e: e.scheduled_at)

    async def backfill_job(self, user: User, job_id: str, start: datetime, end: datetime) -> list[Execution]:
        """One run (trigger "backfill") for each fire the schedule had in
        [start, end] and that has none yet, due now; the job's concurrency
        policy paces them."""
        now = datetime.now(UTC)
        check_moment(start, "from")
        if end <= start:
            raise InvalidSpec("must be after from", field="to")
        if end > now:
            raise InvalidSpec("must not be in the future", field="to")
        async with self.db.transaction() as tx:
            await tx.execute("lock_user", {"id": user.id})
            job = await self._lock(tx, user, job_id)
            if job.spec.schedule is None:
                raise InvalidSpec("only a job with a schedule can be backfilled", field="schedule")
            fires = schedule.fires_between(job.timing, start, end, COUNT_UP_TO + 1)
            if len(fires) > MAX_BACKFILL:
                count = f"more than {COUNT_UP_TO:,}" if len(fires) > COUNT_UP_TO else f"{len(fires):,}"
                raise InvalidSpec(
                    f"the range holds {count} fires; backfill at most {MAX_BACKFILL:,} at once", field="from"
                )
            if not fires:
                return []
            await limits.check_runs(tx, user, self.quotas, adding=len(fires), now=now)
            created = await self._trigger(tx, job, "backfill", fires)
            return [await self._with_link(e) for e in created]
