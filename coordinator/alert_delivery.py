"""Sending alerts: every coordinator (leader or not) takes due deliveries
from the outbox (``take_deliveries``: SKIP LOCKED, so senders share the work
and never take the same one) and posts them, a few at a time.

A delivery is held while it is tried: its next_attempt_at moves past the
longest a try may take, so if this process dies mid-request another sender
tries it again after that (at least once; the receiver tells a second copy by
``X-Cronfleet-Alert-Id``). A try that fails is tried again later with
exponential backoff, up to ``alert_max_attempts``; a destination the
outbound policy refuses (also as a redirect's target) fails at once.
Nothing here is on the fire path. A receiver that hangs holds a slot per
try for ``alert_timeout_seconds``, and at most a quarter of the slots, so
one slow receiver does not hold up the alerts of others.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
import urllib.parse
from typing import Any

import httpx
import structlog

from cronfleet import alerts, metrics
from cronfleet.aio import until
from cronfleet.config import Settings
from cronfleet.db import Database, Row
from cronfleet.errors import CronfleetError
from cronfleet.outbound import Blocked, OutboundPolicy, Unreachable

log = structlog.get_logger()
MAX_REDIRECTS = 3
GIVE_BACK_SECONDS = 1.0  # a delivery whose receiver is busy is due again this soon


class Refused(Exception):
    """Not to be tried again: the destination is refused."""


class AlertSender:
    def __init__(self, db: Database, settings: Settings, policy: OutboundPolicy | None = None) -> None:
        self.db = db
        self.settings = settings
        self.policy = policy or OutboundPolicy.from_settings(settings)
        self._tries: set[asyncio.Task[None]] = set()
        self._per_receiver: collections.Counter[str] = collections.Counter()  # tries in flight
        self._slot_free = asyncio.Event()

    @property
    def per_receiver(self) -> int:
        """The most tries in flight to one receiver (host:port)."""
        return max(1, self.settings.alert_concurrency // 4)

    @property
    def hold_seconds(self) -> float:
        """How long a taken delivery stays this sender's: longer than any try."""
        return self.settings.alert_timeout_seconds + 5.0

    async def run(self, stop: asyncio.Event) -> None:
        timeout = httpx.Timeout(self.settings.alert_timeout_seconds)
        async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as client:
            try:
                while not stop.is_set():
                    self._slot_free.clear()
                    taken = await self._take_due(client)
                    if not taken or len(self._tries) >= self.settings.alert_concurrency:
                        # Nothing due, or no slot: look again after a while or when a try ends.
                        await until(asyncio.sleep(self.settings.alert_poll_interval), stop, self._slot_free)
            finally:
                for task in self._tries:
                    task.cancel()  # held deliveries are tried again by a sender after the hold
                await asyncio.gather(*self._tries, return_exceptions=True)

    async def _take_due(self, client: httpx.AsyncClient) -> int:
        free = self.settings.alert_concurrency - len(self._tries)
        if free <= 0:
            return 0
        try:
            due = await self.db.fetch_all(
                "take_deliveries", {"hold_seconds": self.hold_seconds, "limit": free}
            )
        except CronfleetError as exc:
            log.warning("alert_take_failed", error=str(exc))
            return 0
        busy = []
        for delivery in due:
            receiver = _receiver(delivery["target"])
            if self._per_receiver[receiver] >= self.per_receiver:
                busy.append(delivery["id"])
                continue
            self._per_receiver[receiver] += 1
            task = asyncio.create_task(self._try(client, delivery))
            self._tries.add(task)
            task.add_done_callback(functools.partial(self._done, receiver))
        if busy:
            try:
                await self.db.execute(
                    "give_back_deliveries", {"ids": busy, "after_seconds": GIVE_BACK_SECONDS}
                )
            except CronfleetError as exc:  # held: taken again after the hold
                log.warning("alert_give_back_failed", error=str(exc))
        return len(due) - len(busy)

    def _done(self, receiver: str, task: asyncio.Task[None]) -> None:
        self._tries.discard(task)
        self._per_receiver[receiver] -= 1
        if self._per_receiver[receiver] <= 0:
            del self._per_receiver[receiver]
        self._slot_free.set()

    async def _try(self, client: httpx.AsyncClient, delivery: Row) -> None:
        """One try of one delivery, and its outcome recorded."""
        started = time.perf_counter()
        status_code: int | None = None
        if delivery["attempts"] > self.settings.alert_max_attempts:  # the last try's sender died mid-request
            await self._record(delivery, None, "tries spent", refused=True)
            return
        try:
            async with asyncio.timeout(self.settings.alert_timeout_seconds):
                status_code = await self._post(client, delivery)
            error = None if 200 <= status_code < 300 else f"HTTP {status_code}"
            refused = False
        except Refused as exc:
            error, refused = str(exc), True
        except TimeoutError:
            error, refused = f"no answer within {self.settings.alert_timeout_seconds:g}s", False
        except (httpx.HTTPError, Unreachable) as exc:
            error, refused = f"connection failed: {str(exc) or type(exc).__name__}", False
        except Exception as exc:  # a bug here must not stop the sender; tried again later
            log.exception("alert_try_crashed", delivery_id=delivery["id"])
            error, refused = f"internal error: {type(exc).__name__}", False
        metrics.ALERT_DELIVERY_DURATION.observe(time.perf_counter() - started)
        await self._record(delivery, status_code, error, refused)

    async def _post(self, client: httpx.AsyncClient, delivery: Row) -> int:
        """POST the alert, following at most MAX_REDIRECTS redirects, each
        to a destination the policy allows; the final status code."""
        content = alerts.body(
            delivery["alert_id"],
            delivery["created_at"],
            delivery["payload"],
            delivery["format"],
            self.settings.public_url,
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "cronfleet-alerts/1",
            "X-Cronfleet-Alert-Id": str(delivery["alert_id"]),
            "X-Cronfleet-Event": delivery["kind"],
            "X-Cronfleet-Delivery-Attempt": str(delivery["attempts"]),
        }
        if delivery["webhook_secret"]:
            headers[alerts.SIGNATURE_HEADER] = alerts.sign(delivery["webhook_secret"], content)
        url = delivery["target"]
        for _ in range(MAX_REDIRECTS + 1):
            try:
                await self.policy.check(url)
            except Blocked as exc:
                raise Refused(f"refused: {exc}") from exc
            request = client.build_request("POST", url, content=content, headers=headers)
            response = await client.send(request, stream=True)  # the status is all we want
            await response.aclose()
            if not response.is_redirect:
                return response.status_code
            url = urllib.parse.urljoin(url, response.headers.get("location", ""))
        raise Refused(f"refused: more than {MAX_REDIRECTS} redirects")

    async def _record(self, delivery: Row, status_code: int | None, error: str | None, refused: bool) -> None:
        attempts = delivery["attempts"]
        retry_in: float | None = None
        if error is None:
            status, outcome = "delivered", "delivered"
        elif refused or attempts >= self.settings.alert_max_attempts:
            status, outcome = "failed", "failed"
        else:
            status, outcome, retry_in = "pending", "retried", self.backoff(attempts)
        metrics.ALERT_DELIVERIES.labels(outcome).inc()
        params: dict[str, Any] = {
            "id": delivery["id"],
            "status": status,
            "error": error,
            "status_code": status_code,
            "retry_in": retry_in,
            "attempts": attempts,
        }
        try:
            await self.db.execute("delivery_done", params)
        except CronfleetError as exc:  # held: tried again after the hold
            log.warning("alert_record_failed", delivery_id=delivery["id"], error=str(exc))
            return
        logged = log.info if status == "delivered" else log.warning
        logged(
            "alert_delivery",
            alert_id=delivery["alert_id"],
            job_id=delivery["payload"].get("job_id"),
            execution_id=delivery["payload"].get("execution_id"),
            kind=delivery["kind"],
            outcome=outcome,
            attempt=attempts,
            error=error,
        )

    def backoff(self, attempts: int) -> float:
        """Seconds before the try after ``attempts`` tries."""
        s = self.settings
        return float(min(s.alert_retry_max_seconds, s.alert_retry_base_seconds * 2 ** (attempts - 1)))


def _receiver(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
