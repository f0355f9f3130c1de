"""Cron text: parsing with field-naming errors, and the next fire in a timezone.

Accepted forms (see API.md):
- 5 fields: minute hour day-of-month month day-of-week
- 6 fields: second first (``0 0 12 * * ?`` is noon every day)
- 7 fields: the 6 plus year
- ``@yearly @annually @monthly @weekly @daily @midnight @hourly``
- ``@every 90s`` (units s, m, h, d, combinable: ``@every 1h30m``), anchored at
  the job's start (its ``start_at`` or creation time).

In every field: ``*``, numbers, ranges ``a-b`` (a range that wraps, like
``NOV-MAR``, ``FRI-MON`` or ``22-2`` in hours, goes round), steps ``*/n``,
``a/n``, ``a-b/n``, and lists of those. Months and days take names, short or
full (``JAN``, ``January``, ``MON``, ``Monday``). Day-of-week is 0-7 (0 and 7
are Sunday); ``5#3`` is the third Friday, ``5L`` (or ``L5``) the last Friday.
Day-of-month takes ``L`` (last day), ``L-3`` (third to last), ``15W`` (the
weekday nearest the 15th, within the month), ``LW`` (last weekday), also in
lists. ``?`` (a whole day field) means "any". When both day fields are
restricted, a day matching either fires (Vixie cron), whatever they use.

cronfleet walks the calendar itself, on the job's wall clock (croniter, used
before, combined the day fields with AND once one used ``#``, ``L`` or ``W``).
Daylight-saving rules: a wall time skipped by a jump forward fires once, at
the jump; a wall time that repeats when clocks go back fires once, at its
first occurrence.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronfleet.errors import InvalidSpec

MACROS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
MONTH_NAMES = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
DAY_NAMES = ["SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"]
YEAR_LIMIT = 2199

_EVERY = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_FOREVER = 400 * 12  # months a search may walk before it gives up (past YEAR_LIMIT anyway)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    full_names: tuple[str, ...] = ()
    names_start: int = 0


SECOND = _Field("second", 0, 59)
MINUTE = _Field("minute", 0, 59)
HOUR = _Field("hour", 0, 23)
DOM = _Field("day-of-month", 1, 31)
MONTH = _Field("month", 1, 12, tuple(MONTHS), tuple(MONTH_NAMES), 1)
DOW = _Field("day-of-week", 0, 7, tuple(DAYS), tuple(DAY_NAMES), 0)
YEAR = _Field("year", 1970, YEAR_LIMIT)
FIELDS = (SECOND, MINUTE, HOUR, DOM, MONTH, DOW, YEAR)


@functools.lru_cache(maxsize=1024)
def load_timezone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA zone ``name``, or an error naming ``field``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSpec(f"unknown IANA timezone {name!r}", field=field) from exc


class NeverFires(InvalidSpec):
    """The text is well formed but names no date that exists (February 30th)."""


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


# ----------------------------------------------------------------- parse
@functools.lru_cache(maxsize=4096)
def parse(text: str, field: str = "schedule") -> CronSchedule:
    """Parse cron text, raising :class:`InvalidSpec` that names the problem.

    Cached: the scheduler parses each claimed job's schedule again.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidSpec("is empty", field=field)
    raw = " ".join(text.split())
    lowered = raw.lower()
    if lowered.startswith("@every"):
        return CronSchedule(raw, every=_parse_every(raw[len("@every") :].strip(), field))
    if raw.startswith("@"):
        if lowered not in MACROS:
            raise InvalidSpec(
                f"unknown macro {raw!r} (known: {', '.join(sorted(MACROS))}, @every)", field=field
            )
        parts = MACROS[lowered].split()
    else:
        parts = raw.split()
        if len(parts) == 5:
            parts = ["0", *parts]
        elif len(parts) not in (6, 7):
            raise InvalidSpec(
                f"{raw!r} has {len(parts)} fields; expected 5, 6 (second first) or 7 "
                "(second first, year last)",
                field=field,
            )
    parser = _FieldParser(raw, field)
    upper = [p.upper() for p in parts]
    schedule = CronSchedule(
        raw,
        seconds=tuple(sorted(parser.values(SECOND, upper[0]))),
        minutes=tuple(sorted(parser.values(MINUTE, upper[1]))),
        hours=tuple(sorted(parser.values(HOUR, upper[2]))),
        day_of_month=parser.day_of_month(upper[3]),
        months=frozenset(parser.values(MONTH, upper[4])),
        day_of_week=parser.day_of_week(upper[5]),
        years=frozenset(parser.values(YEAR, upper[6]))
        if len(upper) == 7 and upper[6] not in ("*", "?")
        else None,
    )
    if schedule.next_wall(datetime(1970, 1, 1)) is None:
        raise NeverFires(f"{raw!r} never fires (no such date)", field=field)
    return schedule


