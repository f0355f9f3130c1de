"""Cron text read into a :class:`~cronfleet.cron.fires.CronSchedule`: the
fields, their names and ranges, macros, ``@every``, each error naming the
field and the text; and an IANA timezone name read the same way."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronfleet.cron.fires import YEAR_LIMIT, CronSchedule, DayOfMonth, DayOfWeek
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

_EVERY = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


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
