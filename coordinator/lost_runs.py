"""Runs held by workers that are no longer members are lost: marked so, and
retried or dead-lettered by the job's policy (cronfleet.outcomes), in one
fenced transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from coordinator.fencing import fenced_transaction
from cronfleet import metrics, outcomes
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
        decisions = await outcomes.settle(tx, lost, retry_backoff_seconds, datetime.now(UTC))
    retried = sum(1 for d in decisions if d.retry_at is not None)
    metrics.RUNS_LOST.inc(len(lost))
    log.warning("runs_lost", count=len(lost), retried=retried, epoch=epoch)
    return len(lost)
