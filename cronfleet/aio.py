"""Small asyncio habits every role uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def sleep_or(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; True if it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
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
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return None
    return task.result()
