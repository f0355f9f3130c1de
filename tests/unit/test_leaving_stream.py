"""A stopping worker says Leaving on every stream, also one it opens during
its stop (its scheduler restarted meanwhile): a scheduler that never heard
the word would hand it runs it can only return. The worker's real connection
against the scheduler's real stream servicer, over loopback gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cronfleet import rpc
from cronfleet.v1.dispatch_pb2_grpc import add_DispatchServiceServicer_to_server as add_servicer
from scheduler.streams import DispatchServicer, WorkerStream, WorkerStreams
from tests.helpers import assert_eventually
from worker.connection import Hello, SchedulerConnection, StreamHandlers
from worker.slots import Slots


async def condition(check: Callable[[], bool | None]) -> None:
    async def now() -> bool | None:
        return check()

    await assert_eventually(now, interval=0.01)


async def scheduler(address: str) -> tuple[rpc.Server, WorkerStreams]:
    """A scheduler's stream servicer alone, serving on ``address``."""
    streams = WorkerStreams(heartbeat_interval=1.0)
    servicer = DispatchServicer(
        "s1", streams, on_events=lambda *_: None, on_connect=lambda: None, on_credit=lambda: None
    )
    server = await rpc.serve(
        address,
        [("cronfleet.v1.DispatchService", lambda s: add_servicer(servicer, s))],
        tls=None,
    )
    return server, streams


def worker_stream(streams: WorkerStreams) -> WorkerStream | None:
    return streams.get("w1")


async def test_a_stream_opened_while_the_worker_stops_says_leaving_at_once() -> None:
    first, streams = await scheduler("127.0.0.1:0")
    stopping = False
    handlers = StreamHandlers(
        on_message=lambda *_: None,
        on_up=lambda _: None,
        on_down=lambda _: None,
        running=lambda: 0,
        leaving=lambda: stopping,
    )
    # A long heartbeat: nothing but the new stream itself prompts the word.
    hello = Hello(worker_id="w1", capacity=4, runtime="noop", heartbeat_interval=30.0)
    connection = SchedulerConnection(first.address, hello, handlers, None, Slots(4), give=lambda _: None)
    stop = asyncio.Event()
    task = asyncio.create_task(connection.run(stop))
    second: rpc.Server | None = None
    try:
        await condition(lambda: worker_stream(streams) is not None)
        assert [s.worker_id for s in streams.responsive()] == ["w1"]

        stopping = True
        connection.wake.set()  # what Connections.say_leaving does
        await condition(lambda: worker_stream(streams).leaving)  # type: ignore[union-attr]
        assert streams.responsive() == []

        # The scheduler restarts on the same address; the worker redials.
        await first.stop(0)
        second, streams = await scheduler(first.address)
        await condition(lambda: (s := worker_stream(streams)) is not None and s.leaving)
        assert streams.responsive() == []
        assert connection.said_leaving
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if second is not None:
            await second.stop(0)


async def test_a_worker_that_is_not_stopping_never_says_leaving() -> None:
    server, streams = await scheduler("127.0.0.1:0")
    handlers = StreamHandlers(
        on_message=lambda *_: None, on_up=lambda _: None, on_down=lambda _: None, running=lambda: 0
    )
    hello = Hello(worker_id="w1", capacity=4, runtime="noop", heartbeat_interval=0.05)
    connection = SchedulerConnection(server.address, hello, handlers, None, Slots(4), give=lambda _: None)
    stop = asyncio.Event()
    task = asyncio.create_task(connection.run(stop))
    try:
        await condition(lambda: (s := worker_stream(streams)) is not None and s.running == 0)
        connection.give_credit(2)  # a flush, where a stopping worker would say it
        await condition(lambda: worker_stream(streams).credits == 6)  # type: ignore[union-attr]
        assert not worker_stream(streams).leaving  # type: ignore[union-attr]
        assert not connection.said_leaving
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(0)
