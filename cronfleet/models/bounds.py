"""How big anything a job holds may be, and the years it may name; the
checks every field's rule uses (storable text of a bounded length, a time
in range), which name the field that is wrong."""

from __future__ import annotations

from datetime import datetime

from cronfleet.errors import CronfleetError, InvalidSpec

MAX_NOTIFY_TARGETS = 10
MAX_COMMAND_BYTES = 64 * 1024
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600

# Bounds of every string and list a job holds (characters, or entries), so
# that no field can make a job, a reply or a worker's message unbounded.
MAX_NAME = 200
MAX_SCHEDULE = 1024
MAX_TIMEZONE = 64
MAX_IMAGE = 512
MAX_STEPS = 100
MAX_ENV_VARS = 200
MAX_ENV_NAME = 256
MAX_ENV_VALUE = 32 * 1024
MAX_URL = 2048
MAX_HEADERS = 50
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 8 * 1024
MAX_LIST = 50  # expect_status, after, retry.on
MAX_EXIT_CODES = 256
MAX_CONCURRENCY = 10_000
MAX_BACKOFF_SECONDS = 7 * 24 * 3600.0
MAX_MULTIPLIER = 100.0
# Without the workers' maximums (a test's service), what a run may still not ask.
MAX_CPUS = 1024.0
MAX_MEMORY_MB = 1 << 20
MAX_PIDS = 1 << 20
# Times a job (or a preview, or a backfill) may name: far enough for any
# job, and far enough from datetime's own ends that the fires after and the
# minutes before them are still dates.
EARLIEST_YEAR = 1970
LATEST_YEAR = 9000


def storable(text: str) -> bool:
    """Text Postgres and UTF-8 can hold: no NUL, no unpaired surrogate."""
    if "\0" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_text(
    value: str, field: str, most: int, error: type[CronfleetError] = InvalidSpec, *, what: str = "characters"
) -> None:
    """At most ``most`` characters of storable text, or ``error`` naming ``field``."""
    if len(value) > most:
        raise error(f"must be at most {most:,} {what}", field=field)
    if not storable(value):
        raise error("must be text without NUL characters", field=field)


def check_moment(moment: datetime | None, field: str) -> None:
    """A time from the years cronfleet computes fires in, or InvalidSpec naming ``field``."""
    if moment is not None and not EARLIEST_YEAR <= moment.year < LATEST_YEAR:
        raise InvalidSpec(f"must be in the years {EARLIEST_YEAR}-{LATEST_YEAR - 1}", field=field)
