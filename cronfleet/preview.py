"""Schedule preview and lint: the next fires of cron text in a timezone, the
schedule in words (``cron-descriptor``), and warnings about what a user may
not expect: a schedule that never fires, both day fields restricted (either
one matches), a fire every second, and fires that a daylight-saving change
in the coming year moves or merges.

POST /api/v1/schedules/preview returns all of it; creating or changing a job
returns the warnings too, without refusing the job.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import cron_descriptor

from cronfleet import cron, schedule
from cronfleet.errors import InvalidSpec
from cronfleet.schedule import Timing

MAX_COUNT = 100
DST_HORIZON = timedelta(days=366)


@dataclass(frozen=True)
class Preview:
    next: tuple[datetime, ...]
    description: str
    warnings: tuple[str, ...]


def preview(text: str, timezone: str = "UTC", after: datetime | None = None, count: int = 5) -> Preview:
    """The next ``count`` fires of ``text`` after ``after`` (default now), in words, with warnings."""
    tz = cron.load_timezone(timezone)
    after = after or datetime.now(UTC)
    try:
        parsed = cron.parse(text)
    except cron.NeverFires:
        return Preview(
            (), _describe_text(text), (f"never fires: {text.strip()!r} names no date that exists",)
        )
    timing = Timing(text, timezone, anchor=after)
    fires = tuple(schedule.upcoming(timing, after, count))
    return Preview(fires, describe(parsed), tuple(lint(parsed, timing, tz, after)))


def warnings_for(text: str | None, timezone: str, now: datetime | None = None) -> tuple[str, ...]:
    """What creating a job with this schedule should warn about (nothing for a one-off)."""
    if text is None:
        return ()
    now = now or datetime.now(UTC)
    return tuple(
        lint(cron.parse(text), Timing(text, timezone, anchor=now), cron.load_timezone(timezone), now)
    )


@functools.lru_cache(maxsize=4096)
def describe_schedule(text: str | None) -> str:
    """A schedule in plain English ("" for a one-off); cached, since job lists ask per job."""
    if not text:
        return ""
    try:
        return describe(cron.parse(text))
    except InvalidSpec:  # stored before a rule tightened: say the text itself
        return text


def describe(parsed: cron.CronSchedule) -> str:
    if parsed.every is not None:
        return f"Every {_duration(parsed.every)}"
    return _describe_text(parsed.text)


def _describe_text(text: str) -> str:
    expanded = cron.MACROS.get(text.strip().lower(), text)
    options = cron_descriptor.Options()
    options.use_24hour_time_format = True
    try:
        return str(cron_descriptor.get_description(expanded, options))
    except Exception:  # the library's errors are many and untyped: say the text itself
        return text


def lint(parsed: cron.CronSchedule, timing: Timing, tz: ZoneInfo, now: datetime) -> list[str]:
    warnings: list[str] = []
    if parsed.both_day_fields_restricted:
        warnings.append(
            "both day-of-month and day-of-week are restricted: a day matching either fires "
            "(as in Vixie cron), not only a day matching both"
        )
    fires = schedule.upcoming(timing, now, 3)
    if len(fires) == 3 and min(b - a for a, b in zip(fires, fires[1:], strict=False)) <= timedelta(seconds=1):
        warnings.append("fires every second (86,400 runs a day): is that what you meant?")
    if not fires:
        warnings.append("never fires again")
    if parsed.every is None:
        warnings.extend(_dst_warnings(parsed, tz, now))
    return warnings


def _dst_warnings(parsed: cron.CronSchedule, tz: ZoneInfo, now: datetime) -> list[str]:
    """Daylight-saving changes in the next year that skip or repeat a wall time the schedule uses."""
    out = []
    for instant, before, after in _transitions(tz, now, now + DST_HORIZON):
        shift = after - before
        if shift > timedelta(0):  # clocks jump forward: these wall times do not exist
            start = (instant + before).replace(tzinfo=None)
            end = start + shift
            if _matches_between(parsed, start, end):
                out.append(
                    f"{_span(start, end)} does not exist in {tz.key} (clocks jump forward): "
                    f"fires in it run once, at {end:%H:%M}"
                )
        else:  # clocks go back: these wall times happen twice
            start = (instant + after).replace(tzinfo=None)
            end = start - shift
            if _matches_between(parsed, start, end):
                out.append(
                    f"{_span(start, end)} happens twice in {tz.key} (clocks go back): "
                    "fires in it run once, at the first occurrence"
                )
    return out


def _transitions(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta, timedelta]]:
    """(UTC instant, offset before, offset after) of each offset change in [start, end)."""
    found = []
    day = start.astimezone(UTC)
    while day < end:
        nxt = day + timedelta(days=1)
        before, after = _offset(tz, day), _offset(tz, nxt)
        if before != after:
            lo, hi = day, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if _offset(tz, mid) == before else (lo, mid)
            found.append((hi.replace(microsecond=0), before, after))
        day = nxt
    return found


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def _matches_between(parsed: cron.CronSchedule, start: datetime, end: datetime) -> bool:
    """Does the schedule name a wall time in [start, end)?"""
    match = parsed.next_wall(start - timedelta(microseconds=1))
    return match is not None and match < end


def _span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d} {start:%H:%M}-{end:%H:%M}"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n > 1 else ''}")
    return " ".join(parts)
