"""This worker's stream to each scheduler: dial, say hello, read what comes,
write events and credit (coalesced) and, when quiet, a heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc
import structlog

from cronfleet import rpc
from cronfleet.aio import sleep_or, wait_for_event
from cronfleet.v1 import dispatch_pb2, dispatch_pb2_grpc
from worker.slots import LEND_EVERY, Changes, Slots

log = structlog.get_logger()
EVENTS_PER_MESSAGE = 500
MAX_BACKOFF = 1.0


@dataclass(frozen=True)
class Hello:
    """Who this worker is, said first on every stream."""

    worker_id: str
    capacity: int
    runtime: str
    heartbeat_interval: float
    holding: Callable[[], Iterable[int]] = lambda: ()  # runs live here or with reports unacknowledged

    def message(self, granted: int) -> dispatch_pb2.WorkerMessage:
        """``granted``: the credit this stream starts with (worker.slots)."""
        return dispatch_pb2.WorkerMessage(
            hello=dispatch_pb2.Hello(
                worker_id=self.worker_id,
                capacity=granted,
                runtimes=[self.runtime],
                holding=sorted(self.holding()),
            )
        )


@dataclass
class StreamHandlers:
    """What the worker does with a stream's traffic."""

    on_message: Callable[[str, dispatch_pb2.SchedulerMessage], None]  # (address, message)
    on_up: Callable[[str], None]
    on_down: Callable[[str], None]
    running: Callable[[], int]  # for heartbeats
    room: Callable[[], int | None] = lambda: None  # this stream's share of the worker's room
    leaving: Callable[[], bool] = lambda: False  # the worker is stopping: said once on each stream


