"""HTTP jobs: a call to an API instead of a command, made by the worker with
one pooled client (no container). Released at the fire time like any run;
the response status, its timing and the first 64 KiB of the body are the
run's log. A status outside ``expect_status`` (any 2xx when empty) or a
connection error is a failure the retry policy sees.

Outbound calls go only where the operator allows: by default not to
loopback, link-local or unspecified addresses, nor to the cluster's own
hosts (Postgres, etcd, S3, the gateway), so a user cannot aim cronfleet at
its own insides. ``CRONFLEET_HTTP_ALLOW_INTERNAL`` lifts that (the local
cluster and tests); ``HTTP_DENY_NETWORKS`` and ``HTTP_ALLOW_NETWORKS`` refine it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from cronfleet.config import Settings
from cronfleet.v1 import dispatch_pb2
from worker.runtime import RunOutcome, RunRejected, RunSpec

BODY_LIMIT = 64 * 1024
INTERNAL_NETWORKS = ("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class OutboundPolicy:
    """Where HTTP jobs may call."""

    deny: tuple[Network, ...] = ()
    allow: tuple[Network, ...] = ()  # when set, only these
    deny_hosts: frozenset[str] = frozenset()  # the cluster's own host names and addresses

    @classmethod
    def from_settings(cls, s: Settings) -> OutboundPolicy:
        deny = [n for n in s.http_deny_networks.split(",") if n.strip()]
        hosts: set[str] = set()
        if not s.http_allow_internal:
            deny += INTERNAL_NETWORKS
            hosts = _cluster_hosts(s)
        allow = [n for n in s.http_allow_networks.split(",") if n.strip()]
        return cls(
            deny=tuple(ipaddress.ip_network(n.strip(), strict=False) for n in deny),
            allow=tuple(ipaddress.ip_network(n.strip(), strict=False) for n in allow),
            deny_hosts=frozenset(hosts),
        )

    async def check(self, url: str) -> None:
        """Raise RunRejected unless every address ``url``'s host resolves to is allowed."""
        host = urllib.parse.urlsplit(url).hostname or ""
        if host.lower() in self.deny_hosts:
            raise RunRejected(f"blocked_destination: {host} is one of the cluster's own hosts")
        for address in await _resolve(host):
            if address.compressed in self.deny_hosts or any(address in n for n in self.deny):
                raise RunRejected(f"blocked_destination: {host} ({address}) is not allowed")
            if self.allow and not any(address in n for n in self.allow):
                raise RunRejected(f"blocked_destination: {host} ({address}) is outside the allowed networks")


def _cluster_hosts(s: Settings) -> set[str]:
    urls = [s.database_url, s.s3_endpoint_url, s.public_url]
    urls += [f"//{a}" for a in (s.http_addr, s.grpc_addr, *s.etcd_endpoints.split(","))]
    hosts = {urllib.parse.urlsplit(u.strip()).hostname or "" for u in urls if u.strip()}
    return {h.lower() for h in hosts if h and h not in ("0.0.0.0", "::")}


async def _resolve(host: str) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RunRejected(f"connection failed: cannot resolve {host}: {exc.strerror}") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


class HttpRuntime:
    name = "http"
    paced = False

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
        await self.policy.check(spec.http.url)
        return HttpRun(self.client, spec)

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class HttpRun:
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
            return RunOutcome(self.killed_for, None, f"stopped: {self.killed_for}")

    async def kill(self, reason: str) -> None:
        self.killed_for = self.killed_for or reason
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

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
