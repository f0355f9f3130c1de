"""Claiming due fires: one transaction per batch, never one round trip per fire."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cronfleet.db import Database, Row
from cronfleet.models import JobSpec

MISFIRE_GRACE = timedelta(seconds=60)


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
    row: Row, now: datetime, misfire_grace: timedelta = MISFIRE_GRACE
) -> datetime | None:
    """Where a claimed job's schedule row moves to.

    One-off jobs retire. A recurring job that fell behind (a scheduler died,
    the cluster was down) runs every fire it missed within ``misfire_grace``,
    each late, one per claim; a fire missed longer ago than that runs once
    and the schedule moves past now, so a long outage ends in one late run,
    not a flood.
    """
    if row["schedule"] is None:
        return None
    after = row["next_run_at"]
    if after < now - misfire_grace:
        after = now  # a long outage: this one late run stands for every fire missed
    anchor = row["start_at"] or row["created_at"]
    if not row["schedule"].lstrip().lower().startswith("@every"):
        anchor = None  # only @every depends on it; dropping it lets the memo below hit
    return _next_fire(row["schedule"], row["timezone"], row["start_at"], row["end_at"], after, anchor)


@functools.lru_cache(maxsize=8192)
def _next_fire(
    schedule: str,
    timezone: str,
    start_at: datetime | None,
    end_at: datetime | None,
    after: datetime,
    anchor: datetime | None,
) -> datetime | None:
    """Memoised: a batch often holds many jobs with one schedule due at one time."""
    spec = JobSpec(
        name="-", command="-", schedule=schedule, timezone=timezone, start_at=start_at, end_at=end_at
    )
    return spec.next_fire(after=after, anchor=anchor or after)


async def claim_due_fires(
    db: Database,
    *,
    scheduler_id: str,
    epoch: int,
    horizon: datetime,
    batch: int,
    misfire_grace: timedelta = MISFIRE_GRACE,
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
