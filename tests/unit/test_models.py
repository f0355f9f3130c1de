from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cronfleet import schedule
from cronfleet.codec.jsonapi import changes_from_json, spec_from_json
from cronfleet.errors import InvalidArgument, InvalidSpec
from cronfleet.models import JobSpec

NOW = datetime(2026, 11, 22, 10, 0, 0, 500000, tzinfo=UTC)


def spec(**fields: object) -> JobSpec:
    return spec_from_json({"name": "j", "command": "true", **fields})


def first_fire(s: JobSpec) -> datetime | None:
    return schedule.first_fire(s.timing(), NOW)


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"name": ""}, "name", InvalidSpec),
        ({"command": None}, "command", InvalidSpec),
        ({"steps": [{"name": "a", "run": "x"}]}, "command", InvalidSpec),
        ({"schedule": "61 * * * * *"}, "schedule", InvalidSpec),
        ({"timezone": "Nowhere/Special"}, "timezone", InvalidSpec),
        ({"priority": 10}, "priority", InvalidSpec),
        ({"priority": "high"}, "priority", InvalidArgument),
        ({"max_retries": -1}, "max_retries", InvalidSpec),
        ({"timeout_seconds": 0}, "timeout_seconds", InvalidSpec),
        ({"concurrency_policy": "sometimes"}, "concurrency_policy", InvalidSpec),
        ({"concurrency_policy": "forbid", "max_concurrency": 2}, "max_concurrency", InvalidSpec),
        ({"env": {"1BAD": "x"}}, "env", InvalidSpec),
        ({"run_at": "tomorrow"}, "run_at", InvalidArgument),
        ({"run_at": "2026-11-22T10:00:00"}, "run_at", InvalidArgument),
        (
            {"schedule": "* * * * *", "start_at": "2027-01-01T00:00:00Z", "end_at": "2026-01-01T00:00:00Z"},
            "end_at",
            InvalidSpec,
        ),
        ({"start_at": "2027-01-01T00:00:00Z"}, "start_at", InvalidSpec),
        ({"surprise": 1}, "surprise", InvalidArgument),
        ({"resources": {"gpus": 1}}, "resources.gpus", InvalidArgument),
        ({"retry": {"backoff_seconds": -1}}, "retry.backoff_seconds", InvalidSpec),
        ({"retry": {"jitter": 1.5}}, "retry.jitter", InvalidSpec),
        ({"retry": {"multiplier": 0.5}}, "retry.multiplier", InvalidSpec),
        (
            {"retry": {"backoff_seconds": 10, "max_backoff_seconds": 5}},
            "retry.max_backoff_seconds",
            InvalidSpec,
        ),
        ({"retry": {"on": ["failed", "sometimes"]}}, "retry.on[1]", InvalidSpec),
        ({"retry": {"never_exit_codes": [300]}}, "retry.never_exit_codes[0]", InvalidSpec),
        ({"retry": {"colour": "red"}}, "retry.colour", InvalidArgument),
        ({"misfire_policy": "maybe"}, "misfire_policy", InvalidSpec),
        ({"delivery": "exactly_once"}, "delivery", InvalidSpec),
        ({"after": [{"job_id": "not-a-job"}]}, "after[0].job_id", InvalidSpec),
        (
            {"after": [{"job_id": "7d3c1d8e-1111-4111-8111-111111111111", "on": "later"}]},
            "after[0].on",
            InvalidSpec,
        ),
        ({"http": {"url": "ftp://example.com/"}}, "command", InvalidSpec),
        ({"command": None, "http": {"url": "ftp://example.com/"}}, "http.url", InvalidSpec),
        (
            {"command": None, "http": {"url": "https://example.com/", "method": "BREW"}},
            "http.method",
            InvalidSpec,
        ),
        (
            {"command": None, "http": {"url": "https://a.example/", "expect_status": [99]}},
            "http.expect_status[0]",
            InvalidSpec,
        ),
        ({"run_once": "yes"}, "run_once", InvalidArgument),
    ],
)
def test_bad_input_names_the_field(fields: dict[str, object], field: str, error: type[Exception]) -> None:
    with pytest.raises(error) as err:
        spec(**fields).validate()
    assert err.value.field == field  # type: ignore[attr-defined]


def test_steps_job_is_valid_without_command() -> None:
    spec_from_json({"name": "b", "steps": [{"name": "a", "run": "echo a"}]}).validate()


def test_duplicate_step_names_are_rejected() -> None:
    s = spec_from_json({"name": "b", "steps": [{"name": "a", "run": "x"}, {"name": "a", "run": "y"}]})
    with pytest.raises(InvalidSpec, match="duplicate step name"):
        s.validate()


def test_first_fire_of_immediate_and_future_one_offs() -> None:
    assert first_fire(spec()) == NOW
    later = datetime(2026, 12, 1, tzinfo=UTC)
    assert first_fire(spec(run_at=later.isoformat())) == later


def test_first_fire_of_noon_job_in_its_timezone() -> None:
    s = spec(schedule="0 0 12 * * ?", timezone="America/New_York")
    assert first_fire(s) == datetime(2026, 11, 22, 17, 0, tzinfo=UTC)


def test_first_fire_respects_window() -> None:
    s = spec(schedule="0 * * * * *", start_at="2026-12-01T00:00:00Z", end_at="2026-12-02T00:00:00Z")
    assert first_fire(s) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    over = spec(schedule="0 * * * * *", start_at="2026-01-01T00:00:00Z", end_at="2026-01-02T00:00:00Z")
    assert first_fire(over) is None


def test_patch_replaces_only_named_fields() -> None:
    s = spec(schedule="*/5 * * * * *", priority=7)
    changed = s.with_changes(changes_from_json({"priority": 2}))
    assert changed.priority == 2 and changed.schedule == "*/5 * * * * *"
    cleared = s.with_changes(changes_from_json({"schedule": None}))
    assert cleared.schedule is None
