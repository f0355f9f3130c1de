"""Executions: list, read, the console output (whole or followed), cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from cronfleet.codec import rows
from cronfleet.errors import Conflict, InvalidArgument, LogRemoved, NotFound
from cronfleet.models import EXECUTION_STATUSES
from cronfleet.records import Execution, User
from gateway.service.base import (
    ServiceBase,
    encode_page_token,
    page_after_fire,
    page_size,
    parse_serial,
    query_text,
)

FOLLOW_POLL_SECONDS = 0.5


class Executions(ServiceBase):
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
        worker_id = query_text(worker_id, "worker_id")
        if job_id:
            await self._job_row(user, job_id)  # 404 for a job that is not theirs
        n = page_size(limit)
        before_at, before_id = page_after_fire(page_token) if page_token else (None, None)
        found = await self.db.fetch_all(
            "list_executions",
            {
                "owner_id": user.id,
                "job_id": job_id or None,
                "status": status or None,
                "worker_id": worker_id or None,
                "before_at": before_at,
                "before_id": before_id,
                "limit": n + 1,
            },
        )
        last = found[n - 1] if len(found) > n else None
        nxt = encode_page_token(last["scheduled_at"].isoformat(), last["id"]) if last else ""
        return [await self._with_link(rows.execution_from_row(r)) for r in found[:n]], nxt

    async def get_execution(self, user: User, execution_id: str) -> Execution:
        return await self._with_link(await self._execution(user, execution_id))

    async def _execution(self, user: User, execution_id: str) -> Execution:
        row = await self.db.fetch_one(
            "get_execution", {"id": parse_serial(execution_id, "execution"), "owner_id": user.id}
        )
        if row is None:
            raise NotFound(f"no such execution {execution_id}")
        return rows.execution_from_row(row)

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
        if execution.log_removed_at is not None:
            raise LogRemoved(
                f"the log of execution {execution.id} ({execution.log_bytes} bytes) was removed at "
                f"{execution.log_removed_at.isoformat()}: its owner's stored logs passed the "
                "log-bytes-kept quota, and the oldest are removed first",
                field="log_bytes_kept",
            )
        try:
            return await self.logs.read(self._log_key(execution))
        except NotFound:
            return b""  # nothing written yet

    async def cancel_execution(self, user: User, execution_id: str) -> Execution:
        async with self.db.transaction() as tx:
            row = await tx.fetch_one(
                "cancel_execution", {"id": parse_serial(execution_id, "execution"), "owner_id": user.id}
            )
            if row is None:
                current = await tx.fetch_one(
                    "get_execution", {"id": parse_serial(execution_id, "execution"), "owner_id": user.id}
                )
                if current is None:
                    raise NotFound(f"no such execution {execution_id}")
                raise Conflict(f"execution is already {current['status']}", field="status")
            await tx.execute("notify_cancel", {"shard_id": row["shard_id"]})
            return await self._with_link(rows.execution_from_row(row))
