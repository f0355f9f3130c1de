"""What every area of the service layer shares: its dependencies, paging,
ids from the outside, and the link a user opens for a run's output."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from datetime import timedelta
from typing import Any

from cronfleet.db import Database, Row
from cronfleet.errors import InvalidArgument, NotFound
from cronfleet.logstore import LogStore
from cronfleet.models import Resources
from cronfleet.records import Execution, User
from cronfleet.schedule import DEFAULT_MISFIRE_CATCHUP
from cronfleet.sealing import SecretKey

MAX_PAGE = 500
DEFAULT_PAGE = 100


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
    ) -> None:
        self.db = db
        self.logs = logs
        self.shards = shards
        self.token_ttl = token_ttl
        self.limits = limits  # the most a run may ask for (the workers' maximums)
        self.misfire_catchup = misfire_catchup  # how far back resume runs missed fires (run_all)
        self.secret_key = secret_key  # seals secret env values; None: they are refused

    async def _job_row(self, user: User, job_id: str) -> Row:
        """The caller's job (deleted ones too); NotFound for anyone else's."""
        row = await self.db.fetch_one("get_job", {"id": parse_uuid(job_id, "job"), "owner_id": user.id})
        if row is None:
            raise NotFound(f"no such job {job_id}")
        return row

    async def _with_link(self, execution: Execution) -> Execution:
        """The execution as users see it: log_url is a link they can open."""
        if not execution.log_url:
            return execution
        link = await self.logs.link(self._log_key(execution), execution.id)
        return dataclasses.replace(execution, log_url=link)

    def _log_key(self, e: Execution) -> str:
        return self.logs.key_for(e.owner_id, e.job_id, e.id, e.attempt)


def encode_page_token(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts, default=str).encode()).decode()


def decode_page_token(token: str) -> list[Any]:
    try:
        return list(json.loads(base64.urlsafe_b64decode(token.encode())))
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("is not a token this server issued", field="page_token") from exc


def page_size(limit: int | None) -> int:
    if limit is None or limit == 0:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"must be 1-{MAX_PAGE}", field="limit")
    return limit


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """An id from a path or a body; one that cannot exist is simply not found."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise NotFound(f"no such {what} {value!r}") from exc


def parse_serial(value: str, what: str) -> int:
    if not str(value).isdigit():
        raise NotFound(f"no such {what} {value!r}")
    return int(value)
