"""HTTP jobs: a call to an API instead of a command, made by the worker with
one pooled client (no container). Released at the fire time like any run;
the response status, its timing and the first 64 KiB of the body are the
run's log. A status outside ``expect_status`` (any 2xx when empty) or a
connection error is a failure the retry policy sees.

Outbound calls go only where the operator allows (cronfleet.outbound).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from cronfleet.outbound import OutboundPolicy, Unreachable
from cronfleet.v1 import dispatch_pb2
from worker.runtime import BeginsAtRelease, RunOutcome, RunRejected, RunSpec

BODY_LIMIT = 64 * 1024


class HttpRuntime:
    name = "http"
    paced = False
    follow_up_uses_engine = False
    arm_slots: int | None = None
    writes_files = True  # the response body is the run's output

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        # One pooled client for every HTTP job of this worker.
        self.client = httpx.AsyncClient(follow_redirects=False)

    async def keep_warm(self, stop: asyncio.Event, quiet: Callable[[], Awaitable[None]]) -> None:
        return None  # the client pools its own connections

    def expect(self, source: str, profiles: list[dispatch_pb2.ProfileCount]) -> None:
        return None

    async def arm(self, spec: RunSpec) -> HttpRun:
        assert spec.http is not None
        try:
            await self.policy.check(spec.http.url)
        except Unreachable as exc:
            raise RunRejected(str(exc)) from exc
        return HttpRun(self.client, spec)

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class HttpRun(BeginsAtRelease):
    client: httpx.AsyncClient
    spec: RunSpec
    killed_for: str = ""
    cold: bool | None = None
    container_id: str = ""
    task: asyncio.Task[RunOutcome] | None = None
    _started: float = field(default=0.0)

    async def release(self) -> None:
        self._started = time.monotonic()
        self.task = asyncio.create_task(self._call())

    async def wait(self) -> RunOutcome:
        if self.task is None:  # killed before its time
            return RunOutcome(self.killed_for or "cancelled", None, f"stopped: {self.killed_for}")
        try:
            return await self.task
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if caller is not None and caller.cancelling():
                raise  # the caller is being cancelled, not the call
            return RunOutcome(self.killed_for, None, f"stopped: {self.killed_for}")

    async def kill(self, reason: str) -> None:
        self.killed_for = self.killed_for or reason
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait((self.task,))  # a cancel of ours still arrives here

    @property
    def output_ended(self) -> bool:
        return False  # no live output: the log is written once the response is in

    async def snapshot(self) -> None:
        return None  # the log is written once the response is in

    async def read_checkpoint(self) -> bytes | None:
        return None  # a call has no checkpoint

    async def _call(self) -> RunOutcome:
        call = self.spec.http
        assert call is not None
        timeout = call.timeout_seconds or self.spec.timeout_seconds
        request = f"> {call.method.upper()} {call.url}\n"
        try:
            response = await self.client.request(
                call.method.upper(), call.url, headers=call.headers, content=call.body, timeout=timeout
            )
        except httpx.TimeoutException:
            self._log(request + f"< no response within {timeout}s\n")
            return RunOutcome("timed_out", None, f"exceeded timeout of {timeout}s")
        except httpx.HTTPError as exc:
            self._log(request + f"< connection failed: {exc}\n")
            return RunOutcome("failed", None, f"connection failed: {exc}")
        elapsed_ms = (time.monotonic() - self._started) * 1000
        body = response.content[:BODY_LIMIT]
        note = f"\n[body truncated at {BODY_LIMIT} bytes]\n" if len(response.content) > BODY_LIMIT else ""
        head = f"< {response.status_code} {response.reason_phrase} in {elapsed_ms:.1f} ms\n\n"
        self._log(request + head, body, note)
        expected = call.expect_status or tuple(range(200, 300))
        if response.status_code in expected:
            return RunOutcome("succeeded", None)
        want = ", ".join(map(str, call.expect_status)) if call.expect_status else "2xx"
        return RunOutcome("failed", None, f"HTTP {response.status_code} (expected {want})")

    def _log(self, text: str, body: bytes = b"", note: str = "") -> None:
        self.spec.run_dir.mkdir(parents=True, exist_ok=True)
        self.spec.spool_path.write_bytes(text.encode() + body + note.encode())
