"""Jobs: create (all or nothing), read, change, pause, resume, delete, run now."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cronfleet import schedule
from cronfleet.codec import rows
from cronfleet.db import Session
from cronfleet.errors import Conflict, InvalidArgument, InvalidSpec, NotFound
from cronfleet.models import JOB_STATUSES, Execution, Job, JobSpec, User
from cronfleet.shards import shard_for
from gateway.service.base import ServiceBase, decode_page_token, encode_page_token, page_size, parse_uuid


class Jobs(ServiceBase):
    async def create_jobs(self, user: User, specs: list[JobSpec]) -> list[Job]:
        """Create every job or none of them, in one transaction."""
        for i, spec in enumerate(specs):
            try:
                spec.validate(self.limits)
            except (InvalidArgument, InvalidSpec) as exc:
                if len(specs) > 1:
                    exc.field = f"jobs[{i}].{exc.field}"
                raise
        now = datetime.now(UTC)
        created = []
        async with self.db.transaction() as tx:
            for spec in specs:
                job_id = uuid.uuid4()
                first = schedule.first_fire(spec.timing(anchor=now), now)
                row = await tx.fetch_one(
                    "insert_job",
                    rows.job_params(spec)
                    | {
                        "id": job_id,
                        "owner_id": user.id,
                        "shard_id": shard_for(job_id, self.shards),
                        "status": "active" if first else "completed",
                    },
                )
                assert row is not None
                created.append(await self._schedule(tx, rows.job_from_row(row), first))
        return created

    async def get_job(self, user: User, job_id: str) -> Job:
        return rows.job_from_row(await self._job_row(user, job_id))

    async def list_jobs(
        self, user: User, status: str | None, limit: int | None, page_token: str | None
    ) -> tuple[list[Job], str]:
        if status and status not in JOB_STATUSES:
            raise InvalidArgument(f"must be one of {', '.join(JOB_STATUSES)}", field="status")
        n = page_size(limit)
        after_created, after_id = decode_page_token(page_token) if page_token else (None, None)
        found = await self.db.fetch_all(
            "list_jobs",
            {
                "owner_id": user.id,
                "status": status or None,
                "after_created": after_created,
                "after_id": after_id,
                "limit": n + 1,
            },
        )
        nxt = (
            encode_page_token(found[n - 1]["created_at"].isoformat(), found[n - 1]["id"])
            if len(found) > n
            else ""
        )
        return [rows.job_from_row(r) for r in found[:n]], nxt

    async def replace_job(self, user: User, job_id: str, spec: JobSpec) -> Job:
        spec.validate(self.limits)
        return await self._rewrite(user, job_id, lambda _old: spec)

    async def update_job(self, user: User, job_id: str, changes: dict[str, Any]) -> Job:
        """Change the named fields (PATCH); a None value resets one to its default."""

        def merge(old: JobSpec) -> JobSpec:
            new = old.with_changes(changes)
            new.validate(self.limits)
            return new

        return await self._rewrite(user, job_id, merge)

    async def _rewrite(self, user: User, job_id: str, build: Callable[[JobSpec], JobSpec]) -> Job:
        """Change a job's spec and recompute its next fire, atomically."""
        now = datetime.now(UTC)
        async with self.db.transaction() as tx:
            old = await self._lock(tx, user, job_id)
            spec = build(old.spec)
            # A new schedule or run_at revives a finished job.
            status = "active" if old.status == "completed" else old.status
            row = await tx.fetch_one(
                "update_job", rows.job_params(spec) | {"id": old.id, "owner_id": user.id, "status": status}
            )
            assert row is not None
            job = rows.job_from_row(row)
            await tx.execute("delete_schedule", {"job_id": old.id})
            if status != "active":
                return job
            first = schedule.first_fire(job.timing, now)
            if first is None:
                return await self._set_status(tx, job, "completed")
            return await self._schedule(tx, job, first)

    async def delete_job(self, user: User, job_id: str) -> None:
        async with self.db.transaction() as tx:
            job = await self._lock(tx, user, job_id)
            await self._set_status(tx, job, "deleted")
            await tx.execute("delete_schedule", {"job_id": job.id})
            cancelled = await tx.fetch_all("cancel_job_executions", {"job_id": job.id})
            for shard in {r["shard_id"] for r in cancelled}:
                await tx.execute("notify_cancel", {"shard_id": shard})

    async def pause_job(self, user: User, job_id: str) -> Job:
        async with self.db.transaction() as tx:
            job = await self._lock(tx, user, job_id)
            if job.status != "active":
                raise Conflict(f"job is {job.status}, not active", field="status")
            await tx.execute("delete_schedule", {"job_id": job.id})
            return await self._set_status(tx, job, "paused")

    async def resume_job(self, user: User, job_id: str) -> Job:
        """Fires missed while paused are skipped: the next fire is after now."""
        async with self.db.transaction() as tx:
            job = await self._lock(tx, user, job_id)
            if job.status != "paused":
                raise Conflict(f"job is {job.status}, not paused", field="status")
            first = schedule.first_fire(job.timing, datetime.now(UTC))
            job = await self._set_status(tx, job, "active" if first else "completed")
            return await self._schedule(tx, job, first)

    async def run_job(self, user: User, job_id: str) -> Execution:
        """Fire now, outside the schedule (also for paused or completed jobs)."""
        async with self.db.transaction() as tx:
            job = await self._lock(tx, user, job_id)
            (execution,) = await self._trigger(tx, job, "manual", [datetime.now(UTC)])
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
        return [rows.execution_from_row(r) for r in found]

    async def _lock(self, tx: Session, user: User, job_id: str) -> Job:
        row = await tx.fetch_one("lock_job", {"id": parse_uuid(job_id, "job"), "owner_id": user.id})
        if row is None:
            raise NotFound(f"no such job {job_id}")
        if row["status"] == "deleted":
            raise NotFound(f"job {job_id} is deleted")
        return rows.job_from_row(row)

    @staticmethod
    async def _set_status(tx: Session, job: Job, status: str) -> Job:
        row = await tx.fetch_one("set_job_status", {"id": job.id, "owner_id": job.owner_id, "status": status})
        assert row is not None
        return rows.job_from_row(row)

    @staticmethod
    async def _schedule(tx: Session, job: Job, first: datetime | None) -> Job:
        """Put the job's first fire on the schedule and wake its shard's scheduler."""
        if first is None:
            return job
        await tx.execute(
            "insert_schedule", {"job_id": job.id, "shard_id": job.shard_id, "next_run_at": first}
        )
        await tx.execute("notify_due", {"shard_id": job.shard_id})
        return dataclasses.replace(job, next_run_at=first)
