"""Cron text: parsing with field-naming errors, and the next fire in a timezone.

Accepted forms (see API.md):
- 5 fields: minute hour day-of-month month day-of-week
- 6 fields: second first (``0 0 12 * * ?`` is noon every day)
- 7 fields: the 6 plus year
- ``@yearly @annually @monthly @weekly @daily @midnight @hourly``
- ``@every 90s`` (units s, m, h, d, combinable: ``@every 1h30m``), anchored at
  the job's start (its ``start_at`` or creation time).

Day-of-week is 0-7 (0 and 7 are Sunday) or SUN-SAT; ``5#3`` is the third
Friday, ``5L`` (or ``L5``) the last Friday. Day-of-month takes ``L`` (last day)
and ``15W`` (nearest weekday). ``?`` means "any" in either day field. When both
day fields are restricted, a day matching either fires (Vixie cron).

Iteration is croniter's, on the job's wall clock. Daylight-saving rules:
a wall time skipped by a jump forward fires once, at the jump; a wall time
that repeats when clocks go back fires once, at its first occurrence.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

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
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0


FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, tuple(MONTHS), 1),
    _Field("day-of-week", 0, 7, tuple(DAYS), 0),
    _Field("year", 1970, 2199),
)
YEAR_LIMIT = 2199

_EVERY = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@functools.lru_cache(maxsize=1024)
def load_timezone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA zone ``name``, or an error naming ``field``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSpec(f"unknown IANA timezone {name!r}", field=field) from exc


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule. Build with :func:`parse`."""

    text: str
    # croniter form: minute hour dom month dow second (seconds last).
    croniter_expr: str | None
    years: frozenset[int] | None
    every: timedelta | None

    def next_after(self, after: datetime, tz: ZoneInfo, anchor: datetime | None = None) -> datetime | None:
        """The first fire strictly after ``after`` (aware), as aware UTC.

        ``None`` when the schedule never fires again (a year list in the past).
        ``anchor`` is where ``@every`` intervals count from.
        """
        if self.every is not None:
            return _next_every(self.every, after, anchor or after)
        assert self.croniter_expr is not None
        return _next_cron(self.croniter_expr, self.years, after, tz)


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
        return CronSchedule(raw, None, None, _parse_every(raw[len("@every") :].strip(), field))
    if raw.startswith("@"):
        if lowered not in MACROS:
            raise InvalidSpec(
                f"unknown macro {raw!r} (known: {', '.join(sorted(MACROS))}, @every)", field=field
            )
        raw_fields = MACROS[lowered].split()
    else:
        raw_fields = raw.split()
        if len(raw_fields) == 5:
            raw_fields = ["0", *raw_fields]
        elif len(raw_fields) not in (6, 7):
            raise InvalidSpec(
                f"{raw!r} has {len(raw_fields)} fields; expected 5, 6 (second first) or 7 "
                "(second first, year last)",
                field=field,
            )
    converted = [_check_field(FIELDS[i], value.upper(), raw, field) for i, value in enumerate(raw_fields)]
    second, minute, hour, dom, month, dow = converted[:6]
    years = _expand_years(converted[6], raw, field) if len(converted) == 7 else None
    expr = " ".join([minute, hour, dom, month, dow, second])
    try:
        croniter(expr, datetime(2000, 1, 1))
    except Exception as exc:  # croniter's own errors are not a public type
        raise InvalidSpec(f"{raw!r} is not a valid cron expression: {exc}", field=field) from exc
    try:  # "30 2" (February 30th) parses but never fires
        croniter(expr, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError as exc:
        raise NeverFires(f"{raw!r} never fires (no such date)", field=field) from exc
    return CronSchedule(raw, expr, years, None)


class NeverFires(InvalidSpec):
    """The text is well formed but names no date that exists (February 30th)."""


def _parse_every(spec: str, field: str) -> timedelta:
    m = _EVERY.match(spec.lower())
    if not spec or not m or not any(m.groups()):
        raise InvalidSpec(f"@every needs a duration like 90s, 5m or 1h30m, got {spec!r}", field=field)
    d, h, mi, s = (int(g or 0) for g in m.groups())
    every = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    if every < timedelta(seconds=1):
        raise InvalidSpec("@every must be at least 1s", field=field)
    return every


def _check_field(f: _Field, value: str, raw: str, field: str) -> str:
    """Validate one field; return it in croniter's dialect."""

    def fail(why: str) -> InvalidSpec:
        return InvalidSpec(f"{raw!r}: {f.name} {why}", field=field)

    def number(token: str) -> int:
        if f.names and token in f.names:
            return f.names.index(token) + f.names_start
        if not token.isdigit():
            allowed = f" or {f.names[0]}-{f.names[-1]}" if f.names else ""
            raise fail(f"must be a number {f.low}-{f.high}{allowed}, got {token!r}")
        n = int(token)
        if not f.low <= n <= f.high:
            raise fail(f"must be {f.low}-{f.high}, got {n}")
        return n

    out = []
    for item in value.split(","):
        if item == "":
            raise fail("has an empty list item")
        if item == "?":
            if f.name not in ("day-of-month", "day-of-week"):
                raise fail("cannot be '?' (only day-of-month and day-of-week can)")
            out.append("*")
            continue
        if f.name == "day-of-month" and (item == "L" or re.fullmatch(r"\d+W", item)):
            if item != "L":
                number(item[:-1])
            out.append(item)
            continue
        if f.name == "day-of-week":
            m = re.fullmatch(r"(\w+)#(\d+)", item)
            if m:
                number(m.group(1))
                if not 1 <= int(m.group(2)) <= 5:
                    raise fail(f"'#' must be followed by 1-5, got {m.group(2)}")
                out.append(f"{m.group(1)}#{m.group(2)}")
                continue
            m = re.fullmatch(r"L(\w+)|(\w+)L", item)
            if m:
                day = number(m.group(1) or m.group(2)) % 7
                out.append(f"L{day}")
                continue
        base, _, step = item.partition("/")
        if step:
            if not step.isdigit() or int(step) < 1:
                raise fail(f"step must be a positive number, got {step!r}")
            if int(step) > f.high - f.low + 1 and f.name != "year":
                raise fail(f"step {step} is larger than the field's range {f.low}-{f.high}")
        if base == "*":
            pass
        elif "-" in base:
            lo_t, _, hi_t = base.partition("-")
            lo, hi = number(lo_t), number(hi_t)
            if lo > hi:
                raise fail(f"range {base} goes backwards")
            if lo == hi:  # croniter reads "0-0" as the whole range
                item = lo_t
        else:
            number(base)
        out.append(item)
    return ",".join(out)


def _expand_years(value: str, raw: str, field: str) -> frozenset[int] | None:
    if value in ("*", "?"):
        return None
    years: set[int] = set()
    for item in value.split(","):
        base, _, step_t = item.partition("/")
        step = int(step_t) if step_t else 1
        if base == "*":
            lo, hi = 1970, YEAR_LIMIT
        elif "-" in base:
            lo, hi = (int(x) for x in base.split("-"))
        else:
            lo = int(base)
            hi = YEAR_LIMIT if step_t else lo
        years.update(range(lo, hi + 1, step))
    return frozenset(years)


def _next_every(every: timedelta, after: datetime, anchor: datetime) -> datetime:
    if after < anchor:
        return anchor.astimezone(UTC)
    periods = math.floor((after - anchor) / every) + 1
    return (anchor + periods * every).astimezone(UTC)


def _next_cron(expr: str, years: frozenset[int] | None, after: datetime, tz: ZoneInfo) -> datetime | None:
    after = after.astimezone(UTC)
    # Walk the wall clock from the wall time of `after`; the fold=1 hour
    # (clocks went back) starts from its first reading, and candidates that map
    # to instants not after `after` are skipped below.
    wall = after.astimezone(tz).replace(tzinfo=None, fold=0)
    it = croniter(expr, wall)
    for _ in range(100_000):
        try:
            cand: datetime = it.get_next(datetime)
        except CroniterBadDateError:
            return None
        if years is not None and cand.year not in years:
            later = [y for y in years if y > cand.year]
            if not later:
                return None
            it = croniter(expr, datetime(min(later), 1, 1) - timedelta(microseconds=1))
            continue
        if cand.year > YEAR_LIMIT:
            return None
        instant = wall_to_utc(cand, tz)
        if instant > after:
            return instant
    return None


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
