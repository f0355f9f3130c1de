"""Small asyncio habits every role uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


async def within(work: Awaitable[T], seconds: float) -> T:
    """``work``, or TimeoutError after ``seconds``: ``asyncio.wait_for``
    without its Python 3.11 fault. There ``work`` runs beside the caller, and
    a cancel that lands as it finishes is lost (its result is returned), so a
    loop that is stopped by cancelling it goes on for ever (a scheduler's
    etcd keep-alive did, once in a suite run). Under ``asyncio.timeout`` the
    work runs in the caller's own task, where a cancel always arrives."""
    async with asyncio.timeout(seconds):
        return await work


async def sleep_or(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await within(stop.wait(), seconds)


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; True if it was set."""
    with contextlib.suppress(TimeoutError):
        await within(event.wait(), seconds)
    return event.is_set()


async def until(work: Awaitable[T], *events: asyncio.Event) -> T | None:
    """Run ``work`` until it ends or any of ``events`` is set, whichever is
    first; ``work`` is cancelled (and None returned) the moment one is set."""
    task = asyncio.ensure_future(work)
    stoppers = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait((task, *stoppers), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for stopper in stoppers:
            stopper.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))  # a cancel of ours still arrives here
    if task.cancelled():
        return None
    return task.result()


class Background:
    """Tasks started and not awaited, held until done: the loop keeps only a
    weak reference, and a bare task may be collected before it finishes."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the tasks held now to end (their failures are theirs)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Drain(Generic[T]):
    """Items handled in batches by one task at a time, not a task per item:
    :meth:`add` starts the task when none runs (through ``spawn``, which holds
    it); it awaits ``ready``, takes all that gathered, hands it to ``handle``,
    and goes on until nothing is left."""

    def __init__(
        self,
        handle: Callable[[list[T]], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        ready: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._handle = handle
        self._spawn = spawn
        self._ready = ready
        self._items: list[T] = []
        self._draining = False

    def add(self, item: T) -> None:
        self._items.append(item)
        if not self._draining:
            self._draining = True
            self._spawn(self._drain())

    async def _drain(self) -> None:
        try:
            while self._items:
                if self._ready is not None:
                    await self._ready()
                batch, self._items = self._items, []
                await self._handle(batch)
        finally:
            self._draining = False
