"""Runs held by workers that are no longer members are lost: marked so, and
run again elsewhere (cronfleet.outcomes: at least once, up to the
cluster's lost_reruns, none of the job's retries used), in one
fenced transaction."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime

import structlog

from coordinator.fencing import fenced_transaction
from cronfleet import metrics, outcomes
from cronfleet.db import Database

log = structlog.get_logger()
# A run assigned less than this long ago is not declared lost: its worker may
# not be in our view of the members yet.
LOST_GRACE_SECONDS = 5.0
# How often the leader looks for lost runs when the live workers stay the same.
LOST_SWEEP_EVERY = 5.0


class LostSince:
    """Workers whose lease ended less than ``margin`` seconds ago still count
    as live: a frozen worker's runs are killed by its watchdog first (within
    the lease plus this margin; worker.watchdog), so a run is never live
    twice. A new leader gives every worker the margin from its election."""

    def __init__(self, margin: float) -> None:
        self.margin = margin
        self.elected = time.monotonic()
        self.last_seen: dict[str, float] = {}

    def live(self, members: Iterable[str]) -> list[str] | None:
        """The workers to count as live now; None while nobody may be declared lost."""
        now = time.monotonic()
        for worker in members:
            self.last_seen[worker] = now
        if now - self.elected < self.margin:
            return None
        for worker, seen in list(self.last_seen.items()):
            if now - seen >= self.margin:
                del self.last_seen[worker]
        return sorted(self.last_seen)


class LostSweeps:
    """When the leader looks for lost runs: at once when the live workers
    change, again a grace later (for the runs assigned in the grace before
    the change), and every ``every`` seconds otherwise (a run assigned to a
    worker no leader saw). The look reads every live run (a NOT = ANY cannot
    be an index condition): every 0.25 s tick with 10,000 every-second jobs
    it took up to a sixth of Postgres's time."""

    def __init__(self, grace: float = LOST_GRACE_SECONDS, every: float = LOST_SWEEP_EVERY) -> None:
        self.grace = grace
        self.every = every
        self._swept_for: list[str] | None = None
        self._next = 0.0

    def due(self, live_workers: list[str]) -> bool:
        return live_workers != self._swept_for or time.monotonic() >= self._next

    def swept(self, live_workers: list[str]) -> None:
        """A look for ``live_workers`` went through."""
        changed = live_workers != self._swept_for
        self._swept_for = list(live_workers)
        self._next = time.monotonic() + (self.grace if changed else self.every)


async def declare_lost(
    db: Database, epoch: int, live_workers: list[str], retry_backoff_seconds: float, lost_reruns: int = 3
) -> int:
    """Mark the runs of workers not in ``live_workers`` lost and schedule
    their retries; return how many were lost."""
    async with fenced_transaction(db, epoch) as tx:
        lost = await tx.fetch_all(
            "mark_lost", {"live_workers": live_workers, "grace": LOST_GRACE_SECONDS, "epoch": epoch}
        )
        if not lost:
            return 0
        decisions = await outcomes.settle(tx, lost, retry_backoff_seconds, datetime.now(UTC), lost_reruns)
    retried = sum(1 for d in decisions if d.retry_at is not None)
    metrics.RUNS_LOST.inc(len(lost))
    log.warning("runs_lost", count=len(lost), retried=retried, epoch=epoch)
    return len(lost)
