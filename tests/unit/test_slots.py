"""A worker's one capacity across its schedulers' streams (worker.slots)."""

from __future__ import annotations

import asyncio
import random

import pytest

from worker.connection import Connections, Hello, StreamHandlers
from worker.slots import Slots


def two_streams_of_two() -> Slots:
    """A capacity of 4 shared by streams a and b, 2 credit each, nothing spent."""
    slots = Slots(4)
    for address in ("a", "b"):
        slots.open(address)
        slots.joined(address)
    return slots


def test_one_stream_gets_the_whole_capacity_and_each_ended_run_back() -> None:
    slots = Slots(4)
    assert slots.open("a") == 4
    assert slots.joined("a") == {}
    for _ in range(4):
        slots.taken("a")
    assert slots.free() == 0
    assert slots.ended("a") == {"a": 1}


def test_a_second_stream_shares_the_capacity_taking_unused_credit_back() -> None:
    slots = Slots(4)
    slots.open("a")
    slots.joined("a")  # a holds 4, unused (its scheduler has nothing to run)
    assert slots.open("b") == 0  # nothing free: a's hello-time grant takes nothing
    assert slots.joined("b") == {"a": -2, "b": 2}
    assert slots.in_use("a") == slots.in_use("b") == 2


def test_a_busy_stream_keeps_its_runs_and_the_new_one_gets_the_freed_slots() -> None:
    slots = Slots(4)
    slots.open("a")
    slots.joined("a")
    for _ in range(4):
        slots.taken("a")  # four runs of a's live here: no unused credit to take back
    slots.open("b")
    assert slots.joined("b") == {}
    assert slots.ended("a") == {"b": 1}  # b is below its share of 2
    assert slots.ended("a") == {"a": 1}  # b holds one unspent: a, out of credit, gets it
    slots.taken("b")  # b spends it
    assert slots.ended("a") == {"b": 1}  # out of credit and the least used


def test_a_stream_back_after_a_break_starts_from_what_is_free_not_the_whole_capacity() -> None:
    slots = Slots(4)
    slots.open("a")
    slots.taken("a")
    slots.taken("a")
    assert slots.close("a") == {}
    # Its two runs are still here: the new stream's hello grants the other two.
    assert slots.open("a") == 2
    slots.joined("a")
    assert slots.ended("a") == {"a": 1}
    assert slots.in_use("a") == 4  # 3 credit and 1 run: the capacity, never past it


def test_a_closed_streams_runs_free_slots_for_the_others() -> None:
    slots = Slots(2)
    slots.open("a")
    slots.taken("a")
    slots.taken("a")
    slots.open("b")
    slots.joined("b")
    slots.close("a")
    assert slots.ended("a") == {"b": 1}
    assert slots.ended("a") == {"b": 1}
    assert slots.ended("a") == {}  # more ends than runs (a resend): nothing invented


def test_credit_taken_back_while_runs_were_on_their_way_is_settled_as_they_end() -> None:
    slots = Slots(2)
    slots.open("a")
    slots.joined("a")
    slots.open("b")
    assert slots.joined("b") == {"a": -1, "b": 1}
    # a's scheduler had already sent both: one more than it now holds.
    slots.taken("a")
    slots.taken("a")
    assert slots.ended("a") == {}  # a holds -1 + 1 run: nothing free yet
    assert slots.in_use("a") == 0
    # Both of a's runs over: one slot settles its debt, the other is credit again.
    assert slots.ended("a") == {"a": 2}
    assert slots.free() == 0


def test_credit_left_unspent_for_a_tick_is_lent_to_a_stream_that_ran_out() -> None:
    slots = two_streams_of_two()
    assert slots.lend_idle() == {}  # a tick: nobody ran out
    slots.taken("b")
    slots.taken("b")  # b's scheduler is busy: none left; a's is quiet
    assert slots.lend_idle() == {"a": -1, "b": 1}  # a keeps one for its next run
    slots.taken("a")
    assert slots.lend_idle() == {}  # a spent this tick: not idle


def test_a_freed_slot_goes_past_its_share_to_a_busy_stream_not_to_one_holding_credit() -> None:
    slots = two_streams_of_two()
    slots.lend_idle()
    for _ in range(2):
        slots.taken("b")
    assert slots.lend_idle() == {"a": -1, "b": 1}  # a idle: b borrows one, a keeps one
    slots.taken("b")
    assert slots.ended("b") == {"b": 1}  # b at its share, a holding one unspent: b's again
    slots.taken("a")  # a busy again, now out of credit and the least used
    assert slots.ended("b") == {"a": 1}


def test_with_fewer_slots_than_schedulers_each_gets_the_slot_in_turn() -> None:
    slots = Slots(1)
    slots.open("a")
    slots.joined("a")
    slots.open("b")
    assert slots.joined("b") == {}  # a's one slot is its whole share: kept at the open
    assert slots.lend_idle() == {}  # credit just granted is not idle: held less than a tick
    assert slots.lend_idle() == {"a": -1, "b": 1}  # unspent all tick, and b has nothing at all
    slots.taken("b")
    assert slots.lend_idle() == {}
    assert slots.ended("b") == {"a": 1}  # the least used gets the freed slot


