"""Cron parsing and next-fire computation, including DST, against a
brute-force reference that walks the clock minute by minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronfleet import cron
from cronfleet.errors import InvalidSpec

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def nxt(expr: str, after: datetime = T0, tz: str = "UTC") -> datetime | None:
    return cron.parse(expr).next_after(after, ZoneInfo(tz))


@pytest.mark.parametrize(
    ("expr", "tz", "expected"),
    [
        ("0 0 12 * * ?", "UTC", datetime(2026, 11, 22, 12, 0, tzinfo=UTC)),
        ("0 0 12 * * ?", "Asia/Tokyo", datetime(2026, 11, 23, 3, 0, tzinfo=UTC)),
        ("*/2 * * * * *", "UTC", datetime(2026, 11, 22, 10, 0, 2, tzinfo=UTC)),
        ("*/15 * * * *", "UTC", datetime(2026, 11, 22, 10, 15, tzinfo=UTC)),
        ("0 0 9 ? * MON-FRI", "UTC", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
        ("0 0 0 L * ?", "UTC", datetime(2026, 11, 30, tzinfo=UTC)),
        ("0 0 0 ? * 5#3", "UTC", datetime(2026, 12, 18, tzinfo=UTC)),
        ("0 0 0 ? * 5L", "UTC", datetime(2026, 11, 27, tzinfo=UTC)),
        ("0 0 0 ? * 7", "UTC", datetime(2026, 11, 29, tzinfo=UTC)),
        ("0 0 0 1 JAN ? 2030", "UTC", datetime(2030, 1, 1, tzinfo=UTC)),
        ("@daily", "Europe/Berlin", datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        ("@hourly", "UTC", datetime(2026, 11, 22, 11, 0, tzinfo=UTC)),
        ("@monthly", "UTC", datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_next_fire_examples(expr: str, tz: str, expected: datetime) -> None:
    assert nxt(expr, tz=tz) == expected


def test_year_list_in_the_past_never_fires_again() -> None:
    assert nxt("0 0 0 1 1 ? 2020") is None


def test_every_counts_from_its_anchor() -> None:
    sched = cron.parse("@every 90s")
    anchor = datetime(2026, 11, 22, 9, 59, 0, tzinfo=UTC)
    assert sched.next_after(T0, ZoneInfo("UTC"), anchor=anchor) == datetime(
        2026, 11, 22, 10, 0, 30, tzinfo=UTC
    )
    assert cron.parse("@every 1h30m").every == timedelta(hours=1, minutes=30)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * * *", "second must be 0-59, got 61"),
        ("0 61 * * * *", "minute must be 0-59, got 61"),
        ("0 0 24 * * *", "hour must be 0-23, got 24"),
        ("0 0 0 32 * ?", "day-of-month must be 1-31, got 32"),
        ("0 0 0 * 13 ?", "month must be 1-12, got 13"),
        ("0 0 0 ? * MOO", "day-of-week must be a number 0-7 or SUN-SAT, got 'MOO'"),
        ("* * *", "has 3 fields"),
        ("*/0 * * * * *", "second step must be a positive number"),
        ("0 0 0 1 1 ? 2030-2020", "year range 2030-2020 goes backwards"),
        ("0 0 0 ?,1 * *", "'?' stands alone"),
        ("0 0 0 L-31 * ?", "L-n must have n 1-30"),
        ("0 0 0 ? * 5#6", "'#' must be followed by 1-5"),
        ("0 0 ? * * *", "hour cannot be '?'"),
        ("@fortnightly", "unknown macro"),
        ("@every soon", "@every needs a duration"),
        ("", "is empty"),
    ],
)
def test_invalid_cron_names_the_field_and_why(expr: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        cron.parse(expr)
    assert err.value.field == "schedule"
    assert message in str(err.value)


def test_dst_gap_fires_once_at_the_jump() -> None:
    # New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC).
    ny = "America/New_York"
    assert nxt("0 30 2 * * *", datetime(2026, 3, 7, 12, tzinfo=UTC), ny) == datetime(
        2026, 3, 8, 7, 0, tzinfo=UTC
    )
    assert nxt("0 30 2 * * *", datetime(2026, 3, 8, 7, 0, tzinfo=UTC), ny) == datetime(
        2026, 3, 9, 6, 30, tzinfo=UTC
    )


def test_dst_repeated_hour_fires_once() -> None:
    # New York falls back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice.
    ny = "America/New_York"
    first = nxt("0 30 1 * * *", datetime(2026, 10, 31, 12, tzinfo=UTC), ny)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert nxt("0 30 1 * * *", first, ny) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


# ----------------------------------------------------------- property tests
FIELD_RANGES = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"]
NEAR = [
    datetime(2026, 3, 8, 6, tzinfo=UTC),
    datetime(2026, 3, 29, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 5, tzinfo=UTC),
    datetime(2026, 4, 4, 14, tzinfo=UTC),
    datetime(2026, 10, 3, 15, tzinfo=UTC),
    datetime(2026, 6, 15, 12, tzinfo=UTC),
]


@st.composite
def field_text(draw: st.DrawFn, index: int) -> tuple[str, set[int]]:
    lo, hi = FIELD_RANGES[index]
    day_field = index in (3, 5)
    kind = draw(st.sampled_from(["star", "step", "one", "range", "rangestep", "list"]))
    if kind == "star" or (day_field and kind == "step"):
        return "*", set(range(lo, hi + 1))
    if kind == "step":
        n = draw(st.integers(1, max(1, (hi - lo) // 2)))
        return f"*/{n}", set(range(lo, hi + 1, n))
    a = draw(st.integers(lo, hi))
    if kind == "one":
        return str(a), {a}
    b = draw(st.integers(a, hi))
    if kind == "range":
        return f"{a}-{b}", set(range(a, b + 1))
    if kind == "rangestep":
        n = draw(st.integers(1, 5))
        return f"{a}-{b}/{n}", set(range(a, b + 1, n))
    c = draw(st.integers(lo, hi))
    return f"{a},{c}", {a, c}


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, list[set[int]], list[bool]]:
    parts = [draw(field_text(i)) for i in range(6)]
    return " ".join(p[0] for p in parts), [p[1] for p in parts], [p[0] == "*" for p in parts]


def _day_matches(wall: datetime, sets: list[set[int]], star: list[bool]) -> bool:
    dom_ok = wall.day in sets[3]
    dow_ok = (wall.isoweekday() % 7) in sets[5]
    if star[3] and star[5]:
        return True
    if star[3]:
        return dow_ok
    if star[5]:
        return dom_ok
    return dom_ok or dow_ok  # both restricted: either day matches (Vixie cron)


def _minute_matches(wall: datetime, sets: list[set[int]], star: list[bool]) -> bool:
    return (
        wall.minute in sets[1]
        and wall.hour in sets[2]
        and wall.month in sets[4]
        and _day_matches(wall, sets, star)
    )


def reference_next(
    sets: list[set[int]], star: list[bool], after: datetime, tz: ZoneInfo, window: timedelta
) -> datetime | None:
    """Walk UTC minutes; fire where the wall clock matches (first occurrence
    of a repeated time; a skipped time fires at the jump)."""
    minute = after.replace(second=0, microsecond=0)
    end = after + window
    prev_wall = (minute - timedelta(minutes=1)).astimezone(tz)
    while minute <= end:
        wall = minute.astimezone(tz)
        fires: list[datetime] = []
        naive_prev = prev_wall.replace(tzinfo=None)
        naive = wall.replace(tzinfo=None)
        if naive - naive_prev > timedelta(minutes=1):  # a gap was skipped
            skipped = naive_prev + timedelta(minutes=1)
            while skipped < naive:
                if _minute_matches(skipped, sets, star) and sets[0]:
                    fires.append(minute)
                    break
                skipped += timedelta(minutes=1)
        if wall.fold == 0 and _minute_matches(wall, sets, star):
            fires.extend(minute + timedelta(seconds=s) for s in sorted(sets[0]))
        later = [f for f in fires if f > after]
        if later:
            return min(later)
        prev_wall = wall
        minute += timedelta(minutes=1)
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=expressions(),
    tz_name=st.sampled_from(ZONES),
    base=st.sampled_from(NEAR),
    offset=st.integers(0, 48 * 3600),
)
def test_next_fire_matches_brute_force(
    expr: tuple[str, list[set[int]], list[bool]], tz_name: str, base: datetime, offset: int
) -> None:
    text, sets, star = expr
    tz = ZoneInfo(tz_name)
    after = base + timedelta(seconds=offset)
    window = timedelta(days=3)
    expected = reference_next(sets, star, after, tz, window)
    try:
        got = cron.parse(text).next_after(after, tz)
    except InvalidSpec:
        assert expected is None, (text, "rejected but fires at", expected)
        return
    if expected is None:
        assert got is None or got > after + window - timedelta(minutes=1), (text, tz_name, after, got)
    else:
        assert got == expected, (text, tz_name, after)
