"""What a claim tells record_fires of each fire's job (it joins no jobs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from cronfleet import schedule
from scheduler.claim import UNLIMITED, max_live_runs, record_fires_params


@pytest.mark.parametrize(
    ("policy", "max_concurrency", "expected"),
    [
        ("forbid", None, 1),
        ("forbid", 5, 1),
        ("allow", 3, 3),
        ("allow", None, UNLIMITED),
        ("allow", 0, 0),  # as the statement's coalesce read it
        ("replace", 4, UNLIMITED),  # the older runs are stopped instead
    ],
)
def test_the_live_runs_a_job_may_have(policy: str, max_concurrency: int | None, expected: int) -> None:
    assert max_live_runs({"concurrency_policy": policy, "max_concurrency": max_concurrency}) == expected


def _due(priority: int, policy: str = "allow", max_concurrency: int | None = None) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "owner_id": uuid.uuid4(),
        "shard_id": 3,
        "next_run_at": datetime(2026, 12, 6, tzinfo=UTC),
        "priority": priority,
        "concurrency_policy": policy,
        "max_concurrency": max_concurrency,
    }


def test_defaults_go_as_null_arrays_and_the_rest_fire_by_fire() -> None:
    plain = [_due(5), _due(5)]
    params = record_fires_params(plain, [schedule.ONE_OFF_FIRE] * 2, ["", ""], "s1", 0)
    assert params["owners"] == [r["owner_id"] for r in plain] and params["shards"] == [3, 3]
    assert params["priorities"] is None and params["max_live"] is None  # read as 5 and no limit

    mixed = [_due(5), _due(9, "forbid")]
    params = record_fires_params(mixed, [schedule.ONE_OFF_FIRE] * 2, ["", ""], "s1", 0)
    assert params["priorities"] == [5, 9] and params["max_live"] == [UNLIMITED, 1]
