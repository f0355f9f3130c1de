"""Claiming due fires: one transaction per batch, never one round trip per fire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cronfleet import schedule
from cronfleet.codec import rows
from cronfleet.db import Database, Row
from cronfleet.schedule import DEFAULT_MISFIRE_GRACE


@dataclass(order=True)
class QueuedRun:
    """An attempt claimed by this scheduler and not yet on a worker."""

    sort_key: tuple[int, datetime, int]
    execution_id: int
    job_id: Any
    scheduled_at: datetime
    attempt: int
    fire_at: datetime
    job: Row


def _queued(row: Row, job: Row) -> QueuedRun:
    return QueuedRun(
        sort_key=(-row["priority"], row["run_at"], row["id"]),
        execution_id=row["id"],
        job_id=row["job_id"],
        scheduled_at=row["scheduled_at"],
        attempt=row["attempt"],
        fire_at=row["run_at"],
        job=job,
    )


def next_fire_after_claim(
    row: Row, now: datetime, misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE
) -> datetime | None:
    """Where a claimed job's schedule row moves to (see schedule.fire_after_claim)."""
    return schedule.fire_after_claim(rows.timing_from_row(row), row["next_run_at"], now, misfire_grace)


async def claim_due_fires(
    db: Database,
    *,
    scheduler_id: str,
    epoch: int,
    horizon: datetime,
    batch: int,
    misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE,
) -> tuple[list[QueuedRun], list[Row]]:
    """Claim up to ``batch`` fires due by ``horizon`` on this scheduler's shards.

    Returns the runs to dispatch and the rows of "replace" jobs whose older
    runs must now be cancelled.
    """
    now = datetime.now(UTC)
    async with db.transaction() as tx:
        due = await tx.fetch_all(
            "select_due_fires",
            {"scheduler_id": scheduler_id, "epoch": epoch, "horizon": horizon, "batch": batch},
        )
        if not due:
            return [], []
        nexts = [next_fire_after_claim(r, now, misfire_grace) for r in due]
        inserted = await tx.fetch_all(
            "record_fires",
            {
                "job_ids": [r["job_id"] for r in due],
                "scheduled": [r["next_run_at"] for r in due],
                "next": nexts,
                "scheduler_id": scheduler_id,
            },
        )
        replaced: list[Row] = []
        replacing = [r for r in due if r["concurrency_policy"] == "replace"]
        if replacing:
            replaced = await tx.fetch_all(
                "replace_running",
                {
                    "job_ids": [r["job_id"] for r in replacing],
                    "scheduled": [r["next_run_at"] for r in replacing],
                },
            )
    jobs = {r["job_id"]: r for r in due}
    runs = [_queued(row, jobs[row["job_id"]]) for row in inserted if row["status"] == "scheduled"]
    return runs, replaced


async def claim_pending(
    db: Database,
    *,
    scheduler_id: str,
    epoch: int,
    horizon: datetime,
    batch: int,
    queued: list[int],
) -> list[QueuedRun]:
    """Attempts already recorded but on no worker: retries, manual runs, orphans."""
    rows = await db.fetch_all(
        "select_pending",
        {"scheduler_id": scheduler_id, "epoch": epoch, "horizon": horizon, "batch": batch, "queued": queued},
    )
    if not rows:
        return []
    jobs = {
        j["id"]: j for j in await db.fetch_all("job_payloads", {"ids": list({r["job_id"] for r in rows})})
    }
    return [_queued(r, jobs[r["job_id"]]) for r in rows if r["job_id"] in jobs]
