"""The failover scenario's pure parts: claim pauses, missed and doubled seconds; figures of other shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.failover import Run, failover_figures, longest_pause
from bench.record import Figures


def test_longest_pause_counts_from_the_kill_and_between_claims() -> None:
    assert longest_pause([99.5, 100.2, 104.0, 105.0], since=100.0, until=110.0) == pytest.approx(3.8)
    assert longest_pause([103.5], since=100.0, until=110.0) == pytest.approx(3.5)
    assert longest_pause([99.0, 111.0], since=100.0, until=110.0) is None


def _every_second(jobs: list[str], seconds: range, claim_gap: tuple[float, float] | None = None) -> list[Run]:
    """Each job fires each second, claimed 3 s ahead, started 10 ms late; with ``claim_gap``
    (from, to) fires that would be claimed in it are claimed at ``to`` and start late if due by then."""
    runs = []
    for s in seconds:
        for i, job in enumerate(jobs):
            claimed = s - 3.0
            if claim_gap and claim_gap[0] <= claimed < claim_gap[1]:
                claimed = claim_gap[1]
            started = max(s + 0.01, claimed + 0.05)
            runs.append(Run(job, i, float(s), claimed, started))
    return runs


def test_a_scheduler_kill_counts_the_takeover_and_the_lateness_it_caused() -> None:
    jobs = ["a", "b"]
    runs = _every_second(jobs, range(90, 120), claim_gap=(100.5, 105.0))  # killed at 100.5, back at 105
    f = failover_figures(runs, jobs, kill_at=100.5, window=10, before=3)
    assert f.resumed_s == pytest.approx(4.5)
    assert f.cadence_s == pytest.approx(1.0)  # one claim a second before
    # due in [100.5, 110.5): 101 .. 110; 101-103 were claimed before the kill, 104-107 at 105:
    # 104 starts at 105.05, the claims 3 s ahead hid the rest of the takeover
    assert f.due == 20
    assert f.worst_late_s == pytest.approx(105.05 - 104)
    assert f.worst_late_before_s == pytest.approx(0.01)  # due 98 .. 100
    assert (f.missed, f.doubled) == (0, 0)
    assert len(f.late_ms) == 20


def test_missed_and_doubled_seconds_are_counted_per_job_and_second() -> None:
    jobs = ["a", "b"]
    runs = _every_second(jobs, range(90, 120))
    runs = [r for r in runs if not (r.job == "a" and r.scheduled == 103.0)]  # a's 103 never ran
    runs.append(Run("b", 1, 104.0, 101.0, 104.2))  # b's 104 ran twice
    runs.append(Run("b", 1, 106.0, 103.0, None))  # an attempt that never started is no run
    runs.append(Run("c", 2, 104.0, 101.0, 104.0))  # another shard's job: not judged
    f = failover_figures(runs, jobs, kill_at=100.5, window=10, before=3)
    assert (f.missed, f.doubled) == (1, 1)
    # a second outside [kill - before, kill + window) is not judged
    assert failover_figures(runs, ["a"], kill_at=104.5, window=3, before=1).missed == 0


def test_other_figures_alone_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.record.plotting_available", lambda: False)
    figures = Figures()
    figures.figure("memory, worker-1", {"peak_mb": 80.0})
    assert figures.write(tmp_path, "t") == [tmp_path / "t.json"]
    assert json.loads((tmp_path / "t.json").read_text())["other"] == {"memory, worker-1": {"peak_mb": 80.0}}
