"""The windowed next fire, as the gateway, the claim and the preview see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cronfleet import schedule
from cronfleet.schedule import Timing

NOW = datetime(2026, 11, 23, 12, 0, 0, 500000, tzinfo=UTC)


def test_upcoming_fires_of_noon_in_tokyo() -> None:
    noon = Timing("0 0 12 * * ?", "Asia/Tokyo")
    fires = schedule.upcoming(noon, NOW, 3)
    assert [f.isoformat() for f in fires] == [
        "2026-11-24T03:00:00+00:00",
        "2026-11-25T03:00:00+00:00",
        "2026-11-26T03:00:00+00:00",
    ]


def test_a_window_ends_the_fires() -> None:
    every_day = Timing("@daily", end_at=datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert len(schedule.upcoming(every_day, NOW, 10)) == 2


def test_every_counts_from_its_anchor() -> None:
    anchor = datetime(2026, 11, 23, 11, 59, 50, tzinfo=UTC)
    timing = Timing("@every 15s", anchor=anchor)
    assert schedule.next_fire(timing, NOW) == anchor + timedelta(seconds=15)
    assert schedule.first_fire(Timing("@every 15s"), NOW) == NOW, "a new @every job fires at once"


def test_a_one_off_fires_once() -> None:
    later = NOW + timedelta(hours=1)
    assert schedule.first_fire(Timing(run_at=later), NOW) == later
    assert schedule.first_fire(Timing(), NOW) == NOW
    assert schedule.next_fire(Timing(run_at=later), later) is None


def test_a_one_off_whose_time_passed_before_it_was_stored_keeps_its_time() -> None:
    """It runs at once, late, as the fire it was asked for (not as a new one now)."""
    passed = NOW - timedelta(seconds=3)
    assert schedule.first_fire(Timing(run_at=passed), NOW) == passed


def test_a_one_off_runs_however_late_under_every_policy() -> None:
    """The claim decides a one-off's fire without reading its job (ONE_OFF_FIRE)."""
    for policy in ("run_once", "run_all", "skip"):
        for late in (timedelta(0), timedelta(seconds=30), timedelta(days=3)):
            for run_once in (False, True):
                timing = Timing(run_at=NOW - late)
                fire = schedule.claim_fire(timing, NOW - late, NOW, policy=policy, run_once=run_once)
                assert fire == schedule.ONE_OFF_FIRE, (policy, late, run_once)


def test_a_fire_late_within_the_grace_just_runs_late() -> None:
    every_second = Timing("* * * * * *")
    late = NOW.replace(microsecond=0) - timedelta(seconds=5)
    for policy in ("run_once", "run_all", "skip"):
        fire = schedule.claim_fire(every_second, late, NOW, policy=policy)
        assert fire == schedule.ClaimedFire(late + timedelta(seconds=1)), policy


def test_a_misfire_runs_once_by_default_and_the_schedule_moves_past_now() -> None:
    long_ago = NOW - timedelta(hours=1)
    fire = schedule.claim_fire(Timing("* * * * * *"), long_ago, NOW)
    assert fire.run and fire.misfired
    assert fire.next_run_at is not None and NOW < fire.next_run_at <= NOW + timedelta(seconds=1)


def test_run_all_catches_up_each_missed_fire_within_the_window() -> None:
    every_minute = Timing("0 * * * * *")
    missed = NOW.replace(second=0, microsecond=0) - timedelta(hours=2)
    fire = schedule.claim_fire(every_minute, missed, NOW, policy="run_all")
    assert fire.run and fire.misfired and fire.next_run_at == missed + timedelta(minutes=1)
    too_old = schedule.claim_fire(every_minute, missed, NOW, policy="run_all", catchup=timedelta(hours=1))
    assert not too_old.run and "catch-up window" in too_old.note
    assert too_old.next_run_at == NOW.replace(second=0, microsecond=0) - timedelta(minutes=59)


def test_skip_records_the_miss_and_waits_for_the_next_fire() -> None:
    fire = schedule.claim_fire(Timing("0 * * * * *"), NOW - timedelta(hours=3), NOW, policy="skip")
    assert not fire.run and fire.misfired and fire.note == "missed by 3h; misfire_policy skip"
    assert fire.next_run_at is not None and fire.next_run_at > NOW


def test_a_run_once_job_retires_after_its_fire() -> None:
    assert schedule.claim_fire(Timing("0 * * * * *"), NOW, NOW, run_once=True).next_run_at is None


def test_the_first_missed_fire_since_a_pause() -> None:
    every_minute = Timing("0 * * * * *")
    assert schedule.first_fire_missed(every_minute, NOW - timedelta(minutes=5), NOW) == NOW.replace(
        second=0, microsecond=0
    ) - timedelta(minutes=4)
    assert schedule.first_fire_missed(every_minute, NOW - timedelta(seconds=0.4), NOW) is None
