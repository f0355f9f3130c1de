"""GET /stats and GET /jobs/{id}/stats against hand-counted executions."""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cronfleet.codec import jsonapi
from cronfleet.errors import NotFound
from cronfleet.models import Job
from cronfleet.records import User
from gateway.service import JobsService
from tests.helpers import job_spec, new_user

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now_is_when_the_test_starts() -> None:
    """The runs are placed around the start of each test, not of the module's
    import: a long suite passed the not-yet-due run's ten minutes before."""
    global NOW
    NOW = datetime.now(UTC)


def add_runs(url: str, job: Job, runs: list[tuple[timedelta, str, float | None, float | None]]) -> None:
    """Executions of ``job`` due ``ago``, with a status, lateness (ms) and duration (s)."""
    with psycopg.connect(url) as conn:
        for i, (ago, status, late, duration) in enumerate(runs):
            due = NOW - ago
            started = due + timedelta(milliseconds=late) if late is not None else None
            ended = started + timedelta(seconds=duration) if started and duration is not None else None
            conn.execute(
                "INSERT INTO executions (job_id, owner_id, shard_id, scheduled_at, attempt, run_at, status,"
                " started_at, finished_at, lateness_ms) VALUES (%s, %s, 0, %s, %s, %s, %s, %s, %s, %s)",
                (job.id, job.owner_id, due, i + 1, due, status, started, ended, late),
            )


def pct(values: list[float], p: float) -> float:
    """Postgres's percentile_cont: linear between the two nearest ranks."""
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@pytest.fixture
async def jobs(service: JobsService, user: User, database_url: str) -> dict[str, Job]:
    far = {"schedule": "0 0 0 1 1 ? 2099"}  # never due in the test: no fire of its own
    a, b, paused = await service.create_jobs(user, [job_spec(name=n, **far) for n in ("a", "b", "paused")])
    await service.pause_job(user, str(paused.id))
    minutes = timedelta(minutes=1)
    add_runs(
        database_url,
        a,
        [
            (30 * minutes, "succeeded", 10.0, 1.0),
            (20 * minutes, "succeeded", 20.0, 2.0),
            (10 * minutes, "succeeded", 30.0, 3.0),
            (5 * minutes, "failed", 40.0, 4.0),
            (300 * minutes, "failed", 50.0, 5.0),
            (310 * minutes, "failed", 60.0, 6.0),
            (320 * minutes, "timed_out", 70.0, 7.0),
            (2 * 1440 * minutes, "succeeded", 1.0, 1.0),  # two days ago: outside
            (-10 * minutes, "scheduled", None, None),  # not due yet: outside
        ],
    )
    add_runs(
        database_url, b, [(15 * minutes, "cancelled", None, None), (16 * minutes, "skipped", None, None)]
    )
    other = await new_user(service, "bob")
    (theirs,) = await service.create_jobs(other, [job_spec(name="theirs", **far)])
    add_runs(database_url, theirs, [(5 * minutes, "succeeded", 1.0, 1.0)])
    return {"a": a, "b": b, "theirs": theirs}


async def test_a_users_stats_count_their_own_last_hour_and_day(
    service: JobsService, user: User, jobs: dict[str, Job]
) -> None:
    s = await service.stats(user)
    assert s.jobs == {"active": 2, "paused": 1}
    assert s.executions["last_hour"] == {"succeeded": 3, "failed": 1, "cancelled": 1, "skipped": 1}
    assert s.executions["last_day"] == {
        "succeeded": 3,
        "failed": 3,
        "timed_out": 1,
        "cancelled": 1,
        "skipped": 1,
    }
    assert (s.runs, s.succeeded, s.failed) == (9, 3, 3)
    assert (s.success_rate, s.success_rate_last_hour) == (round(3 / 7, 4), 0.75)
    assert s.last == (
        "failed",
        "succeeded",
        "cancelled",
        "skipped",
        "succeeded",
        "succeeded",
        "failed",
        "failed",
        "timed_out",
        "succeeded",
    ), "newest first, the not-yet-due one left out"
    late = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    assert s.lateness_ms == {
        "p50": pct(late, 0.5),
        "p95": round(pct(late, 0.95), 2),
        "p99": round(pct(late, 0.99), 2),
        "max": 70.0,
    }
    durations = [1000.0 * d for d in range(1, 8)]
    assert s.duration_ms["p50"] == pytest.approx(statistics.median(durations))
    assert s.duration_ms["max"] == pytest.approx(7000.0) and isinstance(s.duration_ms["max"], float)
    assert len(s.runs_per_minute) == 60
    assert sum(m.runs for m in s.runs_per_minute) == 4, "started in the last hour"
    assert s.runs_per_minute[-1].minute == NOW.replace(second=0, microsecond=0) or (
        s.runs_per_minute[-1].minute > NOW.replace(second=0, microsecond=0)  # the minute turned meanwhile
    )


async def test_a_jobs_stats_are_its_own_and_only_its_owner_sees_them(
    service: JobsService, user: User, jobs: dict[str, Job]
) -> None:
    s = await service.stats(user, str(jobs["b"].id))
    assert s.jobs == {}
    assert s.executions["last_day"] == {"cancelled": 1, "skipped": 1}
    assert (s.success_rate, s.success_rate_last_hour) == (None, None), "nothing ended"
    assert s.lateness_ms == {"p50": None, "p95": None, "p99": None, "max": None}
    assert s.last == ("cancelled", "skipped")
    shape = jsonapi.stats_to_json(s)  # API.md's job stats, every key even when empty
    assert {"runs", "succeeded", "failed", "success_rate", "duration_ms", "lateness_ms", "last"} <= set(shape)
    assert shape["success_rate"] is None and shape["runs"] == 2
    with pytest.raises(NotFound):
        await service.stats(user, str(jobs["theirs"].id))
    with pytest.raises(NotFound):
        await service.stats(user, str(uuid.uuid4()))
