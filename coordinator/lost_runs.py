"""Runs held by workers that are no longer members are lost: marked so, and
retried by the job's policy, in one fenced transaction."""

from __future__ import annotations

import structlog

from coordinator.fencing import fenced_transaction
from cronfleet.db import Database

log = structlog.get_logger()
# A run assigned less than this long ago is not declared lost: its worker may
# not be in our view of the members yet.
LOST_GRACE_SECONDS = 5.0


async def declare_lost(
    db: Database, epoch: int, live_workers: list[str], retry_backoff_seconds: float
) -> int:
    """Mark the runs of workers not in ``live_workers`` lost and schedule
    their retries; return how many were lost."""
    async with fenced_transaction(db, epoch) as tx:
        lost = await tx.fetch_all(
            "mark_lost", {"live_workers": live_workers, "grace": LOST_GRACE_SECONDS, "epoch": epoch}
        )
        if not lost:
            return 0
        ids = [r["id"] for r in lost]
        retried = await tx.fetch_all("schedule_retries", {"ids": ids, "backoff": retry_backoff_seconds})
    log.warning("runs_lost", count=len(ids), retried=len(retried), epoch=epoch)
    return len(ids)
