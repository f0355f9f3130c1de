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


def test_a_claim_catches_up_briefly_missed_fires_one_by_one() -> None:
    every_second = Timing("* * * * * *")
    missed = NOW.replace(microsecond=0) - timedelta(seconds=5)
    assert schedule.fire_after_claim(every_second, missed, NOW) == missed + timedelta(seconds=1)


def test_a_claim_after_a_long_outage_moves_past_now() -> None:
    every_second = Timing("* * * * * *")
    long_ago = NOW - timedelta(hours=1)
    nxt = schedule.fire_after_claim(every_second, long_ago, NOW)
    assert nxt is not None and NOW < nxt <= NOW + timedelta(seconds=1)
