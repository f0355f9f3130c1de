"""What every area of the service layer shares: its dependencies, the
caller's job (read, or locked for a change), paging, ids from the outside,
and the link a user opens for a run's output."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from cronfleet.codec import rows
from cronfleet.db import Database, Row, Session
from cronfleet.errors import InvalidArgument, NotFound, TooLong
from cronfleet.logstore import LogStore
from cronfleet.models import Job, Resources, check_text
from cronfleet.records import Execution, User
from cronfleet.schedule import DEFAULT_MISFIRE_CATCHUP
from cronfleet.sealing import SecretKey
from gateway.service.limits import AuthLimits, Quotas

MAX_PAGE = 500
DEFAULT_PAGE = 100
MAX_PAGE_TOKEN = 1024
MAX_QUERY_TEXT = 200
MAX_SERIAL = (1 << 63) - 1  # bigint
_SERIAL = re.compile(r"[0-9]{1,19}")


class ServiceBase:
    def __init__(
        self,
        db: Database,
        logs: LogStore,
        *,
        shards: int,
        token_ttl: timedelta,
        limits: Resources | None = None,
        misfire_catchup: timedelta = DEFAULT_MISFIRE_CATCHUP,
        secret_key: SecretKey | None = None,
        auth_limits: AuthLimits = AuthLimits(),
        quotas: Quotas = Quotas(),
    ) -> None:
        self.db = db
        self.logs = logs
        self.shards = shards
        self.token_ttl = token_ttl
        self.limits = limits  # the most a run may ask for (the workers' maximums)
        self.misfire_catchup = misfire_catchup  # how far back resume runs missed fires (run_all)
        self.secret_key = secret_key  # seals secret env values; None: they are refused
        self.auth_limits = auth_limits  # login and signup throttles
        self.quotas = quotas  # per-user quotas

    async def _job_row(self, user: User, job_id: str) -> Row:
        """The caller's job (deleted ones too); NotFound for anyone else's."""
        row = await self.db.fetch_one("get_job", {"id": parse_uuid(job_id, "job"), "owner_id": user.id})
        if row is None:
            raise NotFound(f"no such job {job_id}")
        return row

    async def _lock(self, tx: Session, user: User, job_id: str) -> Job:
        """The caller's job, its row locked for a change; NotFound for anyone
        else's and for a deleted one."""
        row = await tx.fetch_one("lock_job", {"id": parse_uuid(job_id, "job"), "owner_id": user.id})
        if row is None:
            raise NotFound(f"no such job {job_id}")
        if row["status"] == "deleted":
            raise NotFound(f"job {job_id} is deleted")
        return rows.job_from_row(row)

    async def _with_link(self, execution: Execution) -> Execution:
        """The execution as users see it: log_url is a link they can open."""
        if not execution.log_url or execution.log_removed_at is not None:
            return dataclasses.replace(execution, log_url=None)
        # 0 bytes: never stored (logstore), read as empty through the gateway.
        link = await self.logs.link(self._log_key(execution), execution.id, empty=execution.log_bytes == 0)
        return dataclasses.replace(execution, log_url=link)

    def _log_key(self, e: Execution) -> str:
        return self.logs.key_for(e.owner_id, e.job_id, e.id, e.attempt)


def encode_page_token(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts, default=str).encode()).decode()


def decode_page_token(token: str, shape: tuple[type, ...]) -> list[Any]:
    """A token :func:`encode_page_token` made: its parts, of the types in ``shape``."""
    try:
        if len(token) > MAX_PAGE_TOKEN:
            raise ValueError("too long")
        parts = list(json.loads(base64.urlsafe_b64decode(token.encode())))
        if len(parts) != len(shape) or not all(isinstance(p, t) for p, t in zip(parts, shape, strict=True)):
            raise ValueError("not ours")
        return parts
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidArgument("is not a token this server issued", field="page_token") from exc


def page_after_id(token: str) -> int:
    """The serial id a list by id (newest first) goes on below."""
    (before,) = decode_page_token(token, (int,))
    if not 0 <= before <= MAX_SERIAL:
        raise InvalidArgument("is not a token this server issued", field="page_token")
    return int(before)


def page_after_fire(token: str) -> tuple[datetime, int]:
    """Where a list of runs by fire time (newest first, then by id) goes on
    below: (scheduled_at, id) of the last one shown."""
    at, before = decode_page_token(token, (str, int))
    fired = page_time(at)
    if fired.tzinfo is None or not 0 <= before <= MAX_SERIAL:
        raise InvalidArgument("is not a token this server issued", field="page_token")
    return fired, int(before)


def page_time(text: str) -> datetime:
    """A time a page token carries (as :func:`encode_page_token` got it, ISO 8601)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidArgument("is not a token this server issued", field="page_token") from exc


def page_size(limit: int | None) -> int:
    """A list's page: 100 by default, at most MAX_PAGE (a larger limit is
    clamped to it; the next page's token says there is more)."""
    if limit is None or limit == 0:
        return DEFAULT_PAGE
    if limit < 0:
        raise InvalidArgument(f"must be 1-{MAX_PAGE}", field="limit")
    return min(limit, MAX_PAGE)


def query_text(value: str | None, field: str, most: int = MAX_QUERY_TEXT) -> str | None:
    """A free-text query parameter (a name filter, a worker id), bounded."""
    if value:
        check_text(value, field, most, TooLong)
    return value or None


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """An id from a path or a body; one that cannot exist is simply not found."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise NotFound(f"no such {what} {str(value)[:100]!r}") from exc


def parse_serial(value: str, what: str) -> int:
    """A serial id (executions, dead letters); one that cannot exist is not found."""
    text = str(value)
    if not _SERIAL.fullmatch(text) or int(text) > MAX_SERIAL:
        raise NotFound(f"no such {what} {text[:100]!r}")
    return int(text)
