"""The leader's margin before it declares a vanished worker's runs lost
(coordinator.lost_runs.LostSince): the worker's watchdog kills them first;
and when it looks for them (LostSweeps)."""

from __future__ import annotations

import time

import pytest

from coordinator.lost_runs import LostSince, LostSweeps


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "monotonic", c)  # the one lost_runs reads
    return c


def test_nobody_is_declared_lost_in_the_margin_after_an_election(clock: Clock) -> None:
    seen = LostSince(2.0)
    assert seen.live(["w1"]) is None
    clock.now += 2.0
    assert seen.live(["w1"]) == ["w1"]


def test_a_vanished_worker_counts_as_live_for_the_margin(clock: Clock) -> None:
    seen = LostSince(2.0)
    clock.now += 5
    assert seen.live(["w1", "w2"]) == ["w1", "w2"]
    clock.now += 1.5
    assert seen.live(["w1"]) == ["w1", "w2"], "w2's lease ended 1.5 s ago: its watchdog may still be at work"
    clock.now += 0.5
    assert seen.live(["w1"]) == ["w1"]
    clock.now += 10
    assert seen.live(["w1", "w2"]) == ["w1", "w2"], "back under the same id"


def test_lost_runs_are_looked_for_when_the_live_workers_change_and_a_grace_later(clock: Clock) -> None:
    sweeps = LostSweeps(grace=5.0, every=30.0)
    assert sweeps.due(["w1", "w2"]), "a new leader looks at once"
    sweeps.swept(["w1", "w2"])
    clock.now += 4.9
    assert not sweeps.due(["w1", "w2"])
    clock.now += 0.1
    assert sweeps.due(["w1", "w2"]), "runs assigned in the grace before the change are old enough now"
    sweeps.swept(["w1", "w2"])
    clock.now += 29.9
    assert not sweeps.due(["w1", "w2"]), "nothing changed: the next look is a period later"
    assert sweeps.due(["w1"]), "w2 left: its runs are looked for at once"
    sweeps.swept(["w1"])
    clock.now += 5.0
    assert sweeps.due(["w1"]), "and again when the runs it was given in the grace are old enough"


def test_a_look_that_failed_is_due_again(clock: Clock) -> None:
    sweeps = LostSweeps(grace=5.0, every=30.0)
    sweeps.swept(["w1", "w2"])
    assert sweeps.due(["w1"])
    clock.now += 0.25  # Postgres was away: declare_lost raised, swept() never said it went through
    assert sweeps.due(["w1"])
