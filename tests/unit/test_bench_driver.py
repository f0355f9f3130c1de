"""The peer bench's driver with stand-in systems: the order of a run, and a failing peer."""

from __future__ import annotations

import pytest

from bench.peers.driver import Sizes, make_peers, run_peers


class StandIn:
    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name = name
        self.config = f"{name} as configured"
        self.calls = calls
        self.fail = fail
        self.entered = self.exited = False

    def __enter__(self) -> StandIn:
        self.entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.exited = True

    def run_same_second(self, n: int) -> list[float]:
        self.calls.append(f"{self.name} same {n}")
        if self.fail:
            raise RuntimeError("broker gone")
        return [1.0] * n

    def run_sustained_noop(self, count: int) -> float:
        self.calls.append(f"{self.name} noop {count}")
        return float(count)

    def run_sustained_process(self, count: int) -> float:
        self.calls.append(f"{self.name} process {count}")
        return count / 2


def test_rounds_alternate_cronfleet_and_each_peer_per_workload(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    ours, peer = StandIn("cronfleet", calls), StandIn("celery", calls)
    measured = run_peers(ours, [peer], Sizes(3, 10, 4), rounds=2, workloads=["same_second", "sustained_noop"])
    assert calls == [
        "cronfleet same 3",
        "celery same 3",
        "cronfleet noop 10",
        "celery noop 10",
        "cronfleet same 3",
        "celery same 3",
        "cronfleet noop 10",
        "celery noop 10",
    ]
    assert len(measured) == 8 and {m.round for m in measured} == {1, 2}
    assert ours.exited and peer.exited
    out = capsys.readouterr().out
    assert "cronfleet ÷ system" in out and "durable execution row" in out
    assert "celery: celery as configured" in out


def test_a_failing_peer_is_reported_and_the_run_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    measured = run_peers(
        StandIn("cronfleet", calls),
        [StandIn("pgqueuer", calls, fail=True), StandIn("apscheduler", calls)],
        Sizes(2, 5, 5),
        rounds=1,
        workloads=["same_second", "sustained_process"],
    )
    systems = [m.system for m in measured]
    assert systems == ["cronfleet", "apscheduler", "cronfleet", "pgqueuer", "apscheduler"]
    assert "FAILED pgqueuer same_second round 1: RuntimeError('broker gone')" in capsys.readouterr().out


def test_unknown_peers_are_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="unknown peers"):
        make_peers(["cron"], None)
