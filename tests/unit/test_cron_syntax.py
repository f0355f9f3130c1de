"""Cron text as complete as the best parsers: wrapping ranges, full names,
L-n, LW, W in lists, # and L with the either-day rule, checked against an
independent walk of the calendar."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronfleet import cron

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)  # a Sunday
UTC_ZONE = ZoneInfo("UTC")


def nxt(expr: str, after: datetime = T0) -> datetime | None:
    return cron.parse(expr).next_after(after, UTC_ZONE)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 0 0 1 NOV-MAR ?", datetime(2026, 12, 1, tzinfo=UTC)),  # months that wrap
        ("0 0 0 1 MAR-NOV ?", datetime(2027, 3, 1, tzinfo=UTC)),
        ("0 0 9 ? * FRI-MON", datetime(2026, 11, 23, 9, tzinfo=UTC)),  # days that wrap
        ("0 0 22-2 * * *", datetime(2026, 11, 22, 22, tzinfo=UTC)),  # hours that wrap
        ("0 0 22-2/2 23 * *", datetime(2026, 11, 23, 0, tzinfo=UTC)),
        ("0 0 12 ? * MON-SUN", datetime(2026, 11, 22, 12, tzinfo=UTC)),  # Sunday ends the week
        ("0 0 0 L-3 * ?", datetime(2026, 11, 27, tzinfo=UTC)),  # third to last
        ("0 0 0 LW * ?", datetime(2026, 11, 30, tzinfo=UTC)),  # last weekday (a Monday)
        ("0 0 0 1W,15W * ?", datetime(2026, 12, 1, tzinfo=UTC)),
        ("0 0 0 ? January Monday", datetime(2027, 1, 4, tzinfo=UTC)),  # full names
        ("0 0 0 13 * 5#3", datetime(2026, 12, 13, tzinfo=UTC)),  # 13th or third Friday, whichever first
        ("0 0 0 25 * 5L", datetime(2026, 11, 25, tzinfo=UTC)),  # 25th or last Friday (27th)
        ("0 0 0 ? * MON,*", datetime(2026, 11, 23, tzinfo=UTC)),  # "*" in a list is every day
        ("0 0 0 31W * ?", datetime(2026, 12, 31, tzinfo=UTC)),  # no 31st in November: none there
    ],
)
def test_syntax_other_parsers_accept(expr: str, expected: datetime) -> None:
    assert nxt(expr) == expected


def test_either_day_field_fires_whatever_they_use() -> None:
    fires = []
    at = T0
    for _ in range(4):
        found = nxt("0 0 0 1 * 1#1", at)
        assert found is not None
        fires.append(found.date())
        at = found
    # The 1st of each month, and the first Monday of each month.
    assert fires == [date(2026, 12, 1), date(2026, 12, 7), date(2027, 1, 1), date(2027, 1, 4)]


# -------------------------------------------------- against a calendar walk
def reference_days(year: int, month: int, dom: str, dow: str) -> set[int]:
    """The days of the month the two fields name, worked out day by day."""
    last = calendar.monthrange(year, month)[1]
    weekday = {d: (date(year, month, d).weekday() + 1) % 7 for d in range(1, last + 1)}
    working = [d for d in weekday if weekday[d] not in (0, 6)]

    def by_dom(item: str) -> set[int]:
        if item == "L":
            return {last}
        if item == "LW":
            return {max(working)}
        if item.startswith("L-"):
            return {last - int(item[2:])} & set(weekday)
        if item.endswith("W"):
            n = int(item[:-1])
            return {min(working, key=lambda d: abs(d - n))} if n <= last else set()
        return {int(item)} & set(weekday)

    def by_dow(item: str) -> set[int]:
        if "#" in item:
            day, n = (int(x) for x in item.split("#"))
            same = sorted(d for d in weekday if weekday[d] == day)
            return {same[n - 1]} if n <= len(same) else set()
        if item.endswith("L"):
            return {max(d for d in weekday if weekday[d] == int(item[:-1]))}
        return {d for d in weekday if weekday[d] == int(item)}

    named_dom = set().union(*(by_dom(i) for i in dom.split(","))) if dom != "?" else None
    named_dow = set().union(*(by_dow(i) for i in dow.split(","))) if dow != "?" else None
    if named_dom is None and named_dow is None:
        return set(weekday)
    return (named_dom or set()) | (named_dow or set())


DOM_ITEMS = st.sampled_from(["L", "LW", "L-1", "L-5", "1W", "15W", "30W", "31", "29", "1", "13"])
DOW_ITEMS = st.sampled_from(["5#3", "1#1", "0#5", "5L", "0L", "2", "6"])


@settings(max_examples=150, deadline=None)
@given(
    dom=st.one_of(st.just("?"), st.lists(DOM_ITEMS, min_size=1, max_size=3).map(",".join)),
    dow=st.one_of(st.just("?"), st.lists(DOW_ITEMS, min_size=1, max_size=2).map(",".join)),
    start=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
)
def test_day_fields_match_a_calendar_walk(dom: str, dow: str, start: date) -> None:
    schedule = cron.parse(f"0 0 12 {dom} * {dow}")
    at = datetime(start.year, start.month, start.day, 13, tzinfo=UTC)
    got = schedule.next_after(at, UTC_ZONE)
    day = start + timedelta(days=1)
    while (day.year, day.month) <= (start.year + 3, 12):
        if day.day in reference_days(day.year, day.month, dom, dow):
            assert got == datetime(day.year, day.month, day.day, 12, tzinfo=UTC), (dom, dow, start)
            return
        day += timedelta(days=1)
    assert got is None or got.year > start.year + 3
