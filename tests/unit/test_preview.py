"""Schedule preview: its fires equal a brute-force walk of the clock; the
schedule in words; warnings that do not block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronfleet.errors import InvalidSpec
from cronfleet.preview import preview
from tests.unit.test_cron import NEAR, ZONES, expressions, reference_next

NOW = datetime(2026, 11, 23, 12, 0, 0, 500000, tzinfo=UTC)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions(), tz_name=st.sampled_from(ZONES), base=st.sampled_from(NEAR))
def test_preview_equals_a_brute_force_walk(
    expr: tuple[str, list[set[int]], list[bool]], tz_name: str, base: datetime
) -> None:
    text, sets, star = expr
    tz = ZoneInfo(tz_name)
    expected: list[datetime] = []
    after = base
    while len(expected) < 3:
        found = reference_next(sets, star, after, tz, timedelta(days=3))
        if found is None:
            break
        expected.append(found)
        after = found
    try:
        got = preview(text, tz_name, base, 3)
    except InvalidSpec:
        assert not expected, (text, "rejected but fires at", expected)
        return
    assert list(got.next[: len(expected)]) == expected, (text, tz_name, base)


def test_noon_in_tokyo_in_words_and_times() -> None:
    p = preview("0 0 12 * * ?", "Asia/Tokyo", NOW, 2)
    assert p.description == "At 12:00"
    assert [t.isoformat() for t in p.next] == ["2026-11-24T03:00:00+00:00", "2026-11-25T03:00:00+00:00"]
    assert p.warnings == ()


def test_a_schedule_that_never_fires_is_a_warning_here() -> None:
    p = preview("0 0 30 2 *", "UTC", NOW)
    assert p.next == () and p.warnings == ("never fires: '0 0 30 2 *' names no date that exists",)


def test_both_day_fields_and_every_second_are_called_out() -> None:
    assert "either fires" in preview("0 0 12 13 * FRI", "UTC", NOW).warnings[0]
    assert "every second" in preview("* * * * * *", "UTC", NOW).warnings[0]


def test_daylight_saving_changes_in_the_coming_year_are_named() -> None:
    gap = preview("0 30 2 * * *", "America/New_York", NOW).warnings
    assert gap == (
        "2027-03-14 02:00-03:00 does not exist in America/New_York (clocks jump forward): "
        "fires in it run once, at 03:00",
    )
    overlap = preview("0 30 1 * * *", "America/New_York", NOW).warnings
    assert overlap and "happens twice" in overlap[0] and overlap[0].startswith("2027-11-07 01:00-02:00")
    assert preview("0 30 12 * * *", "America/New_York", NOW).warnings == (), "noon is never moved"


def test_every_intervals_are_described_and_anchored_at_after() -> None:
    p = preview("@every 90m", "UTC", NOW, 2)
    assert p.description == "Every 1 hour 30 minutes"
    assert p.next == (NOW + timedelta(minutes=90), NOW + timedelta(minutes=180))
