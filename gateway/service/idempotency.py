"""Idempotency keys: a client that retries a create or a run with the same
``Idempotency-Key`` gets the first reply back and nothing is created twice;
the same key with another request is a conflict. Keys are per user, kept in
Postgres for 24 hours, and taken in the transaction that does the work."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from cronfleet.db import Session
from cronfleet.errors import Conflict, InvalidArgument
from cronfleet.records import User

KEY_TTL_SECONDS = 24 * 3600  # pruned by the coordinator (coordinator.retention)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotentRequest:
    """One request made under ``key``; ``fingerprint`` tells two requests apart."""

    key: str
    fingerprint: bytes

    @classmethod
    def of(cls, key: str, operation: str, body: Any) -> IdempotentRequest:
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidArgument(f"must be 1-{MAX_KEY_LENGTH} printable characters", field="Idempotency-Key")
        canonical = json.dumps({"operation": operation, "body": body}, sort_keys=True, default=str)
        return cls(key, hashlib.sha256(canonical.encode()).digest())


async def earlier_reply(tx: Session, user: User, request: IdempotentRequest) -> dict[str, Any] | None:
    """The reply saved under this key, or None when the key is now ours (the
    caller does the work, then :func:`save_reply`). Raises Conflict when the
    key was used for another request."""
    params = {
        "owner_id": user.id,
        "key": request.key,
        "request_hash": request.fingerprint,
        "ttl": KEY_TTL_SECONDS,
    }
    if await tx.fetch_one("claim_idempotency_key", params) is not None:
        return None
    row = await tx.fetch_one("get_idempotency_key", {"owner_id": user.id, "key": request.key})
    assert row is not None  # it exists: that is why the claim returned nothing
    if bytes(row["request_hash"]) != request.fingerprint:
        raise Conflict("this Idempotency-Key was used with a different request", field="Idempotency-Key")
    reply: dict[str, Any] = row["reply"]
    return reply


async def save_reply(
    tx: Session, user: User, request: IdempotentRequest, status_code: int, reply: dict[str, Any]
) -> None:
    """What the first request created (ids, not bodies: a replay reads them afresh)."""
    await tx.execute(
        "save_idempotent_reply",
        {"owner_id": user.id, "key": request.key, "status_code": status_code, "reply": Jsonb(reply)},
    )
