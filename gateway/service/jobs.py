"""Jobs: create (all or nothing), read, change, pause, resume, delete. Run
now and backfill are in ``triggers``, ``after`` chains in ``upstreams``."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cronfleet import preview, schedule, sealing
from cronfleet.codec import jsonapi, rows
from cronfleet.db import Session
from cronfleet.errors import Conflict, InvalidArgument, InvalidSpec
from cronfleet.models import JOB_STATUSES, Job, JobSpec, RunBrief
from cronfleet.records import User
from cronfleet.shards import shard_for
from gateway.service import limits
from gateway.service.base import (
    decode_page_token,
    encode_page_token,
    page_size,
    page_time,
    query_text,
)
from gateway.service.idempotency import IdempotentRequest, earlier_reply, save_reply
from gateway.service.triggers import Triggers
from gateway.service.upstreams import Upstreams, waits_for_upstream

MAX_RECENT_RUNS = 50  # latest runs a job list may add per job
# A job list's ?result=: which end statuses of the latest ended run match.
LAST_RESULTS = {"succeeded": ("succeeded",), "failed": ("failed", "timed_out", "lost")}
WITHDRAW_WAIT = 5.0  # seconds a pause, edit or delete waits for workers to drop claimed runs


class Jobs(Triggers, Upstreams):
    async def create_jobs(
        self, user: User, specs: list[JobSpec], idempotency_key: str | None = None
    ) -> list[Job]:
        """Create every job or none of them, in one transaction. With an
        idempotency key, a repeat of the same request returns the same jobs."""
        for i, spec in enumerate(specs):
            try:
                spec.validate(self.limits)
            except (InvalidArgument, InvalidSpec) as exc:
                if len(specs) > 1:
                    exc.field = f"jobs[{i}].{exc.field}"
                raise
        key = None
        if idempotency_key is not None:
            key = IdempotentRequest.of(idempotency_key, "create_jobs", [self._fingerprint(s) for s in specs])
        now = datetime.now(UTC)
        async with self.db.transaction() as tx:
            await tx.execute("lock_user", {"id": user.id})  # the user's row, then any other: no deadlock
            if key is not None and (earlier := await earlier_reply(tx, user, key)) is not None:
                return [
                    rows.job_from_row(r) for r in await tx.fetch_all("jobs_by_id", {"ids": earlier["jobs"]})
                ]
            await self._check_upstreams(tx, user, specs)
            await self._check_quotas(tx, user, specs, now)
            created = [await self._insert(tx, user, spec, now) for spec in specs]
            if key is not None:
                await save_reply(tx, user, key, 201, {"jobs": [str(j.id) for j in created]})
        return [_with_warnings(j, now) for j in created]

    def _fingerprint(self, spec: JobSpec) -> dict[str, Any]:
        """A job as its idempotency key's request hash sees it (secrets by a keyed digest)."""
        body = jsonapi.spec_to_json(spec)
        if spec.env:
            body["env"] = sealing.fingerprint_env(spec, self.secret_key)
        return body

    async def _check_quotas(self, tx: Session, user: User, specs: list[JobSpec], now: datetime) -> None:
        """New jobs within the user's quotas: live jobs and planned fires per
        minute (422), and one-offs due within the minute as runs (429)."""
        timings = [spec.timing(anchor=now) for spec in specs]
        await limits.check_jobs(
            tx,
            user,
            self.quotas,
            new_live=len(specs),
            new_fires_per_minute=sum(schedule.fires_in_a_minute(t, now) for t in timings),
        )
        soon = now + limits.MINUTE
        one_offs = sum(
            1
            for spec, t in zip(specs, timings, strict=True)
            if spec.schedule is None and not waits_for_upstream(spec) and (spec.run_at or now) <= soon
        )
        await limits.check_runs(tx, user, self.quotas, adding=one_offs, now=now)

    async def _insert(self, tx: Session, user: User, spec: JobSpec, now: datetime) -> Job:
        job_id = uuid.uuid4()
        spec = sealing.seal_env(spec, self.secret_key, job_id)
        timing = spec.timing(anchor=now)
        first = _first_fire(spec, timing, now)
        row = await tx.fetch_one(
            "insert_job",
            rows.job_params(spec)
            | {
                "id": job_id,
                "owner_id": user.id,
                "shard_id": shard_for(job_id, self.shards),
                "status": "active" if first or waits_for_upstream(spec) else "completed",
                "fires_per_minute": schedule.fires_in_a_minute(timing, now),
            },
        )
        assert row is not None
        job = rows.job_from_row(row)
        await self._link_upstreams(tx, job)
        return await self._schedule(tx, job, first)

    async def get_job(self, user: User, job_id: str) -> Job:
        return rows.job_from_row(await self._job_row(user, job_id))

    async def list_jobs(
        self,
        user: User,
        status: str | None,
        limit: int | None,
        page_token: str | None,
        q: str | None = None,
        recent: int = 0,
        result: str | None = None,
    ) -> tuple[list[Job], str]:
        """A page of the user's jobs; ``q`` keeps names containing it, ``result``
        those whose latest ended run succeeded or failed (timed out and lost count as
        failed), ``recent`` adds each job's latest runs (a list's strip of outcomes)."""
        if status and status not in JOB_STATUSES:
            raise InvalidArgument(f"must be one of {', '.join(JOB_STATUSES)}", field="status")
        if result and result not in LAST_RESULTS:
            raise InvalidArgument(f"must be one of {', '.join(LAST_RESULTS)}", field="result")
        if not 0 <= recent <= MAX_RECENT_RUNS:
            raise InvalidArgument(f"must be 0-{MAX_RECENT_RUNS}", field="recent")
        q = query_text(q, "q")
        n = page_size(limit)
        after_created, after_id = _job_page(page_token) if page_token else (None, None)
        found = await self.db.fetch_all(
            "list_jobs",
            {
                "owner_id": user.id,
                "status": status or None,
                "q": q or None,
                "last_in": list(LAST_RESULTS[result]) if result else None,
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
        jobs = [rows.job_from_row(r) for r in found[:n]]
        if recent and jobs:
            jobs = await self._with_recent_runs(jobs, recent)
        return jobs, nxt

    async def _with_recent_runs(self, jobs: list[Job], per_job: int) -> list[Job]:
        runs: dict[uuid.UUID, list[RunBrief]] = {}
        for r in await self.db.fetch_all(
            "recent_runs_of_jobs", {"job_ids": [j.id for j in jobs], "per_job": per_job}
        ):
            runs.setdefault(r["job_id"], []).append(
                RunBrief(r["id"], r["status"], r["scheduled_at"], r["finished_at"], r["exit_code"])
            )
        return [dataclasses.replace(j, recent_runs=tuple(runs.get(j.id, ()))) for j in jobs]

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
            await tx.execute("lock_user", {"id": user.id})
            old = await self._lock(tx, user, job_id)
            spec = sealing.seal_env(build(old.spec), self.secret_key, old.id, stored=old.spec)
            await self._check_upstreams(tx, user, [spec], changing=old)
            # A new schedule or run_at revives a finished job.
            status = "active" if old.status == "completed" else old.status
            timing = spec.timing(anchor=old.created_at)
            rate = schedule.fires_in_a_minute(timing, now)
            if status == "active":
                revived = old.status == "completed" and (
                    _first_fire(spec, timing, now) is not None or waits_for_upstream(spec)
                )
                await limits.check_jobs(
                    tx,
                    user,
                    self.quotas,
                    new_live=int(revived),
                    new_fires_per_minute=rate,
                    except_ids=(old.id,),
                )
            row = await tx.fetch_one(
                "update_job",
                rows.job_params(spec)
                | {"id": old.id, "owner_id": user.id, "status": status, "fires_per_minute": rate},
            )
            assert row is not None
            job = rows.job_from_row(row)
            await self._link_upstreams(tx, job)
            await tx.execute("delete_schedule", {"job_id": old.id})
            on_workers: list[int] = []
            if dataclasses.replace(old.spec, name=spec.name, priority=spec.priority) != spec:
                # What or when it runs changed: runs claimed under the old spec are withdrawn.
                on_workers = await self._withdraw(tx, job, "withdrawn: the job changed")
            if status == "active":
                first = _first_fire(spec, job.timing, now)
                if first is None and not waits_for_upstream(spec):
                    job = await self._set_status(tx, job, "completed")
                else:
                    job = await self._schedule(tx, job, first)
        await self._until_withdrawn(on_workers)
        return _with_warnings(job, now)

    async def delete_job(self, user: User, job_id: str, cancel_running: bool = False) -> None:
        """No further fires; runs not started are cancelled, running ones too
        with ``cancel_running`` (else they finish). History is kept."""
        async with self.db.transaction() as tx:
            job = await self._lock(tx, user, job_id)
            await self._set_status(tx, job, "deleted")
            await tx.execute("delete_schedule", {"job_id": job.id})
            on_workers = await self._withdraw(tx, job, "withdrawn: the job was deleted", cancel_running)
        await self._until_withdrawn(on_workers)

    async def pause_job(self, user: User, job_id: str) -> Job:
        """No fire starts after this returns: claimed ones are withdrawn."""
        async with self.db.transaction() as tx:
            job = await self._lock(tx, user, job_id)
            if job.status != "active":
                raise Conflict(f"job is {job.status}, not active", field="status")
            await tx.execute("delete_schedule", {"job_id": job.id})
            on_workers = await self._withdraw(tx, job, "withdrawn: the job was paused")
            paused = await self._set_status(tx, job, "paused")
        await self._until_withdrawn(on_workers)
        return paused

    @staticmethod
    async def _withdraw(tx: Session, job: Job, why: str, running: bool = False) -> list[int]:
        """Stop the job's runs that have not started (and running ones, if asked);
        return those a worker holds, which its scheduler now tells it to drop."""
        found = await tx.fetch_all("withdraw_job_runs", {"job_id": job.id, "why": why, "running": running})
        for shard in {r["shard_id"] for r in found if r["worker_id"]}:
            await tx.execute("notify_cancel", {"shard_id": shard})
        return [r["id"] for r in found if r["worker_id"] and r["status"] == "scheduled"]

    async def _until_withdrawn(self, ids: list[int]) -> None:
        """Wait (a little) until the workers holding ``ids`` have dropped them, so
        that none starts after the change is acknowledged. A run that started
        meanwhile started before the reply; a worker cut off is fenced by its own
        rules (its runs die within CRONFLEET_SELF_FENCE_SECONDS)."""
        deadline = time.monotonic() + WITHDRAW_WAIT
        while ids and time.monotonic() < deadline:
            row = await self.db.fetch_one("count_still_scheduled", {"ids": ids})
            if row is None or row["n"] == 0:
                return
            await asyncio.sleep(0.02)

    async def resume_job(self, user: User, job_id: str) -> Job:
        """Fires missed while paused run by the job's misfire policy: one late
        run (run_once), each of them (run_all), or none (skip)."""
        now = datetime.now(UTC)
        async with self.db.transaction() as tx:
            await tx.execute("lock_user", {"id": user.id})
            job = await self._lock(tx, user, job_id)
            if job.status != "paused":
                raise Conflict(f"job is {job.status}, not paused", field="status")
            await limits.check_jobs(
                tx,
                user,
                self.quotas,
                new_live=0,
                new_fires_per_minute=schedule.fires_in_a_minute(job.timing, now),
                except_ids=(job.id,),
            )
            first = self._resume_at(job, now)
            waiting = waits_for_upstream(job.spec)
            job = await self._set_status(tx, job, "active" if first or waiting else "completed")
            return await self._schedule(tx, job, first)

    def _resume_at(self, job: Job, now: datetime) -> datetime | None:
        """Where a resumed job's schedule starts: at a fire missed while paused
        (the claim then applies the misfire policy to it), or the next one."""
        timing, policy, since = job.timing, job.spec.misfire_policy, job.paused_at
        if timing.schedule is None or since is None or policy == "skip":
            return _first_fire(job.spec, timing, now)
        if policy == "run_all":
            since = max(since, now - self.misfire_catchup)
        return schedule.first_fire_missed(timing, since, now) or schedule.first_fire(timing, now)

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


def _job_page(token: str) -> tuple[datetime, uuid.UUID]:
    """Where a job list goes on: after (created_at, id)."""
    created, job_id = decode_page_token(token, (str, str))
    try:
        return page_time(created), uuid.UUID(job_id)
    except ValueError as exc:
        raise InvalidArgument("is not a token this server issued", field="page_token") from exc


def _first_fire(spec: JobSpec, timing: schedule.Timing, now: datetime) -> datetime | None:
    return None if waits_for_upstream(spec) else schedule.first_fire(timing, now)


def _with_warnings(job: Job, now: datetime) -> Job:
    return dataclasses.replace(job, warnings=preview.warnings_for(job.spec.schedule, job.spec.timezone, now))
