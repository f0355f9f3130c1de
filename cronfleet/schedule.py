"""When a job fires: its first fire, the fire after any instant inside its
window, and where a claimed fire moves its schedule to.

The gateway (first fire), the scheduler's claim (the next fire) and the
schedule preview all call these; ``cronfleet.cron`` only knows cron text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from cronfleet import cron

# Fires a recurring job missed by less than this (its scheduler died) each run
# late; an older miss runs once and the schedule moves past now.
DEFAULT_MISFIRE_GRACE = timedelta(seconds=60)
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Timing:
    """The part of a job that says when it fires.

    ``schedule`` None is a one-off: at ``run_at``, or now. ``anchor`` is where
    ``@every`` intervals count from (the job's start, or its creation).
    """

    schedule: str | None = None
    timezone: str = "UTC"
    run_at: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    anchor: datetime | None = None


def first_fire(timing: Timing, now: datetime) -> datetime | None:
    """When the job first fires, or None if its window is already over."""
    if timing.schedule is None:
        return max(timing.run_at, now) if timing.run_at else now
    return next_fire(timing, after=now - _TICK, anchor=timing.anchor or now)


def next_fire(timing: Timing, after: datetime, anchor: datetime | None = None) -> datetime | None:
    """The fire strictly after ``after``, inside the job's window; None past its end
    (and always None for a one-off)."""
    if timing.schedule is None:
        return None
    anchor = timing.start_at or anchor or timing.anchor or after
    if cron.parse(timing.schedule).every is None:
        anchor = None  # only @every depends on it; dropping it lets the memo below hit
    return _next_fire(timing.schedule, timing.timezone, timing.start_at, timing.end_at, after, anchor)


def fire_after_claim(
    timing: Timing, fired_at: datetime, now: datetime, misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE
) -> datetime | None:
    """Where a job's schedule moves once its fire at ``fired_at`` is claimed.

    One-offs retire (None). A recurring job that fell behind (a scheduler
    died, the cluster was down) runs every fire it missed within
    ``misfire_grace``, each late, one per claim; a fire missed longer ago
    runs once and the schedule moves past now, so a long outage ends in one
    late run, not a flood.
    """
    after = now if fired_at < now - misfire_grace else fired_at
    return next_fire(timing, after)


def upcoming(timing: Timing, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fires after ``after`` (fewer if the window ends)."""
    if timing.schedule is None:
        once = first_fire(timing, after)
        return [once] if once and count else []
    fires: list[datetime] = []
    nxt = next_fire(timing, after)
    while nxt is not None and len(fires) < count:
        fires.append(nxt)
        nxt = next_fire(timing, nxt)
    return fires


@functools.lru_cache(maxsize=8192)
def _next_fire(
    schedule: str,
    timezone: str,
    start_at: datetime | None,
    end_at: datetime | None,
    after: datetime,
    anchor: datetime | None,
) -> datetime | None:
    """Memoised: a claim batch often holds many jobs with one schedule due at one time."""
    tz = cron.load_timezone(timezone)
    if start_at and after < start_at:
        after = start_at - _TICK
    nxt = cron.parse(schedule).next_after(after, tz, anchor=anchor)
    if nxt is None or (end_at and nxt > end_at):
        return None
    return nxt
