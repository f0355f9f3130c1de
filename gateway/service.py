"""What the public API does, whatever the transport (gRPC or HTTP).

Each method takes the authenticated user and plain values, and returns
records (``cronfleet.models``); gateway/grpc_api.py and gateway/http/ only
translate them with the codecs. Every write commits before the method returns.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import argon2

from cronfleet import schedule
from cronfleet.codec import rows
from cronfleet.db import Database, Session
from cronfleet.errors import Conflict, InvalidArgument, InvalidSpec, NotFound, Unauthenticated
from cronfleet.logstore import LogStore
from cronfleet.models import EXECUTION_STATUSES, JOB_STATUSES, Execution, Job, JobSpec, Resources, User
from cronfleet.shards import shard_for

_hasher = argon2.PasswordHasher()  # argon2id with the library's current defaults
MAX_PAGE = 500
FOLLOW_POLL_SECONDS = 0.5


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _page_token(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts, default=str).encode()).decode()


def _read_page_token(token: str) -> list[Any]:
    try:
        return list(json.loads(base64.urlsafe_b64decode(token.encode())))
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("is not a token this server issued", field="page_token") from exc


def _limit(limit: int | None) -> int:
    if limit is None or limit == 0:
        return 100
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"must be 1-{MAX_PAGE}", field="limit")
    return limit


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise NotFound(f"no such {field.removesuffix('_id')} {value!r}") from exc


def _exec_id(value: str) -> int:
    if not str(value).isdigit():
        raise NotFound(f"no such execution {value!r}")
    return int(value)


class JobsService:
    def __init__(
        self,
        db: Database,
        logs: LogStore,
        *,
        shards: int,
        token_ttl: timedelta,
        limits: Resources | None = None,
    ) -> None:
        self.db = db
        self.logs = logs
        self.shards = shards
        self.token_ttl = token_ttl
        self.limits = limits

    # ---------------------------------------------------------------- auth
    async def signup(self, name: str, email: str, password: str) -> User:
        name, email = (name or "").strip(), (email or "").strip().lower()
        if not name:
            raise InvalidArgument("is required", field="name")
        if "@" not in email or len(email) > 320:
            raise InvalidArgument("must be an email address", field="email")
        if len(password or "") < 8:
            raise InvalidArgument("must be at least 8 characters", field="password")
        try:
            row = await self.db.fetch_one(
                "create_user",
                {"id": uuid.uuid4(), "name": name, "email": email, "password_hash": _hasher.hash(password)},
            )
        except Conflict as exc:
            raise Conflict("an account with this email exists", field="email") from exc
        assert row is not None
        return rows.user_from_row(row)

    async def login(self, email: str, password: str) -> tuple[str, datetime]:
        row = await self.db.fetch_one("user_by_email", {"email": (email or "").strip().lower()})
        try:
            if row is None:
                raise argon2.exceptions.VerifyMismatchError
            _hasher.verify(row["password_hash"], password or "")
        except argon2.exceptions.VerificationError as exc:
            raise Unauthenticated("wrong email or password") from exc
        token = "cf_" + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + self.token_ttl
        await self.db.execute(
            "create_token",
            {"token_hash": token_hash(token), "user_id": row["id"], "expires_at": expires},
        )
        return token, expires

    async def authenticate(self, token: str | None) -> User:
        if not token:
            raise Unauthenticated("missing bearer token")
        row = await self.db.fetch_one("user_by_token", {"token_hash": token_hash(token)})
        if row is None:
            raise Unauthenticated("invalid, expired or revoked token")
        return rows.user_from_row(row)

    async def logout(self, token: str) -> None:
        await self.db.execute("revoke_token", {"token_hash": token_hash(token)})

    async def update_me(self, user: User, name: str | None, email: str | None, password: str | None) -> User:
        if name is not None and not name.strip():
            raise InvalidArgument("must not be empty", field="name")
        if email is not None and "@" not in email:
            raise InvalidArgument("must be an email address", field="email")
        if password is not None and len(password) < 8:
            raise InvalidArgument("must be at least 8 characters", field="password")
        try:
            row = await self.db.fetch_one(
                "update_user",
                {
                    "id": user.id,
                    "name": name.strip() if name else None,
                    "email": email.strip().lower() if email else None,
                    "password_hash": _hasher.hash(password) if password else None,
                },
            )
        except Conflict as exc:
            raise Conflict("an account with this email exists", field="email") from exc
        assert row is not None
        return rows.user_from_row(row)

    # ---------------------------------------------------------------- jobs
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
        row = await self.db.fetch_one("get_job", {"id": _uuid(job_id, "job_id"), "owner_id": user.id})
        if row is None:
            raise NotFound(f"no such job {job_id}")
        return rows.job_from_row(row)

    async def list_jobs(
        self, user: User, status: str | None, limit: int | None, page_token: str | None
    ) -> tuple[list[Job], str]:
        if status and status not in JOB_STATUSES:
            raise InvalidArgument(f"must be one of {', '.join(JOB_STATUSES)}", field="status")
        n = _limit(limit)
        after_created, after_id = _read_page_token(page_token) if page_token else (None, None)
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
            _page_token(found[n - 1]["created_at"].isoformat(), found[n - 1]["id"]) if len(found) > n else ""
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
            row = await tx.fetch_one(
                "insert_manual_execution",
                {
                    "job_id": job.id,
                    "owner_id": user.id,
                    "shard_id": job.shard_id,
                    "at": datetime.now(UTC),
                    "priority": job.spec.priority,
                },
            )
            await tx.execute("notify_due", {"shard_id": job.shard_id})
            assert row is not None
            return await self._with_link(rows.execution_from_row(row))

    async def _lock(self, tx: Session, user: User, job_id: str) -> Job:
        row = await tx.fetch_one("lock_job", {"id": _uuid(job_id, "job_id"), "owner_id": user.id})
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

    # ---------------------------------------------------------- executions
    async def list_executions(
        self,
        user: User,
        *,
        job_id: str | None = None,
        status: str | None = None,
        worker_id: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Execution], str]:
        if status and status not in EXECUTION_STATUSES:
            raise InvalidArgument(f"must be one of {', '.join(EXECUTION_STATUSES)}", field="status")
        if job_id:
            await self.get_job(user, job_id)  # 404 for a job that is not theirs
        n = _limit(limit)
        before = _read_page_token(page_token)[0] if page_token else None
        found = await self.db.fetch_all(
            "list_executions",
            {
                "owner_id": user.id,
                "job_id": job_id or None,
                "status": status or None,
                "worker_id": worker_id or None,
                "before_id": before,
                "limit": n + 1,
            },
        )
        nxt = _page_token(found[n - 1]["id"]) if len(found) > n else ""
        return [await self._with_link(rows.execution_from_row(r)) for r in found[:n]], nxt

    async def get_execution(self, user: User, execution_id: str) -> Execution:
        return await self._with_link(await self._execution(user, execution_id))

    async def _execution(self, user: User, execution_id: str) -> Execution:
        row = await self.db.fetch_one("get_execution", {"id": _exec_id(execution_id), "owner_id": user.id})
        if row is None:
            raise NotFound(f"no such execution {execution_id}")
        return rows.execution_from_row(row)

    async def _with_link(self, execution: Execution) -> Execution:
        """The execution as users see it: log_url is a link they can open."""
        if not execution.log_url:
            return execution
        link = await self.logs.link(self._log_key(execution), execution.id)
        return dataclasses.replace(execution, log_url=link)

    def _log_key(self, e: Execution) -> str:
        return self.logs.key_for(e.owner_id, e.job_id, e.id, e.attempt)

    async def execution_logs(self, user: User, execution_id: str) -> bytes:
        """The console output: all of it once finished, so far while running."""
        return await self._output(await self._execution(user, execution_id))

    async def follow_logs(self, user: User, execution_id: str) -> AsyncIterator[bytes]:
        """The output as it grows, until the run is over (``?follow=true``)."""
        execution = await self._execution(user, execution_id)  # a 404 before any byte is sent
        offset = 0
        while True:
            over = execution.finished  # checked before reading: the final log is stored first
            data = await self._output(execution)
            if len(data) > offset:
                yield data[offset:]
                offset = len(data)
            if over:
                return
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
            execution = await self._execution(user, execution_id)

    async def _output(self, execution: Execution) -> bytes:
        try:
            return await self.logs.read(self._log_key(execution))
        except NotFound:
            return b""  # nothing written yet

    async def cancel_execution(self, user: User, execution_id: str) -> Execution:
        async with self.db.transaction() as tx:
            row = await tx.fetch_one("cancel_execution", {"id": _exec_id(execution_id), "owner_id": user.id})
            if row is None:
                current = await tx.fetch_one(
                    "get_execution", {"id": _exec_id(execution_id), "owner_id": user.id}
                )
                if current is None:
                    raise NotFound(f"no such execution {execution_id}")
                raise Conflict(f"execution is already {current['status']}", field="status")
            await tx.execute("notify_cancel", {"shard_id": row["shard_id"]})
            return await self._with_link(rows.execution_from_row(row))