def test_one_slot_and_two_busy_schedulers_take_turns() -> None:
    """Equals are served oldest grant first: the first scheduler does not keep the slot."""
    slots = Slots(1)
    for address in ("a", "b"):
        slots.open(address)
        slots.joined(address)
    served = []
    holder = "a"
    for _ in range(10):
        slots.taken(holder)  # the holder's scheduler spends it at once (both have work)
        served.append(holder)
        (holder,) = slots.ended(holder)
    assert served == ["a", "b"] * 5


def test_no_slot_is_left_free_when_a_lent_credit_crossed_a_run() -> None:
    """Credit taken back from a while its run was on the wire: once the runs
    end, the freed slot is someone's credit again, not left free (the
    worker would run nothing more)."""
    slots = Slots(1)
    for address in ("a", "b"):
        slots.open(address)
        slots.joined(address)
    slots.lend_idle()
    assert slots.lend_idle() == {"a": -1, "b": 1}
    slots.taken("a")  # on the wire as the credit was taken back: a at -1
    slots.taken("b")
    slots.ended("a")
    slots.ended("b")
    assert slots.free() == 0
    assert max(slots.in_use("a"), slots.in_use("b")) == 1


def test_a_stream_not_yet_up_gets_no_lent_credit_and_a_redial_is_not_closed_by_the_old_one() -> None:
    slots = Slots(4)
    old, new = object(), object()
    slots.open("a")
    slots.joined("a")
    slots.open("b", old)  # dialling: its hello not delivered yet
    slots.lend_idle()
    assert slots.lend_idle() == {}  # a idle, but b is not up to borrow
    slots.open("b", new)  # redialled
    assert slots.close("b", old) == {}  # the old connection's late close leaves the new one
    assert slots.joined("b") == {"a": -2, "b": 2}


@pytest.mark.parametrize("in_turns", [False, True])
def test_never_more_granted_than_the_capacity_over_random_traffic(in_turns: bool) -> None:
    """Credit held by schedulers plus runs here stays within the capacity
    whenever no revoked credit is in flight (schedulers spend only what they
    hold). ``in_turns``: as the worker does, slots freed now are handed out
    at the end of a turn of the loop, with streams opening, closing and
    lending meanwhile."""
    rng = random.Random(7)
    capacity = 5
    slots = Slots(capacity)
    held: dict[str, int] = {}  # what each scheduler believes it holds
    here: dict[str, int] = {}  # runs here per stream
    streams = ["a", "b", "c"]
    started = 0

    def send(changes: dict[str, int]) -> None:
        for address, delta in changes.items():
            held[address] += delta

    for _ in range(5_000):
        address = rng.choice(streams)
        move = rng.random()
        if address not in held:
            held[address] = slots.open(address)
            send(slots.joined(address))
        elif move < 0.45 and held[address] > 0:
            held[address] -= 1
            here[address] = here.get(address, 0) + 1
            slots.taken(address)
            started += 1
        elif move < 0.9 and here.get(address, 0) > 0:
            here[address] -= 1
            if in_turns:
                slots.freed(address)
            else:
                send(slots.ended(address))
        elif move > 0.98:
            del held[address]
            send(slots.close(address))
        elif move > 0.95:
            send(slots.lend_idle())
        if in_turns and rng.random() < 0.3:  # the turn ends
            send(slots.hand_out())
        assert sum(max(0, h) for h in held.values()) + sum(here.values()) <= capacity
    assert slots.free() >= 0
    assert started > 1_000, "freed slots came back as credit: runs kept being handed over"


def test_slots_freed_together_are_handed_out_as_ended_one_by_one_would() -> None:
    one_by_one, together = two_streams_of_two(), two_streams_of_two()
    for slots in (one_by_one, together):
        for address in ("a", "a", "b", "a"):
            slots.taken(address)
    given: dict[str, int] = {}
    for address in ("a", "b", "a"):
        for name, credit in one_by_one.ended(address).items():
            given[name] = given.get(name, 0) + credit
    for address in ("a", "b", "a"):
        together.freed(address)
    assert together.hand_out() == given == {"a": 2, "b": 1}
    assert together.free() == one_by_one.free() == 0


async def test_runs_ending_in_one_turn_of_the_loop_give_credit_once(monkeypatch: pytest.MonkeyPatch) -> None:
    hello = Hello(worker_id="w1", capacity=4, runtime="noop", heartbeat_interval=30.0)
    handlers = StreamHandlers(
        on_message=lambda *_: None, on_up=lambda _: None, on_down=lambda _: None, running=lambda: 0
    )
    connections = Connections(hello, handlers, None)
    given: list[dict[str, int]] = []
    monkeypatch.setattr(connections, "give", given.append)
    connections.slots.open("a")
    connections.slots.joined("a")
    for _ in range(4):
        connections.run_taken("a")
    for _ in range(3):
        connections.run_ended("a")
    assert given == []  # not yet: once this turn of the loop is over
    await asyncio.sleep(0)
    assert given == [{"a": 3}]
    assert connections.slots.free() == 0
