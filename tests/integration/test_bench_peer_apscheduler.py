"""The peer bench's APScheduler workloads at a tiny size: it measures real runs (a few seconds)."""

from __future__ import annotations

import pytest

pytest.importorskip("apscheduler")

from bench.peers.apscheduler_peer import APSchedulerPeer  # noqa: E402


def test_apscheduler_runs_each_workload_and_measures_it() -> None:
    with APSchedulerPeer(pool_size=4) as peer:
        late = peer.run_same_second(5)
        assert len(late) == 5
        assert all(v >= 0 for v in late)  # never before its second
        assert all(v < 30_000 for v in late)
        assert peer.run_sustained_noop(50) > 0
        assert peer.run_sustained_process(5) > 0
