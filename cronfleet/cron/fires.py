"""A parsed schedule, :class:`CronSchedule`, and its next fire: the calendar
walked on the job's wall clock (both day fields read as Vixie cron does),
``@every`` counted from its anchor, and a wall time mapped to the instant it
names across daylight-saving changes."""

from __future__ import annotations

import bisect
import calendar
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

YEAR_LIMIT = 2199
_FOREVER = 400 * 12  # months a search may walk before it gives up (past YEAR_LIMIT anyway)


# ------------------------------------------------------------------ days
@dataclass(frozen=True)
class DayOfMonth:
    """What a day-of-month field names, in a given month."""

    days: frozenset[int] = frozenset()
    last: bool = False  # L
    before_last: frozenset[int] = frozenset()  # L-n
    nearest_weekday: frozenset[int] = frozenset()  # nW
    last_weekday: bool = False  # LW
    any: bool = True

    def matches(self, day: date, last: int) -> bool:
        if day.day in self.days or (self.last and day.day == last):
            return True
        if day.day in {last - n for n in self.before_last}:
            return True
        if self.last_weekday and day.day == _weekday_nearest(day, last, last):
            return True
        return any(day.day == _weekday_nearest(day, n, last) for n in self.nearest_weekday if n <= last)


def _weekday_nearest(day: date, n: int, last: int) -> int:
    """The weekday (Mon-Fri) nearest the ``n``th of ``day``'s month, never leaving it."""
    weekday = date(day.year, day.month, n).weekday()  # Monday 0 .. Sunday 6
    if weekday == 5:  # Saturday: the Friday before, or Monday when that leaves the month
        return n - 1 if n > 1 else n + 2
    if weekday == 6:  # Sunday: the Monday after, or Friday when that leaves the month
        return n + 1 if n < last else n - 2
    return n


@dataclass(frozen=True)
class DayOfWeek:
    """What a day-of-week field names (0 Sunday .. 6 Saturday)."""

    days: frozenset[int] = frozenset()
    nth: frozenset[tuple[int, int]] = frozenset()  # (weekday, n): 5#3
    last: frozenset[int] = frozenset()  # 5L
    any: bool = True

    def matches(self, day: date, last: int) -> bool:
        weekday = (day.weekday() + 1) % 7
        if weekday in self.days:
            return True
        if (weekday, (day.day - 1) // 7 + 1) in self.nth:
            return True
        return weekday in self.last and day.day + 7 > last


# -------------------------------------------------------------- schedule
@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule. Build with :func:`parse`."""

    text: str
    every: timedelta | None = None
    seconds: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()
    months: frozenset[int] = frozenset()
    day_of_month: DayOfMonth = DayOfMonth()
    day_of_week: DayOfWeek = DayOfWeek()
    years: frozenset[int] | None = None

    @property
    def both_day_fields_restricted(self) -> bool:
        return not self.day_of_month.any and not self.day_of_week.any

    def next_after(self, after: datetime, tz: ZoneInfo, anchor: datetime | None = None) -> datetime | None:
        """The first fire strictly after ``after`` (aware), as aware UTC.

        ``None`` when the schedule never fires again (a year list in the past).
        ``anchor`` is where ``@every`` intervals count from.
        """
        if self.every is not None:
            return _next_every(self.every, after, anchor or after)
        after = after.astimezone(UTC)
        # Walk the wall clock from the wall time of `after`; the fold=1 hour
        # (clocks went back) starts from its first reading, and candidates
        # that map to instants not after `after` are skipped.
        wall = after.astimezone(tz).replace(tzinfo=None, fold=0)
        for _ in range(10_000):
            candidate = self.next_wall(wall)
            if candidate is None:
                return None
            instant = wall_to_utc(candidate, tz)
            if instant > after:
                return instant
            wall = candidate
        return None

    def day_matches(self, day: date) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        dom, dow = self.day_of_month, self.day_of_week
        if dom.any and dow.any:
            return True
        if dom.any:
            return dow.matches(day, last)
        if dow.any:
            return dom.matches(day, last)
        return dom.matches(day, last) or dow.matches(day, last)  # both restricted: either (Vixie)

    def next_wall(self, wall: datetime) -> datetime | None:
        """The first matching wall-clock time strictly after ``wall`` (naive)."""
        today = wall.date()
        later_today = self._time_after(wall.time().replace(microsecond=0))
        if later_today is not None and self._day_ok(today):
            return datetime.combine(today, later_today)
        day = self._next_day(today)
        return None if day is None else datetime.combine(day, self._first_time())

    def _day_ok(self, day: date) -> bool:
        if self.years is not None and day.year not in self.years:
            return False
        return day.month in self.months and self.day_matches(day)

    def _next_day(self, day: date) -> date | None:
        """The first day after ``day`` that matches, month by month."""
        year, month = day.year, day.month
        start = day.day + 1
        for _ in range(_FOREVER):
            if year > YEAR_LIMIT:
                return None
            if (self.years is None or year in self.years) and month in self.months:
                last = calendar.monthrange(year, month)[1]
                for d in range(start, last + 1):
                    if self.day_matches(date(year, month, d)):
                        return date(year, month, d)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            start = 1
            if self.years is not None and year not in self.years:
                later = [y for y in self.years if y >= year]
                if not later:
                    return None
                year, month = min(later), 1
        return None

    def _first_time(self) -> time:
        return time(self.hours[0], self.minutes[0], self.seconds[0])

    def _time_after(self, t: time) -> time | None:
        """The first time of day in the schedule strictly after ``t``."""
        h, m, s = t.hour, t.minute, t.second
        if h in self.hours and m in self.minutes:
            i = bisect.bisect_right(self.seconds, s)
            if i < len(self.seconds):
                return time(h, m, self.seconds[i])
        if h in self.hours:
            i = bisect.bisect_right(self.minutes, m)
            if i < len(self.minutes):
                return time(h, self.minutes[i], self.seconds[0])
        i = bisect.bisect_right(self.hours, h)
        if i < len(self.hours):
            return time(self.hours[i], self.minutes[0], self.seconds[0])
        return None


def _next_every(every: timedelta, after: datetime, anchor: datetime) -> datetime:
    if after < anchor:
        return anchor.astimezone(UTC)
    periods = math.floor((after - anchor) / every) + 1
    return (anchor + periods * every).astimezone(UTC)


def wall_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant a naive wall time names in ``tz``.

    A time that repeats maps to its first occurrence; a time skipped by a jump
    forward maps to the instant of the jump.
    """
    first = wall.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return utc
    # In a gap: fold=1 resolves with the offset after the jump, which lands
    # before the jump instant; the jump itself is where the gap's times fire.
    after_jump = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(utc, after_jump), max(utc, after_jump)
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) < wall:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)
