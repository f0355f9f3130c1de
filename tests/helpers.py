"""Test helpers: wait on a condition (never on a fixed sleep), make a user
or a job, keep what a worker reports."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from cronfleet.codec.jsonapi import spec_from_json
from cronfleet.config import Settings
from cronfleet.models import JobSpec
from cronfleet.records import User
from cronfleet.tls import TlsFiles
from cronfleet.v1 import dispatch_pb2

if TYPE_CHECKING:
    from gateway.service import JobsService

T = TypeVar("T")


async def assert_eventually(
    fn: Callable[[], Awaitable[T | None]], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Await ``fn`` until it returns a truthy value (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = await fn()
            if value:
                return value
            last = value
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {what or fn!r}; last={last!r}")
        await asyncio.sleep(interval)


async def until(condition: Callable[[], object], timeout: float = 10) -> None:
    """Wait on the event loop until ``condition()`` (a plain call) is truthy."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def wait_until(
    fn: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Blocking form of assert_eventually."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {what or fn!r}; last={last!r}")
        time.sleep(interval)


async def new_user(service: JobsService, name: str) -> User:
    """Sign up ``name`` and return the user their token authenticates as."""
    await service.signup(name, f"{name}@example.com", "password123")
    token, _ = await service.login(f"{name}@example.com", "password123")
    return await service.authenticate(token)


def as_role(settings: Settings, pki: Mapping[str, TlsFiles], role: str) -> Settings:
    """``settings`` for a ``role`` run in-process: its internal TLS files."""
    files = pki[role]
    return dataclasses.replace(
        settings, internal_tls=True, tls_ca=str(files.ca), tls_cert=str(files.cert), tls_key=str(files.key)
    )


def s3_settings(endpoint: str, bucket: str) -> Settings:
    """Settings of a log store on the tests' S3 API server (moto)."""
    return dataclasses.replace(
        Settings(),
        log_store="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=bucket,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        log_url_expiry_seconds=60,
    )


def job_spec(**fields: object) -> JobSpec:
    """A valid job (``true``, run once now) with ``fields`` changed."""
    return spec_from_json({"name": "j", "command": "true", **fields})


class Roles:
    """Roles running as tasks in this event loop (no subprocess), each with
    its own stop event, as ``launch.roles`` would run them in a process."""

    def __init__(self) -> None:
        self._running: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}

    def start(self, name: str, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        stop = asyncio.Event()
        self._running[name] = (stop, asyncio.create_task(run(stop), name=name))

    async def stop(self, name: str, timeout: float = 20.0) -> None:
        """Ask ``name`` to stop and wait until it has drained; its failure is raised here."""
        stop, task = self._running.pop(name)
        stop.set()
        await asyncio.wait_for(task, timeout)

    async def close(self, timeout: float = 30.0) -> None:
        """Stop every role; one that has not drained within ``timeout`` is a
        failure that names it and shows where it waits (then it is cancelled)."""
        for stop, _ in self._running.values():
            stop.set()
        tasks = [task for _, task in self._running.values()]
        self._running.clear()
        _, stuck = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
        if stuck:
            # Every task still waiting, not only the roles': the one that
            # holds a role up is usually a task it started.
            where = [
                (t.get_name(), [f"{f.f_code.co_filename}:{f.f_lineno}" for f in t.get_stack()])
                for t in asyncio.all_tasks()
                if t is not asyncio.current_task()
            ]
            for t in stuck:
                t.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
            raise AssertionError(f"roles did not stop within {timeout:.0f} s: {where}")


class Recorder:
    """A worker's stream to a scheduler that keeps what it is sent."""

    address = "scheduler"

    def __init__(self) -> None:
        self.events: list[dispatch_pb2.RunEvent] = []

    def send_events(self, events: list[dispatch_pb2.RunEvent]) -> None:
        self.events.extend(events)

    def kinds(self, execution_id: int) -> list[int]:
        return [e.kind for e in self.events if e.execution_id == execution_id]

    def finished(self, execution_id: int) -> dispatch_pb2.RunEvent | None:
        return next(
            (
                e
                for e in self.events
                if e.execution_id == execution_id and e.kind == dispatch_pb2.EVENT_KIND_FINISHED
            ),
            None,
        )
