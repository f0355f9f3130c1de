"""The workers' streams: each worker dials in (DispatchService.Connect) and
keeps one bidirectional stream; this room reads what it sends and writes
what is queued for it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import structlog

from cronfleet import metrics, rpc
from cronfleet.v1 import dispatch_pb2, dispatch_pb2_grpc

log = structlog.get_logger()
# A worker silent for this many heartbeat intervals gets no new assignment.
SILENT_HEARTBEATS = 3
# A worker with this many runs not started OVERDUE_AFTER seconds past their
# fire time gets no new assignment until it catches up.
MAX_OVERDUE = 4
OVERDUE_AFTER = 1.0  # > worker.lifecycle.REPORT_DEFER_MOST


@dataclass
class WorkerStream:
    """One connected worker, as this scheduler sees it."""

    worker_id: str
    credits: int
    runtimes: tuple[str, ...] = ()
    running: int = 0
    last_heard: float = field(default_factory=time.monotonic)
    # Runs handed to it that it has not started yet, with when each was due
    # to start (wall clock): its fire time, or when it was handed over if
    # that was later. A worker whose runs are overdue is not keeping up.
    unstarted: dict[int, float] = field(default_factory=dict)
    # How many runs needing a fresh container it may hold unstarted (its Room
    # message; None: not limited), and which of ``unstarted`` are such runs.
    room: int | None = None
    pooled: set[int] = field(default_factory=set)
    leaving: bool = False  # it is stopping (its Leaving message): nothing more for it
    # What to write to the worker; None closes the stream.
    outbox: asyncio.Queue[dispatch_pb2.SchedulerMessage | None] = field(default_factory=asyncio.Queue)

    def overdue(self, now: float) -> int:
        """Runs handed to it, due to start more than OVERDUE_AFTER ago, not started."""
        return sum(1 for fire_at in self.unstarted.values() if fire_at < now - OVERDUE_AFTER)

    def room_left(self) -> int | None:
        """How many more runs needing a fresh container it can take (None: any)."""
        return None if self.room is None else max(0, self.room - len(self.pooled))

    def send(self, message: dispatch_pb2.SchedulerMessage) -> None:
        self.outbox.put_nowait(message)

    def close(self) -> None:
        self.outbox.put_nowait(None)


class WorkerStreams:
    """The connected workers by id, and which of them are answering."""

    def __init__(self, heartbeat_interval: float) -> None:
        self._streams: dict[str, WorkerStream] = {}
        self.silence_limit = SILENT_HEARTBEATS * heartbeat_interval

    def add(self, stream: WorkerStream) -> None:
        """A worker that reconnects replaces (and closes) its older stream."""
        old = self._streams.get(stream.worker_id)
        if old is not None:
            old.close()
        self._streams[stream.worker_id] = stream
        metrics.WORKER_CREDITS.labels(stream.worker_id).set(stream.credits)

    def remove(self, stream: WorkerStream) -> None:
        if self._streams.get(stream.worker_id) is stream:
            del self._streams[stream.worker_id]
            with contextlib.suppress(KeyError):
                metrics.WORKER_CREDITS.remove(stream.worker_id)

    def get(self, worker_id: str) -> WorkerStream | None:
        return self._streams.get(worker_id)

    def all(self) -> list[WorkerStream]:
        return list(self._streams.values())

    def heard_lately(self) -> bool:
        """Any stream heard from within the silence limit."""
        now = time.monotonic()
        return any(now - s.last_heard <= self.silence_limit for s in self._streams.values())

    def responsive(self, now: float | None = None) -> list[WorkerStream]:
        """Streams that can take runs: heard from lately (a frozen or cut-off
        worker keeps its TCP stream open) and keeping up (a worker with runs
        overdue to start, an engine slower than the fires, gets no more until
        it catches up; one that is stopping gets nothing more). What is not
        given to them cannot be late there."""
        now = time.monotonic() if now is None else now
        wall = time.time()
        return [
            s
            for s in self._streams.values()
            if now - s.last_heard <= self.silence_limit and s.overdue(wall) < MAX_OVERDUE and not s.leaving
        ]

    def any_runs(self, runtime: str) -> bool:
        return any(runtime in s.runtimes for s in self._streams.values())


class DispatchServicer(dispatch_pb2_grpc.DispatchServiceServicer):
    """Connect: hello, then events, credit and heartbeats in; assignments,
    acks and cancels out."""

    def __init__(
        self,
        scheduler_id: str,
        streams: WorkerStreams,
        on_events: Callable[[WorkerStream, list[dispatch_pb2.RunEvent]], None],
        on_connect: Callable[[], None],
        on_credit: Callable[[], None],
        on_hello: Callable[[dispatch_pb2.Hello, Callable[[], None]], Awaitable[None]] | None = None,
    ) -> None:
        self.scheduler_id = scheduler_id
        self.on_hello = on_hello
        self.streams = streams
        self.on_events = on_events
        self.on_connect = on_connect
        self.on_credit = on_credit

    async def Connect(
        self,
        request_iterator: AsyncIterator[dispatch_pb2.WorkerMessage],
        context: grpc.aio.ServicerContext,
    ) -> None:
        await rpc.admit_peer(context, "worker")  # assignments carry secret env values
        first = await context.read()
        if first is grpc.aio.EOF or first.WhichOneof("kind") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be hello")
            return
        hello = first.hello
        stream = WorkerStream(hello.worker_id, credits=hello.capacity, runtimes=tuple(hello.runtimes))
        if self.on_hello is not None:  # what it no longer holds is lost, then it takes assignments
            await self.on_hello(hello, functools.partial(self.streams.add, stream))
        else:
            self.streams.add(stream)
        log.info(
            "worker_connected",
            scheduler_id=self.scheduler_id,
            worker_id=hello.worker_id,
            capacity=hello.capacity,
        )
        writer = asyncio.create_task(self._write(stream, context))
        self.on_connect()
        try:
            await self._read(stream, context)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            writer.cancel()
            self.streams.remove(stream)
            log.info("worker_disconnected", scheduler_id=self.scheduler_id, worker_id=hello.worker_id)

    async def _read(self, stream: WorkerStream, context: grpc.aio.ServicerContext) -> None:
        while True:
            msg = await context.read()
            if msg is grpc.aio.EOF:
                return
            stream.last_heard = time.monotonic()
            kind = msg.WhichOneof("kind")
            if kind == "events":
                events = list(msg.events.events)
                for event in events:  # started, or ended without starting
                    stream.unstarted.pop(event.execution_id, None)
                    stream.pooled.discard(event.execution_id)
                self.on_events(stream, events)
            elif kind == "credit":
                stream.credits += msg.credit.slots
                metrics.WORKER_CREDITS.labels(stream.worker_id).set(stream.credits)
                self.on_credit()
            elif kind == "heartbeat":
                stream.running = msg.heartbeat.running
            elif kind == "room":
                stream.room = msg.room.runs
                self.on_credit()  # more room: claim and dispatch again
            elif kind == "leaving":
                stream.leaving = True
                log.info("worker_leaving", scheduler_id=self.scheduler_id, worker_id=stream.worker_id)

    @staticmethod
    async def _write(stream: WorkerStream, context: grpc.aio.ServicerContext) -> None:
        with contextlib.suppress(Exception):  # the stream is gone: the reader ends it
            while (msg := await stream.outbox.get()) is not None:
                await context.write(msg)
