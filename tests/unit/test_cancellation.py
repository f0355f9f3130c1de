"""A cancel always arrives: cronfleet.aio.within and until (the roles stop
their loops by cancelling them, and Python 3.11's wait_for could lose one)."""

from __future__ import annotations

import asyncio

import pytest

from cronfleet.aio import until, within


async def test_within_gives_the_result_or_times_out() -> None:
    assert await within(asyncio.sleep(0, result="done"), 1) == "done"
    with pytest.raises(TimeoutError):
        await within(asyncio.Event().wait(), 0.01)


async def test_a_cancel_that_lands_as_the_work_finishes_is_not_lost() -> None:
    work: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(within(work, 10))
    await asyncio.sleep(0)  # it waits on the work
    work.set_result(1)  # the work finishes ...
    waiting.cancel()  # ... and the cancel lands before the waiter runs again
    with pytest.raises(asyncio.CancelledError):
        await waiting  # asyncio.wait_for on 3.11 returned 1 here


async def test_until_passes_on_a_cancel_that_lands_while_it_stops_its_work() -> None:
    stop = asyncio.Event()
    stopping = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopping.set()
            await asyncio.sleep(0.05)  # still cleaning up when the caller's cancel lands

    waiting = asyncio.create_task(until(slow_to_stop(), stop))
    await asyncio.sleep(0)
    stop.set()
    await stopping.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
