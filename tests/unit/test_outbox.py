"""The worker's outbox: nothing is lost until a scheduler acknowledges it."""

from __future__ import annotations

from dataclasses import dataclass, field

from cronfleet.v1 import dispatch_pb2
from worker.outbox import Outbox


@dataclass
class Stream:
    address: str
    live: bool = True
    sent: list[int] = field(default_factory=list)  # execution ids, in order

    def send_events(self, events: list[dispatch_pb2.RunEvent]) -> None:
        self.sent.extend(e.execution_id for e in events)


class Streams:
    def __init__(self, *streams: Stream) -> None:
        self.by_address = {s.address: s for s in streams}

    def pick(self, prefer: str) -> Stream | None:
        s = self.by_address.get(prefer)
        if s is not None and s.live:
            return s
        return next((s for s in self.by_address.values() if s.live), None)


def event(execution_id: int) -> dispatch_pb2.RunEvent:
    return dispatch_pb2.RunEvent(execution_id=execution_id, kind=dispatch_pb2.EVENT_KIND_FINISHED)


def test_an_event_goes_to_its_runs_own_scheduler_when_up() -> None:
    a, b = Stream("a"), Stream("b")
    outbox = Outbox(Streams(a, b).pick)
    outbox.emit(event(1), prefer="b")
    assert (a.sent, b.sent) == ([], [1])


def test_events_wait_while_no_stream_is_up_then_go() -> None:
    a = Stream("a", live=False)
    outbox = Outbox(Streams(a).pick)
    outbox.emit(event(1), prefer="a")
    outbox.emit(event(2), prefer="a")
    assert a.sent == [] and len(outbox) == 2
    a.live = True
    outbox.stream_up()
    assert a.sent == [1, 2]


def test_in_flight_events_are_resent_when_their_stream_drops() -> None:
    a, b = Stream("a"), Stream("b")
    outbox = Outbox(Streams(a, b).pick)
    outbox.emit(event(1), prefer="a")
    outbox.emit(event(2), prefer="b")
    a.live = False
    outbox.stream_down("a")
    assert b.sent == [2, 1], "only what was in flight on the dropped stream goes again"


def test_acknowledged_events_are_never_resent() -> None:
    a, b = Stream("a"), Stream("b")
    outbox = Outbox(Streams(a, b).pick)
    outbox.emit(first := event(1), prefer="a")
    outbox.emit(event(2), prefer="a")
    outbox.acknowledged([first.seq])
    a.live = False
    outbox.stream_down("a")
    assert b.sent == [2] and len(outbox) == 1


def test_sequence_numbers_are_unique_and_increasing() -> None:
    outbox = Outbox(Streams(Stream("a")).pick)
    seqs = []
    for i in range(5):
        e = event(i)
        outbox.emit(e, prefer="a")
        seqs.append(e.seq)
    assert seqs == sorted(set(seqs))
