"""Figures for people: a user's totals, or one job's, over the last hour and day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cronfleet.models import EXECUTION_STATUSES
from cronfleet.records import RunsInMinute, Stats, User
from gateway.service.jobs import Jobs

# Ended runs that count against the success rate (cancelled and skipped do not).
ENDED = ("succeeded", "failed", "timed_out", "lost")
PERCENTILES = ("p50", "p95", "p99")


class StatsArea(Jobs):
    async def stats(self, user: User, job_id: str | None = None) -> Stats:
        """One query (``stats``); a job's figures if ``job_id`` (which must be the user's)."""
        job = await self.get_job(user, job_id) if job_id else None
        now = datetime.now(UTC)  # not rounded: a run due this second counts
        async with self.db.transaction() as tx:
            # Two sorts of up to a day of runs: in memory, not spilled to disk.
            await tx.execute("stats_work_mem", {})
            row = await tx.fetch_one(
                "stats", {"owner_id": user.id, "job_id": job.id if job else None, "now": now}
            )
        assert row is not None  # an aggregate always answers
        windows = {
            window: {s: row[f"{prefix}_{s}"] for s in EXECUTION_STATUSES if row[f"{prefix}_{s}"]}
            for window, prefix in (("last_hour", "hour"), ("last_day", "day"))
        }
        day = windows["last_day"]
        return Stats(
            runs=sum(day.values()),
            succeeded=day.get("succeeded", 0),
            failed=day.get("failed", 0),
            success_rate=_success_rate(day),
            duration_ms=_spread(row["duration"], row["duration_max"]),
            lateness_ms=_spread(row["lateness"], row["lateness_max"]),
            last=tuple(row["last"]),
            success_rate_last_hour=_success_rate(windows["last_hour"]),
            jobs=dict(row["jobs"]),
            executions=windows,
            runs_per_minute=_per_minute(dict(row["per_minute"]), now),
        )


def _success_rate(counts: dict[str, int]) -> float | None:
    ended = sum(counts.get(s, 0) for s in ENDED)
    return round(counts.get("succeeded", 0) / ended, 4) if ended else None


def _spread(percentiles: list[float] | None, most: float | None) -> dict[str, float | None]:
    values = [round(v, 2) for v in percentiles] if percentiles else [None] * len(PERCENTILES)
    return dict(zip(PERCENTILES, values, strict=True)) | {"max": round(most, 2) if most is not None else None}


def _per_minute(started: dict[str, int], now: datetime) -> tuple[RunsInMinute, ...]:
    """Sixty minutes, oldest first, the current one last; a minute with no run is 0."""
    this_minute = now.replace(second=0, microsecond=0)
    minutes = [this_minute - timedelta(minutes=i) for i in range(59, -1, -1)]
    return tuple(RunsInMinute(m, int(started.get(str(int(m.timestamp())), 0))) for m in minutes)