@dataclass
class SchedulerConnection:
    """The stream to one scheduler, redialled until the scheduler leaves."""

    address: str
    hello: Hello
    handlers: StreamHandlers
    tls: rpc.InternalTls | None  # None: plaintext (internal TLS off, by setting)
    slots: Slots
    give: Callable[[Changes], None]  # credit to other streams (Connections.give)
    live: bool = False
    task: asyncio.Task[None] | None = None
    # What to send next, coalesced: many events and credits share one
    # message, since one stream carries far more fires packed than one each.
    pending_events: list[dispatch_pb2.RunEvent] = field(default_factory=list)
    pending_credit: int = 0
    sent_room: int | None = None  # the last Room told this stream
    said_leaving: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def send_events(self, events: list[dispatch_pb2.RunEvent]) -> None:
        self.pending_events.extend(events)
        self.wake.set()

    def give_credit(self, slots: int) -> None:
        """Slots to tell the scheduler of (negative: credit taken back)."""
        self.pending_credit += slots
        self.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            opened = False
            try:
                async with rpc.internal_channel(self.address, self.tls) as channel:
                    call = dispatch_pb2_grpc.DispatchServiceStub(channel).Connect()
                    # A new stream's credit is all in its hello: what an old
                    # one was still to be told died with it.
                    self.pending_credit, opened = 0, True
                    await call.write(self.hello.message(self.slots.open(self.address, self)))
                    self.give(self.slots.joined(self.address))
                    self.said_leaving = False
                    await self._say_leaving(call)  # a stream opened while stopping
                    self.live = True
                    self.sent_room = None  # a new stream: tell it afresh
                    backoff = 0.1
                    self.handlers.on_up(self.address)
                    await self._serve(call)
            except grpc.aio.AioRpcError as exc:
                # A refused certificate is a misconfiguration: say so loudly.
                details = exc.details() or ""
                refused = exc.code() == grpc.StatusCode.PERMISSION_DENIED or "andshake" in details
                (log.warning if refused else log.debug)(
                    "scheduler_stream_closed", address=self.address, code=str(exc.code()), details=details
                )
            finally:
                self.live = False
                if opened:
                    self.give(self.slots.close(self.address, self))
                self.handlers.on_down(self.address)
            await sleep_or(stop, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _serve(self, call: grpc.aio.StreamStreamCall) -> None:
        writer = asyncio.create_task(self._write(call))
        try:
            async for msg in call:
                self.handlers.on_message(self.address, msg)
        finally:
            writer.cancel()

    async def _write(self, call: grpc.aio.StreamStreamCall) -> None:
        with contextlib.suppress(Exception):  # the stream is gone: the reader ends it
            while True:
                if not await wait_for_event(self.wake, self.hello.heartbeat_interval):
                    heartbeat = dispatch_pb2.Heartbeat(running=self.handlers.running())
                    await call.write(dispatch_pb2.WorkerMessage(heartbeat=heartbeat))
                    await self._tell_room(call)
                    continue
                self.wake.clear()
                await asyncio.sleep(0.001)  # let the runs finishing now join this message
                await self._flush(call)

    async def _say_leaving(self, call: grpc.aio.StreamStreamCall) -> None:
        if self.handlers.leaving() and not self.said_leaving:
            await call.write(dispatch_pb2.WorkerMessage(leaving=dispatch_pb2.Leaving()))
            self.said_leaving = True

    async def _flush(self, call: grpc.aio.StreamStreamCall) -> None:
        await self._say_leaving(call)  # before the runs it returns
        events, self.pending_events = self.pending_events, []
        credit, self.pending_credit = self.pending_credit, 0
        for i in range(0, len(events), EVENTS_PER_MESSAGE):
            batch = dispatch_pb2.EventBatch(events=events[i : i + EVENTS_PER_MESSAGE])
            await call.write(dispatch_pb2.WorkerMessage(events=batch))
        if credit:
            await call.write(dispatch_pb2.WorkerMessage(credit=dispatch_pb2.Credit(slots=credit)))
        await self._tell_room(call)

    async def _tell_room(self, call: grpc.aio.StreamStreamCall) -> None:
        room = self.handlers.room()
        if room is not None and room != self.sent_room:
            await call.write(dispatch_pb2.WorkerMessage(room=dispatch_pb2.Room(runs=room)))
            self.sent_room = room


class Connections:
    """One connection per live scheduler, following the membership."""

    def __init__(self, hello: Hello, handlers: StreamHandlers, tls: rpc.InternalTls | None) -> None:
        self.hello = hello
        self.handlers = handlers
        self.tls = tls
        self.slots = Slots(hello.capacity)  # one capacity for all the streams
        self._by_address: dict[str, SchedulerConnection] = {}
        self._handing_out = False  # freed slots wait for one hand-out this turn of the loop

    def sync(self, addresses: set[str], stop: asyncio.Event) -> None:
        """Dial schedulers that joined; hang up on those that left."""
        for address in addresses - set(self._by_address):
            conn = SchedulerConnection(address, self.hello, self.handlers, self.tls, self.slots, self.give)
            conn.task = asyncio.create_task(conn.run(stop), name=f"conn-{address}")
            self._by_address[address] = conn
        for address in set(self._by_address) - addresses:
            conn = self._by_address.pop(address)
            if conn.task:
                conn.task.cancel()

    def run_taken(self, address: str) -> None:
        """A run handed over on this scheduler's stream arrived."""
        self.slots.taken(address)

    def run_ended(self, address: str) -> None:
        """A run from this scheduler's stream ended (or was not kept): a slot
        is free, handed out with the others freed in this turn of the loop
        (the credit goes out coalesced at the stream's next write anyway)."""
        self.slots.freed(address)
        if not self._handing_out:
            asyncio.get_running_loop().call_soon(self._hand_out_freed)
            self._handing_out = True

    def _hand_out_freed(self) -> None:
        self._handing_out = False
        self.give(self.slots.hand_out())

    async def lend_idle_credit(self) -> None:
        """Each tick, credit a scheduler left unspent goes to those that ran out (worker.slots)."""
        while True:
            await asyncio.sleep(LEND_EVERY)
            self.give(self.slots.lend_idle())

    def give(self, changes: Changes) -> None:
        for address, slots in changes.items():
            conn = self._by_address.get(address)
            if conn is not None and slots:
                conn.give_credit(slots)

    def say_leaving(self) -> None:
        """Tell every scheduler now that this worker is stopping (handlers.leaving)."""
        for conn in self._by_address.values():
            conn.wake.set()

    def live(self) -> list[SchedulerConnection]:
        return [c for c in self._by_address.values() if c.live]

    def any_live(self) -> bool:
        return any(c.live for c in self._by_address.values())

    def pick(self, prefer: str) -> SchedulerConnection | None:
        """The live stream to ``prefer``, else any live one, else None."""
        conn = self._by_address.get(prefer)
        if conn is not None and conn.live:
            return conn
        return next((c for c in self._by_address.values() if c.live), None)

    async def close(self) -> None:
        tasks = [c.task for c in self._by_address.values() if c.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
