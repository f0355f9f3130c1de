"""Throttles and quotas: what one account, one client address or one user
may do in a while.

Login and signup are throttled with token buckets kept in Postgres
(``throttles``), so every gateway replica counts against the same buckets: a
bucket holds ``capacity`` tokens and refills evenly over its window; each
attempt takes one. Quotas are counted from the user's own rows, in the
transaction that would pass them, with the user's row locked, so two
concurrent requests cannot both take the last place.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from cronfleet.db import Database, Session
from cronfleet.errors import QuotaExceeded, RateQuotaExceeded, Throttled
from cronfleet.records import User

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``capacity`` tokens, refilled over ``window_seconds``;
    ``name`` is the limit as an error names it. A capacity of 0 is no limit."""

    name: str
    capacity: int
    window_seconds: float
    what: str  # "failed logins or signups for this account"

    @property
    def per_second(self) -> float:
        return self.capacity / self.window_seconds

    def describe(self) -> str:
        return f"at most {self.capacity} {self.what} per {_duration(self.window_seconds)}"


@dataclass(frozen=True)
class AuthLimits:
    """Login and signup throttles (``CRONFLEET_AUTH_*``)."""

    account_failures: int = 10
    account_window_seconds: float = 900.0
    address_requests: int = 30
    address_window_seconds: float = 60.0

    @property
    def account(self) -> Bucket:
        return Bucket(
            "login_failures_per_account",
            self.account_failures,
            self.account_window_seconds,
            "failed logins or signups for one account",
        )

    @property
    def address(self) -> Bucket:
        return Bucket(
            "auth_requests_per_address",
            self.address_requests,
            self.address_window_seconds,
            "login and signup requests from one address",
        )


@dataclass(frozen=True)
class Quotas:
    """Per-user quotas (``CRONFLEET_QUOTA_*``); 0 is no quota."""

    jobs: int = 10_000
    runs_per_minute: int = 12_000


# ------------------------------------------------------------------ throttles
def account_key(email: str) -> str:
    """The bucket of one account, by the email asked for, whether or not an
    account has it (so throttling says nothing about which emails exist). Only
    a hash is kept: the table is not a list of the addresses people tried."""
    return "account:" + hashlib.sha256(email.encode(errors="surrogatepass")).hexdigest()[:32]


def address_key(address: str) -> str:
    """The bucket of one client address; IPv6 by its /64, which one client
    usually has whole."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"address:{address[:100]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"address:{ip.ipv4_mapped}"
        return f"address:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"address:{ip}"


async def take_token(db: Database, bucket: Bucket, key: str) -> None:
    """Take one token from ``key``'s bucket, or raise Throttled (429) naming the
    limit and when a token will be there again."""
    if bucket.capacity <= 0:
        return
    params = {"key": key, "capacity": float(bucket.capacity), "per_second": bucket.per_second}
    if await db.fetch_one("take_token", params) is not None:
        return
    row = await db.fetch_one("throttle_wait", {"key": key})
    wait = math.ceil(row["seconds"]) if row is not None else 1
    raise Throttled(
        f"too many attempts: {bucket.describe()}; try again in {max(wait, 1)} s",
        field=bucket.name,
        retry_after=wait,
    )


async def give_token(db: Database, bucket: Bucket, key: str) -> None:
    """Give back the token an attempt took (it succeeded: only failures count)."""
    if bucket.capacity > 0:
        await db.execute("give_token", {"key": key})


# --------------------------------------------------------------------- quotas
async def check_jobs(
    tx: Session,
    user: User,
    quotas: Quotas,
    *,
    new_live: int,
    new_fires_per_minute: int,
    except_ids: tuple[object, ...] = (),
) -> None:
    """Refuse (422) a write that would leave the user more live jobs, or a
    higher planned fire rate, than the quotas allow. ``except_ids``: jobs the
    write replaces (their old share is not counted)."""
    if not (quotas.jobs or quotas.runs_per_minute) or not (new_live or new_fires_per_minute):
        return
    await tx.execute("lock_user", {"id": user.id})
    usage = await tx.fetch_one("owner_usage", {"owner_id": user.id, "except_ids": list(except_ids)})
    assert usage is not None  # an aggregate always answers
    live = usage["live_jobs"] + new_live
    if quotas.jobs and new_live and live > quotas.jobs:
        raise QuotaExceeded(
            f"at most {quotas.jobs:,} live jobs (active or paused) per user; this would make {live:,}",
            field="jobs_per_user",
        )
    rate = usage["fires_per_minute"] + new_fires_per_minute
    if quotas.runs_per_minute and new_fires_per_minute and rate > quotas.runs_per_minute:
        raise QuotaExceeded(
            f"at most {quotas.runs_per_minute:,} runs per minute per user; your active jobs "
            f"would fire up to {rate:,} times a minute",
            field="runs_per_minute",
        )


async def check_runs(tx: Session, user: User, quotas: Quotas, *, adding: int, now: datetime) -> None:
    """Refuse (429, with when to try again) runs started outside the schedule
    (a manual run, a run-now job, a replay, a backfill) when, with the user's
    runs due in the last minute (and those about to start), they would pass
    the runs-per-minute quota."""
    if not quotas.runs_per_minute or adding <= 0:
        return
    if adding > quotas.runs_per_minute:
        raise QuotaExceeded(
            f"at most {quotas.runs_per_minute:,} runs per minute per user; this asks for {adding:,}",
            field="runs_per_minute",
        )
    await tx.execute("lock_user", {"id": user.id})
    window = {"owner_id": user.id, "since": now - MINUTE, "until": now + MINUTE}
    row = await tx.fetch_one("owner_recent_runs", window | {"skip": 0})
    assert row is not None
    over = row["n"] + adding - quotas.runs_per_minute
    if over <= 0:
        return
    # The run whose leaving the window makes room: the over-th oldest.
    oldest = await tx.fetch_one("owner_recent_runs", window | {"skip": over - 1})
    at = oldest["at"] if oldest is not None and oldest["at"] is not None else now
    raise RateQuotaExceeded(
        f"at most {quotas.runs_per_minute:,} runs per minute per user; {row['n']:,} are due in the "
        "last minute",
        field="runs_per_minute",
        retry_after=math.ceil((at + MINUTE - now).total_seconds()),
    )


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        n = int(seconds // 3600)
        return "hour" if n == 1 else f"{n} hours"
    if seconds % 60 == 0:
        n = int(seconds // 60)
        return "minute" if n == 1 else f"{n} minutes"
    return f"{seconds:g} s"
