"""etcd: liveness (a leased session), membership, leadership (an election).

Liveness is separate from leadership, as in etcd's Go concurrency package: a
:class:`Session` keeps a lease alive and sets ``lost`` when it cannot;
:func:`stay_registered` keeps a member key under a session, re-registering
after a loss; :func:`campaign` tries for the leader key with that lease. The
leader key's create revision is the fencing epoch that the coordinator
writes to Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aetcd
import structlog

from cronfleet.aio import sleep_or, until, within
from cronfleet.errors import Unavailable

log = structlog.get_logger()
CALL_TIMEOUT = 3


def connect(endpoints: str) -> aetcd.Client:
    """A client for the comma-separated ``host:port`` endpoints: one gRPC
    channel over all of them (``ipv4:a,b,c``, round robin), so that when a
    member dies calls go to the others at once (pick-first waited out a
    call's timeout first); the cluster's state, leases included, lives on."""
    addresses = [_ipv4(e.strip().split("://")[-1]) for e in endpoints.split(",")]
    target = "ipv4:" + ",".join(addresses)
    host, _, port = target.rpartition(":")  # aetcd joins them back as host:port
    return aetcd.Client(host=host, port=int(port), timeout=CALL_TIMEOUT, options=CHANNEL_OPTIONS)


# Round robin over the members; a member that comes back is tried again
# within a second (gRPC's reconnect backoff grows to 2 min by default).
CHANNEL_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
    "grpc.lb_policy_name": "round_robin",
}


def _ipv4(endpoint: str) -> str:
    """``host:port`` with the host resolved (the ipv4: target takes addresses)."""
    host, _, port = endpoint.rpartition(":")
    address = socket.getaddrinfo(host or "127.0.0.1", int(port), socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    return f"{address}:{port}"


@contextlib.asynccontextmanager
async def connected(endpoints: str) -> AsyncIterator[aetcd.Client]:
    """A client for the life of a role; closed (quietly, if etcd is gone) after."""
    client = connect(endpoints)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):  # closing a client whose server is gone is not an error
            await client.close()


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def leader(self) -> bytes:
        return f"{self.prefix}/leader".encode()

    @property
    def shard_map(self) -> bytes:
        return f"{self.prefix}/shardmap".encode()

    def members(self, role: str) -> bytes:
        return self.all_members() + f"{role}/".encode()

    def all_members(self) -> bytes:
        return f"{self.prefix}/members/".encode()

    def member(self, role: str, member_id: str) -> bytes:
        return self.members(role) + member_id.encode()


class Session:
    """A lease kept alive in the background; ``lost`` is set when it expires."""

    def __init__(self, client: aetcd.Client, ttl: int) -> None:
        self.client = client
        self.ttl = ttl
        self.lease: Any = None
        self.lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.lease = await self.client.lease(self.ttl)
        self.lost.clear()
        self._task = asyncio.create_task(self._keepalive(), name="etcd-keepalive")

    async def _keepalive(self) -> None:
        interval = max(self.ttl / 3, 0.2)
        loop = asyncio.get_running_loop()
        last_ok = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                reply = await within(self.lease.refresh(), CALL_TIMEOUT)
                if reply is None or reply.TTL <= 0:
                    raise Unavailable("lease expired")
                last_ok = loop.time()
            except (TimeoutError, Exception) as exc:  # any failure counts against the lease
                if loop.time() - last_ok >= self.ttl:
                    log.warning("etcd_session_lost", error=str(exc))
                    self.lost.set()
                    return

    async def put(self, key: bytes, value: dict[str, Any]) -> None:
        await self.client.put(key, json.dumps(value).encode(), lease=self.lease)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.wait((self._task,))  # a cancel of ours still arrives here
        if self.lease is not None and not self.lost.is_set():
            with contextlib.suppress(Exception):
                await within(self.lease.revoke(), CALL_TIMEOUT)


async def stay_registered(
    client: aetcd.Client,
    keys: Keys,
    role: str,
    member_id: str,
    info: Callable[[], dict[str, Any]],
    *,
    ttl: int,
    stop: asyncio.Event,
    while_registered: Callable[[Session], Awaitable[None]],
    after_session: Callable[[Session], Awaitable[None]] | None = None,
) -> None:
    """Keep ``member_id`` registered as a ``role`` until ``stop``.

    Each session writes the member key (``info()``) under its lease, then runs
    ``while_registered(session)``, which is cancelled the moment the session
    is lost; ``after_session`` runs when a session ends for any reason (check
    ``session.lost``). A failure (etcd away) is logged and retried.
    """
    while not stop.is_set():
        session = Session(client, ttl)
        try:
            await session.start()
            await session.put(keys.member(role, member_id), info())
            await until(while_registered(session), session.lost, stop)
        except (TimeoutError, aetcd.exceptions.ClientError, OSError) as exc:
            log.warning("membership_failed", role=role, member_id=member_id, error=str(exc))
            await sleep_or(stop, 0.5)
        finally:
            try:
                with contextlib.suppress(Exception):
                    await session.close()
            finally:
                if after_session is not None:
                    await after_session(session)


async def campaign(session: Session, key: bytes, value: dict[str, Any]) -> int | None:
    """Try once to become leader. Returns the epoch if won, else None."""
    client = session.client
    won, _ = await client.transaction(
        compare=[client.transactions.create(key) == 0],
        success=[client.transactions.put(key, json.dumps(value).encode(), lease=session.lease)],
        failure=[],
    )
    if not won:
        return None
    got = await client.get(key)
    if got is None or got.lease != session.lease.id:
        return None
    return int(got.create_revision)


async def read_json(client: aetcd.Client, key: bytes) -> tuple[dict[str, Any] | None, int]:
    got = await client.get(key)
    if got is None:
        return None, 0
    return json.loads(got.value), int(got.create_revision)


async def read_members(client: aetcd.Client, keys: Keys, role: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    prefix = keys.members(role)
    for kv in await client.get_prefix(prefix):
        out[kv.key[len(prefix) :].decode()] = json.loads(kv.value)
    return out


async def read_all_members(
    client: aetcd.Client, keys: Keys, roles: tuple[str, ...]
) -> dict[str, dict[str, dict[str, Any]]]:
    """The members of each of ``roles`` (role -> read_members's answer), in
    one read of etcd rather than one a role (the leader's tick, 4 a second)."""
    out: dict[str, dict[str, dict[str, Any]]] = {role: {} for role in roles}
    prefix = keys.all_members()
    for kv in await client.get_prefix(prefix):
        role, _, member_id = kv.key[len(prefix) :].decode().partition("/")  # as read_members reads it
        if role in out:
            out[role][member_id] = json.loads(kv.value)
    return out
