"""Claiming due fires: one transaction per batch, never one round trip per fire.

:func:`claim_due_fires` takes the schedule rows due on this scheduler's
shards (at its epoch), records one execution per fire and advances each
schedule; :func:`claim_pending` picks up attempts already recorded but on
no worker (retries, manual runs, what a dead scheduler had claimed).
scheduler.claim_loop runs both whenever woken, and then dispatches.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from cronfleet import alerts, metrics, schedule
from cronfleet.codec import rows
from cronfleet.db import Database, Row, Session
from cronfleet.schedule import DEFAULT_MISFIRE_CATCHUP, DEFAULT_MISFIRE_GRACE
from scheduler.dispatch import Candidate, QueuedRun
from scheduler.prepared import JobCache, PreparedJob, jobs_without_secrets, queued_run

log = structlog.get_logger()
UNLIMITED = 2147483647  # the claim statement's "no limit"
DEFAULT_PRIORITY = 5  # record_fires reads a NULL priority array as this


def decide_fires(
    due: list[Row], prepared: list[PreparedJob], now: datetime, grace: timedelta, catchup: timedelta
) -> list[schedule.ClaimedFire]:
    """What the claim does with each due row of select_due_fires (see
    schedule.claim_fire), ``prepared`` its job. Jobs that fire alike (the same
    schedule, window, fire time and misfire policy) are decided once a claim:
    10,000 every-second jobs are one decision, not 10,000."""
    decided: dict[tuple[Any, ...], schedule.ClaimedFire] = {}
    fires = []
    for row, job in zip(due, prepared, strict=True):
        cron_text = row["schedule"]
        if cron_text is None:
            fires.append(schedule.ONE_OFF_FIRE)  # runs however late, and the job is done
            continue
        anchor = row["created_at"] if schedule.counts_from_anchor(cron_text) else None
        key = (
            cron_text,
            row["timezone"],
            row["start_at"],
            row["end_at"],
            anchor,
            row["next_run_at"],
            job.misfire_policy,
            job.run_once,
        )
        fire = decided.get(key)
        if fire is None:
            fire = decided[key] = schedule.claim_fire(
                rows.timing_from_row(row),
                row["next_run_at"],
                now,
                policy=job.misfire_policy,
                run_once=job.run_once,
                grace=grace,
                catchup=catchup,
            )
        fires.append(fire)
    return fires


def _missed(inserted: list[Row], fires: dict[Any, schedule.ClaimedFire]) -> list[alerts.Event]:
    """The "missed" alert events of a claim: fires recorded skipped (by the
    misfire policy or a concurrency limit) and fires run late after a misfire;
    one per job (a run_all catch-up of a day of fires is one alert, not 86,400)."""
    events = []
    jobs = set()
    for row in inserted:
        fire = fires.get(row["job_id"])
        if row["job_id"] in jobs:
            continue
        if row["status"] == "skipped":
            detail = fire.note if fire and fire.note else "skipped: the job's concurrency limit was reached"
            events.append(alerts.Event(row["id"], "missed", detail))
            jobs.add(row["job_id"])
        elif fire is not None and fire.misfired:
            events.append(alerts.Event(row["id"], "missed", "claimed past the misfire grace; run late"))
            jobs.add(row["job_id"])
    return events


@dataclass(frozen=True)
class Claimed:
    """What one claim statement took: the runs to dispatch, those it recorded
    assigned already (with their worker), the older runs of "replace" jobs to
    stop, and how many due fires it handled (skipped ones too)."""

    runs: list[QueuedRun]
    replaced: list[Row]
    fires: int
    assigned: list[tuple[QueuedRun, str]] = field(default_factory=list)


ChooseWorkers = Callable[[list[Candidate | None]], list[str]]


def _candidate(row: Row, fire: schedule.ClaimedFire, job: PreparedJob) -> Candidate | None:
    if not fire.run:
        return None
    return Candidate(row["priority"], row["next_run_at"], job.fresh_container)


async def claim_due_fires(
    db: Database,
    *,
    scheduler_id: str,
    epoch: int,
    horizon: datetime,
    batch: int,
    misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE,
    misfire_catchup: timedelta = DEFAULT_MISFIRE_CATCHUP,
    user_quota: int = 0,
    jobs: JobCache = jobs_without_secrets,
    choose_workers: ChooseWorkers | None = None,
) -> Claimed:
    """Claim up to ``batch`` fires due by ``horizon`` on this scheduler's shards.
    ``user_quota`` > 0: a fire that would take its owner past that many
    concurrent runs is recorded skipped (it does not wait, so it holds up
    nobody else's). ``choose_workers``: the fires it gives a worker are
    recorded assigned to it (``Claimed.assigned``), the rest are ``runs``."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    async with db.transaction() as tx:
        due = await tx.fetch_all(
            "select_due_fires",
            {"scheduler_id": scheduler_id, "epoch": epoch, "horizon": horizon, "batch": batch},
        )
        if not due:
            return Claimed([], [], 0)
        prepared = [jobs.get(r) for r in due]  # once a row: the decision, the worker and the run read it
        fires = decide_fires(due, prepared, now, misfire_grace, misfire_catchup)
        workers = (
            choose_workers([_candidate(r, f, p) for r, f, p in zip(due, fires, prepared, strict=True)])
            if choose_workers is not None
            else [""] * len(due)
        )
        inserted = await tx.fetch_all(
            "record_fires", record_fires_params(due, fires, workers, scheduler_id, user_quota)
        )
        await alerts.record(tx, _missed(inserted, dict(zip((r["id"] for r in due), fires, strict=True))))
        replaced = await _replace_older_runs(tx, due)
    _count(due, time.perf_counter() - started)
    return _claimed(inserted, due, prepared, replaced)


def record_fires_params(
    due: list[Row], fires: list[schedule.ClaimedFire], workers: list[str], scheduler_id: str, user_quota: int
) -> dict[str, Any]:
    """record_fires's arrays: one entry per due row (rows.sparse: NULL where all are the default)."""
    return {
        "job_ids": [r["id"] for r in due],
        "scheduled": [r["next_run_at"] for r in due],
        "next": rows.sparse([f.next_run_at for f in fires]),  # one-offs: none
        "runs": rows.sparse([f.run for f in fires], True),
        "triggers": rows.sparse(["misfire" if f.misfired else "schedule" for f in fires], "schedule"),
        "notes": rows.sparse([f.note or None for f in fires]),
        "workers": rows.sparse(workers, ""),
        # The job's own columns, as its locked row says (record_fires joins no jobs).
        "owners": [r["owner_id"] for r in due],
        "shards": [r["shard_id"] for r in due],
        "priorities": rows.sparse([r["priority"] for r in due], DEFAULT_PRIORITY),
        "max_live": rows.sparse([max_live_runs(r) for r in due], UNLIMITED),
        "scheduler_id": scheduler_id,
        "user_quota": user_quota if user_quota > 0 else UNLIMITED,
    }


def max_live_runs(job: Row) -> int:
    """How many runs of the job (a ``jobs`` row) may be live at once:
    "forbid" one, "allow" its max_concurrency if set, else (and "replace",
    which stops the older ones) no limit."""
    if job["concurrency_policy"] == "forbid":
        return 1
    if job["concurrency_policy"] == "allow" and job["max_concurrency"] is not None:
        return int(job["max_concurrency"])
    return UNLIMITED


async def _replace_older_runs(tx: Session, due: list[Row]) -> list[Row]:
    """concurrency_policy "replace": the older live runs of the jobs that fired, to stop."""
    replacing = [r for r in due if r["concurrency_policy"] == "replace"]
    if not replacing:
        return []
    return await tx.fetch_all(
        "replace_running",
        {"job_ids": [r["id"] for r in replacing], "scheduled": [r["next_run_at"] for r in replacing]},
    )


def _count(due: list[Row], seconds: float) -> None:
    metrics.CLAIM_DURATION.observe(seconds)
    metrics.CLAIM_BATCH.observe(len(due))
    for shard, n in collections.Counter(r["shard_id"] for r in due).items():
        metrics.FIRES_CLAIMED.labels(str(shard)).inc(n)


def _claimed(
    inserted: list[Row], due: list[Row], prepared: list[PreparedJob], replaced: list[Row]
) -> Claimed:
    """The executions a claim inserted to run: to the queue, or assigned already."""
    by_id = {r["id"]: (r, p) for r, p in zip(due, prepared, strict=True)}
    runs, assigned = [], []
    for row in inserted:
        if row["status"] == "scheduled":
            run = queued_run(row, *by_id[row["job_id"]])
            if row["worker_id"]:
                assigned.append((run, row["worker_id"]))
            else:
                runs.append(run)
    return Claimed(runs, replaced, len(due), assigned)


async def claim_pending(
    db: Database,
    *,
    scheduler_id: str,
    epoch: int,
    horizon: datetime,
    batch: int,
    queued: list[int],
    jobs: JobCache = jobs_without_secrets,
) -> list[QueuedRun]:
    """Attempts already recorded but on no worker: retries, manual runs, orphans."""
    pending = await db.fetch_all(
        "select_pending",
        {"scheduler_id": scheduler_id, "epoch": epoch, "horizon": horizon, "batch": batch, "queued": queued},
    )
    if not pending:
        return []
    ids = list({r["job_id"] for r in pending})
    found = {j["id"]: j for j in await db.fetch_all("jobs_by_id", {"ids": ids})}
    return [queued_run(r, found[j], jobs.get(found[j])) for r in pending if (j := r["job_id"]) in found]
