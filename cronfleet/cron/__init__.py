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

Its modules, each name importable from ``cronfleet.cron`` as before:
``parsing`` (the text read into a schedule, errors naming the field; a
timezone name) and ``fires`` (:class:`CronSchedule` and its next fire on the
wall clock, ``@every``, daylight-saving).
"""

from cronfleet.cron.fires import YEAR_LIMIT, CronSchedule, DayOfMonth, DayOfWeek, wall_to_utc
from cronfleet.cron.parsing import (
    DAY_NAMES,
    DAYS,
    DOM,
    DOW,
    FIELDS,
    HOUR,
    MACROS,
    MAX_EVERY_DAYS,
    MINUTE,
    MONTH,
    MONTH_NAMES,
    MONTHS,
    SECOND,
    YEAR,
    NeverFires,
    load_timezone,
    parse,
)

__all__ = [
    "DAYS",
    "DAY_NAMES",
    "DOM",
    "DOW",
    "FIELDS",
    "HOUR",
    "MACROS",
    "MAX_EVERY_DAYS",
    "MINUTE",
    "MONTH",
    "MONTHS",
    "MONTH_NAMES",
    "SECOND",
    "YEAR",
    "YEAR_LIMIT",
    "CronSchedule",
    "DayOfMonth",
    "DayOfWeek",
    "NeverFires",
    "load_timezone",
    "parse",
    "wall_to_utc",
]