class _FieldParser:
    """Reads one field at a time, naming the field and the text in errors."""

    def __init__(self, raw: str, field: str) -> None:
        self.raw = raw
        self.field = field

    def fail(self, f: _Field, why: str) -> InvalidSpec:
        return InvalidSpec(f"{self.raw!r}: {f.name} {why}", field=self.field)

    def number(self, f: _Field, token: str) -> int:
        for names in (f.names, f.full_names):
            if token in names:
                return names.index(token) + f.names_start
        if not token.isdigit():
            allowed = f" or {f.names[0]}-{f.names[-1]}" if f.names else ""
            raise self.fail(f, f"must be a number {f.low}-{f.high}{allowed}, got {token!r}")
        n = int(token)
        if not f.low <= n <= f.high:
            raise self.fail(f, f"must be {f.low}-{f.high}, got {n}")
        return n

    def values(self, f: _Field, text: str) -> set[int]:
        """Every value a plain field names (``*``, numbers, ranges, steps, lists)."""
        if text == "?":
            if f not in (DOM, DOW):
                raise self.fail(f, "cannot be '?' (only day-of-month and day-of-week can)")
            return set(range(f.low, f.high + 1))
        out: set[int] = set()
        for item in text.split(","):
            if item == "":
                raise self.fail(f, "has an empty list item")
            if item == "?":
                raise self.fail(f, "'?' stands alone: it means any day")
            out |= self._item(f, item)
        return out

    def _item(self, f: _Field, item: str) -> set[int]:
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise self.fail(f, f"step must be a positive number, got {step_text!r}")
            step = int(step_text)
            if step > f.high - f.low + 1 and f is not YEAR:
                raise self.fail(f, f"step {step} is larger than the field's range {f.low}-{f.high}")
        if base == "*":
            lo, hi = f.low, f.high
        elif "-" in base:
            lo_t, _, hi_t = base.partition("-")
            lo, hi = self.number(f, lo_t), self.number(f, hi_t)
            if f is DOW and hi_t in ("SUN", "SUNDAY"):
                hi = 7  # MON-SUN: Sunday as the week's end
        else:
            lo = self.number(f, base)
            hi = (YEAR_LIMIT if f is YEAR else f.high) if step_text else lo
        if lo <= hi:
            return set(range(lo, hi + 1, step))
        if f is YEAR:
            raise self.fail(f, f"range {base} goes backwards")
        span = f.high - f.low + 1  # a range that wraps goes round: 22-2 is 22,23,0,1,2
        return {f.low + (lo - f.low + i) % span for i in range(0, (hi - lo) % span + 1, step)}

    def day_of_month(self, text: str) -> DayOfMonth:
        if text in ("*", "?"):
            return DayOfMonth()
        days: set[int] = set()
        before_last: set[int] = set()
        nearest: set[int] = set()
        last = last_weekday = False
        for item in text.split(","):
            if item == "?":
                raise self.fail(DOM, "'?' stands alone: it means any day")
            if item == "L":
                last = True
            elif item == "LW":
                last_weekday = True
            elif m := re.fullmatch(r"L-(\d+)", item):
                n = int(m.group(1))
                if not 1 <= n <= 30:
                    raise self.fail(DOM, f"L-n must have n 1-30, got {n}")
                before_last.add(n)
            elif m := re.fullmatch(r"(\d+)W", item):
                nearest.add(self.number(DOM, m.group(1)))
            elif item == "*":
                return DayOfMonth()  # "*" in a list: every day
            else:
                days |= self.values(DOM, item)
        return DayOfMonth(
            frozenset(days), last, frozenset(before_last), frozenset(nearest), last_weekday, False
        )

    def day_of_week(self, text: str) -> DayOfWeek:
        if text in ("*", "?"):
            return DayOfWeek()
        days: set[int] = set()
        nth: set[tuple[int, int]] = set()
        last: set[int] = set()
        for item in text.split(","):
            if item == "?":
                raise self.fail(DOW, "'?' stands alone: it means any day")
            if m := re.fullmatch(r"(\w+)#(\d+)", item):
                if not 1 <= int(m.group(2)) <= 5:
                    raise self.fail(DOW, f"'#' must be followed by 1-5, got {m.group(2)}")
                nth.add((self.number(DOW, m.group(1)) % 7, int(m.group(2))))
            elif m := re.fullmatch(r"L(\w+)|(\w+)L", item):
                last.add(self.number(DOW, m.group(1) or m.group(2)) % 7)
            elif item == "*":
                return DayOfWeek()  # "*" in a list: every day
            else:
                days |= {d % 7 for d in self.values(DOW, item)}
        return DayOfWeek(frozenset(days), frozenset(nth), frozenset(last), False)


MAX_EVERY_DAYS = 3650  # ten years; past that, a date-time is no longer sure to hold the next fire


def _parse_every(spec: str, field: str) -> timedelta:
    m = _EVERY.match(spec.lower())
    if not spec or not m or not any(m.groups()):
        raise InvalidSpec(f"@every needs a duration like 90s, 5m or 1h30m, got {spec!r}", field=field)
    d, h, mi, s = (int(g or 0) for g in m.groups())
    seconds = ((d * 24 + h) * 60 + mi) * 60 + s
    if seconds < 1:
        raise InvalidSpec("@every must be at least 1s", field=field)
    if seconds > MAX_EVERY_DAYS * 86400:
        raise InvalidSpec(f"@every must be at most {MAX_EVERY_DAYS} days", field=field)
    return timedelta(seconds=seconds)


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
