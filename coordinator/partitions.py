"""Day partitions of ``schedule`` and ``executions``, kept a week ahead."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from coordinator.fencing import fenced_transaction
from cronfleet.db import Database

log = structlog.get_logger()
DAYS_AHEAD = 7
PARTITIONED_TABLES = ("schedule", "executions")


async def ensure_partitions(db: Database, epoch: int, now: datetime) -> int:
    """Create yesterday's through ``DAYS_AHEAD`` days' partitions where missing."""
    created = 0
    for table in PARTITIONED_TABLES:
        for offset in range(-1, DAYS_AHEAD + 1):
            day = (now + timedelta(days=offset)).date()
            # One transaction each: creating a partition locks its table.
            async with fenced_transaction(db, epoch) as tx:
                row = await tx.fetch_one("ensure_day_partition", {"table": table, "day": day})
            created += bool(row and row["created"])
    if created:
        log.info("partitions_created", count=created, epoch=epoch)
    return created
