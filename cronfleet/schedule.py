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
# How far back misfire_policy "run_all" catches up.
DEFAULT_MISFIRE_CATCHUP = timedelta(hours=24)
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
        # A run_at already past (a slow request, an outage) is still the fire:
        # it runs at once, late, and says so; past the misfire grace the
        # job's misfire policy decides, as for any fire missed.
        return timing.run_at or now
    return next_fire(timing, after=now - _TICK, anchor=timing.anchor or now)


def next_fire(timing: Timing, after: datetime, anchor: datetime | None = None) -> datetime | None:
    """The fire strictly after ``after``, inside the job's window; None past its end
    (and always None for a one-off)."""
    if timing.schedule is None:
        return None
    anchor = timing.start_at or anchor or timing.anchor or after
    if not counts_from_anchor(timing.schedule):
        anchor = None  # only @every depends on it; dropping it lets the memo below hit
    return _next_fire(timing.schedule, timing.timezone, timing.start_at, timing.end_at, after, anchor)


def counts_from_anchor(schedule: str) -> bool:
    """Whether the fires of ``schedule`` count from an anchor (``@every``), not the clock."""
    return cron.parse(schedule).every is not None


@dataclass(frozen=True)
class ClaimedFire:
    """What a claim does with a due fire: run it (or record it skipped), and
    where the job's schedule moves (None: the job is done)."""

    next_run_at: datetime | None
    run: bool = True
    misfired: bool = False
    note: str = ""


# What claim_fire decides for every fire of a one-off job: it runs, however
# late, and the job is done (the claim's shortcut: nothing else to read).
ONE_OFF_FIRE = ClaimedFire(None)


def claim_fire(
    timing: Timing,
    fired_at: datetime,
    now: datetime,
    *,
    policy: str = "run_once",
    run_once: bool = False,
    grace: timedelta = DEFAULT_MISFIRE_GRACE,
    catchup: timedelta = DEFAULT_MISFIRE_CATCHUP,
) -> ClaimedFire:
    """Decide the fire at ``fired_at`` of a job being claimed at ``now``.

    A fire claimed less than ``grace`` after its time (a failover, a stall)
    is late, not missed: it runs, and so does each one after it. One missed
    by more has misfired, and the job's misfire policy decides (Quartz's
    misfire threshold and instructions):

    - ``run_once``: one late run stands for every fire missed; the schedule
      moves past now.
    - ``run_all``: every missed fire runs, oldest first, each late; fires
      older than ``catchup`` are dropped (the first dropped is recorded skipped).
    - ``skip``: no late run (the missed fire is recorded skipped); the
      schedule moves past now.

    ``run_once`` on the job retires it after this fire.
    """

    def after(moment: datetime) -> datetime | None:
        return None if run_once else next_fire(timing, moment)

    if timing.schedule is None or fired_at >= now - grace:
        return ClaimedFire(after(fired_at))
    late = f"missed by {_seconds(now - fired_at)}"
    if policy == "skip":
        return ClaimedFire(after(now), run=False, misfired=True, note=f"{late}; misfire_policy skip")
    if policy == "run_all":
        if fired_at >= now - catchup:
            return ClaimedFire(after(fired_at), misfired=True)
        note = f"{late}, older than the catch-up window; misfire_policy run_all"
        return ClaimedFire(next_fire(timing, now - catchup), run=False, misfired=True, note=note)
    return ClaimedFire(after(now), misfired=True)


def first_fire_missed(timing: Timing, since: datetime, now: datetime) -> datetime | None:
    """The first fire after ``since`` if it is already due (something was missed)."""
    missed = next_fire(timing, since)
    return missed if missed is not None and missed <= now else None


def _seconds(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    if total < 120:
        return f"{total}s"
    if total < 7200:
        return f"{total // 60}m"
    return f"{total // 3600}h"


def fires_between(timing: Timing, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """The fires in [``start``, ``end``], at most ``limit`` of them (a backfill)."""
    fires: list[datetime] = []
    nxt = next_fire(timing, start - _TICK)
    while nxt is not None and nxt <= end and len(fires) < limit:
        fires.append(nxt)
        nxt = next_fire(timing, nxt)
    return fires


def fires_in_a_minute(timing: Timing, now: datetime) -> int:
    """How many times a recurring job fires in the minute that starts at its
    next fire (not the next minute from now, so a schedule that fires only in
    office hours counts its rate then); 0 for a one-off or a job whose window
    is over. The runs-per-minute quota sums it over a user's jobs."""
    if timing.schedule is None:
        return 0
    first = first_fire(timing, now)
    if first is None:
        return 0
    return len(fires_between(timing, first, first + timedelta(minutes=1) - _TICK, 60 * 60))


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
