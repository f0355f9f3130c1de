"""The short chaos run inside `make test` (`make chaos` runs a longer one):
every kind of fault once, and the promises hold: no fire lost, none doubled,
none early, no attempt live twice, no overlap of a "forbid" job, no
acknowledged create missing; and the fence was exercised."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.harness import Plan, report_file, run_chaos

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="cutting a worker off needs iptables and cgroups (root)"),
]


# Kept after the run (a test artifact; .cronfleet/ is ignored by git).
REPORT = Path(__file__).parents[2] / ".cronfleet" / "chaos" / "test-report.txt"


def test_the_promises_hold_under_faults(tmp_path: Path) -> None:
    plan = Plan(seed=7, faults=7)
    with report_file(REPORT) as say:
        report = run_chaos(tmp_path / "chaos", plan, say)
        say(report.text())
    assert report.expected > 1000, "the load ran"
    assert report.broken == {}, report.text()
    # Whether a woken scheduler makes a stale claim before it learns that its
    # lease is gone is a race (this session's runs: either way); the report
    # counts the refused ones. The fence itself: test_claim's stale-epoch test.
    assert report.reruns > 0, "runs lost with a worker ran again"
    assert len(report.faults) == 7
