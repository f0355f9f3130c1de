"""Every event this worker emits, kept until a scheduler acknowledges it.

An event is sent on one stream at a time (its run's own scheduler when that
stream is up, else any live one). When a stream drops, what was in flight on
it is sent again on the next live stream; the scheduler's writes are
idempotent by execution id, so a resend never doubles anything.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Protocol

from cronfleet.v1 import dispatch_pb2


class EventSink(Protocol):
    """A stream events can be sent on (worker.connection.SchedulerConnection)."""

    address: str

    def send_events(self, events: list[dispatch_pb2.RunEvent]) -> None: ...


class Outbox:
    def __init__(self, pick: Callable[[str], EventSink | None]) -> None:
        """``pick(address)`` is the live stream to that scheduler, or another
        live one, or None when none is up."""
        self._pick = pick
        self._seq = itertools.count(1)
        # seq -> (event, address it was last sent on, or "" if not in flight)
        self._unacked: dict[int, tuple[dispatch_pb2.RunEvent, str]] = {}

    def __len__(self) -> int:
        return len(self._unacked)

    def emit(self, event: dispatch_pb2.RunEvent, prefer: str) -> None:
        """Number ``event``, keep it, and send it (on ``prefer``'s stream if up)."""
        event.seq = next(self._seq)
        self._unacked[event.seq] = (event, "")
        self._send([event.seq], prefer)

    def execution_ids(self) -> set[int]:
        """The runs whose reports are not acknowledged yet."""
        return {event.execution_id for event, _ in self._unacked.values()}

    def acknowledged(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._unacked.pop(seq, None)

    def stream_up(self) -> None:
        """A stream came up: send what no stream carries now."""
        idle = [seq for seq, (_, sent_on) in self._unacked.items() if not sent_on]
        if idle:
            self._send(idle, prefer="")

    def stream_down(self, address: str) -> None:
        """The stream to ``address`` dropped: what was in flight on it goes again."""
        for seq, (event, sent_on) in list(self._unacked.items()):
            if sent_on == address:
                self._unacked[seq] = (event, "")
        self.stream_up()

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until everything is acknowledged, resending."""
        deadline = time.monotonic() + timeout
        while self._unacked and time.monotonic() < deadline:
            self.stream_up()
            await asyncio.sleep(0.05)

    def _send(self, seqs: list[int], prefer: str) -> None:
        sink = self._pick(prefer)
        if sink is None:
            return  # kept; sent when a stream comes up
        events = []
        for seq in seqs:
            event, _ = self._unacked[seq]
            self._unacked[seq] = (event, sink.address)
            events.append(event)
        sink.send_events(events)
