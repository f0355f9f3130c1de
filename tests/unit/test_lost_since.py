"""The leader's margin before it declares a vanished worker's runs lost
(coordinator.lost_runs.LostSince): the worker's watchdog kills them first."""

from __future__ import annotations

import time

import pytest

from coordinator.lost_runs import LostSince


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
