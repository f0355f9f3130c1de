"""Alerts: what a job's owner asked to hear of (``notify``), recorded in the
transaction that records the event and sent later by the coordinators
(coordinator.alert_delivery), so an alert is never lost with a process and
sending never holds up a fire.

Events, by kind: ``failed`` and ``timed_out`` (each such attempt), ``dead``
(an attempt that failed for good), ``recovered`` (a success after a failed or
timed-out run), ``missed`` (a fire skipped, or run later than the misfire
grace). Each (execution, kind) alerts at most once.

What a target gets: ``json``, the alert as JSON, signed with the owner's
secret (``X-Cronfleet-Signature: sha256=<hex HMAC-SHA256 of the body>``);
``slack``, a Slack incoming-webhook message ({"text": ...}) made from it.
Every attempt of a delivery sends the same bytes, and ``X-Cronfleet-Alert-Id``
lets a receiver drop a second copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronfleet.codec import jsonapi
from cronfleet.db import Session
from cronfleet.records import Execution, Succeeded

SIGNATURE_HEADER = "X-Cronfleet-Signature"


@dataclass(frozen=True)
class Event:
    """Something that may alert: ``kind`` (models.NOTIFY_EVENTS) of an execution."""

    execution_id: int
    kind: str
    detail: str = ""


async def record(tx: Session, events: Iterable[Event]) -> int:
    """Alerts (with their deliveries) for the events someone asked to hear
    of; how many deliveries were made."""
    events = list(events)
    if not events:
        return 0
    made = await tx.fetch_all(
        "insert_alerts",
        {
            "execution_ids": [e.execution_id for e in events],
            "kinds": [e.kind for e in events],
            "details": [e.detail or None for e in events],
        },
    )
    return len(made)


async def of_outcomes(
    tx: Session, ended: list[Execution], dead: Mapping[int, str], succeeded: list[Succeeded]
) -> list[Event]:
    """The events of attempts that just ended: each failed or timed-out one
    of ``ended``, each that became a dead letter (``dead``: execution id ->
    reason), and each of ``succeeded`` that recovers its job."""
    events = [Event(e.id, e.status) for e in ended if e.status in ("failed", "timed_out")]
    events += [Event(execution_id, "dead", reason) for execution_id, reason in dead.items()]
    succeeded = [e for e in succeeded if e.tells_recovery]
    if succeeded:
        recovered = await tx.fetch_all(
            "recoveries",
            {
                "ids": [e.id for e in succeeded],
                "scheduled": [e.scheduled_at for e in succeeded],
                "job_ids": [e.job_id for e in succeeded],
            },
        )
        events += [Event(r["id"], "recovered") for r in recovered]
    return events


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body(
    alert_id: int, created_at: datetime, payload: Mapping[str, Any], fmt: str, public_url: str = ""
) -> bytes:
    """What a target of ``fmt`` is sent for this alert: the same bytes each time."""
    event = {"id": str(alert_id), "created_at": jsonapi.iso(created_at), **payload}
    if public_url and payload.get("execution_id"):
        event["url"] = f"{public_url.rstrip('/')}/api/v1/executions/{payload['execution_id']}"
    if fmt == "slack":
        text = jsonapi.alert_summary(payload)
        if "url" in event:
            text += f" <{event['url']}|run {payload['execution_id']}>"
        return json.dumps({"text": text}).encode()
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
