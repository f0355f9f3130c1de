"""A cancel always arrives: cronfleet.aio.within and until, an HTTP run's
wait (the roles stop their loops by cancelling them, and Python 3.11's
wait_for could lose one)."""

from __future__ import annotations

import asyncio
from typing import cast

import httpx
import pytest

from cronfleet.aio import until, within
from worker.http_runtime import HttpRun
from worker.runtime import RunOutcome, RunSpec


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


async def _forever() -> RunOutcome:
    await asyncio.Event().wait()
    raise AssertionError("never set")


async def test_an_http_runs_wait_passes_on_a_cancel_of_its_caller_and_reports_its_own_kill() -> None:
    run = HttpRun(cast(httpx.AsyncClient, None), cast(RunSpec, None))
    run.task = asyncio.create_task(_forever())
    waiting = asyncio.create_task(run.wait())
    await asyncio.sleep(0)
    waiting.cancel()  # the worker stopping: not the run's outcome
    with pytest.raises(asyncio.CancelledError):
        await waiting

    run = HttpRun(cast(httpx.AsyncClient, None), cast(RunSpec, None))
    run.task = asyncio.create_task(_forever())
    waiting = asyncio.create_task(run.wait())
    await asyncio.sleep(0)
    await run.kill("cancelled")  # the run stopped: its outcome says so
    outcome = await waiting
    assert (outcome.status, outcome.error) == ("cancelled", "stopped: cancelled")
