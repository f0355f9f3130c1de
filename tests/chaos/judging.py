"""The chaos suite's verdict: the witness lines read back and compared with
what the schedules imply (every fire once, nothing lost or doubled)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.chaos.cluster import ChaosCluster
from tests.chaos.faults import Fault
from tests.chaos.load import Load


@dataclass
class Line:
    kind: str  # S, H, E
    job: str
    scheduled: float
    attempt: int
    clock: float
    pid: int


@dataclass
class Report:
    window: tuple[float, float]
    faults: list[Fault]
    expected: int = 0
    lost: list[tuple[str, float]] = field(default_factory=list)
    duplicated: list[tuple[str, float, int]] = field(default_factory=list)
    early: list[tuple[str, float, float]] = field(default_factory=list)
    live_twice: list[tuple[str, float]] = field(default_factory=list)
    forbid_overlaps: list[tuple[str, float, float]] = field(default_factory=list)
    creates_missing: list[str] = field(default_factory=list)
    creates_acknowledged: int = 0
    create_failures: int = 0
    claims_fenced: int = 0
    reruns: int = 0
    gaps: dict[int, float] = field(default_factory=dict)  # fault index -> seconds firing stopped
    restarts: list[str] = field(default_factory=list)

    @property
    def broken(self) -> dict[str, int]:
        counts = {
            "lost": len(self.lost),
            "duplicated attempts": len(self.duplicated),
            "early starts": len(self.early),
            "attempts live twice": len(self.live_twice),
            "forbid overlaps": len(self.forbid_overlaps),
            "acknowledged creates missing": len(self.creates_missing),
        }
        return {k: v for k, v in counts.items() if v}

    def text(self) -> str:
        start = datetime.fromtimestamp(self.window[0], UTC).strftime("%H:%M:%S")
        lines = [
            f"chaos: {len(self.faults)} faults, fires due {start} + {self.window[1] - self.window[0]:.0f} s",
            f"  fires the schedules imply: {self.expected}; re-runs of lost attempts: {self.reruns}",
            f"  lost {len(self.lost)}, duplicated attempts {len(self.duplicated)},"
            f" early starts {len(self.early)}, attempts live twice {len(self.live_twice)},"
            f" forbid overlaps {len(self.forbid_overlaps)}",
            f"  acknowledged creates {self.creates_acknowledged}, missing {len(self.creates_missing)}"
            f" (not acknowledged: {self.create_failures})",
            f"  claims refused by the fence (stale schedulers): {self.claims_fenced}",
            "  faults (firing stopped for = the latest start of a fire due in the 10 s after it):",
        ]
        for i, f in enumerate(self.faults):
            at = datetime.fromtimestamp(f.at, UTC).strftime("%H:%M:%S")
            lines.append(
                f"    {at} {f.kind:<17} {f.target:<14} healed after {f.healed - f.at:4.1f} s,"
                f" firing stopped for {self.gaps.get(i, 0.0):4.1f} s"
            )
        if self.restarts:
            lines.append("  the local cluster said: " + "; ".join(self.restarts))
        for name, items in (
            ("lost", self.lost[:10]),
            ("duplicated", self.duplicated[:10]),
            ("early", self.early[:10]),
            ("live twice", self.live_twice[:10]),
            ("forbid overlaps", self.forbid_overlaps[:10]),
            ("creates missing", self.creates_missing[:10]),
        ):
            if items:
                lines.append(f"  {name} (first ones): {items}")
        return "\n".join(lines)


def read_witness(path: Path) -> list[Line]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        parts = raw.split()
        if len(parts) != 6:
            continue
        kind, job, scheduled, attempt, clock, pid = parts
        at = datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()
        lines.append(Line(kind, job, at, int(attempt), float(clock), int(pid)))
    return lines


def implied_fires(body: dict[str, Any], begin: float, end: float) -> list[float]:
    step = {"* * * * * *": 1, "*/3 * * * * *": 3, "*/5 * * * * *": 5, "*/2 * * * * *": 2}[body["schedule"]]
    first = int(begin) + (-int(begin)) % step
    return [float(t) for t in range(first, int(end), step)]


def judge(cluster: ChaosCluster, load: Load, faults: list[Fault], window: tuple[float, float]) -> Report:
    lines = read_witness(cluster.witness)
    report = Report(window, faults)
    begin, end = window
    starts: dict[tuple[str, float], dict[int, list[Line]]] = defaultdict(lambda: defaultdict(list))
    seen: dict[tuple[str, float, int, int], list[Line]] = defaultdict(list)  # one run's lines
    for line in lines:
        if line.kind == "S":
            starts[(line.job, line.scheduled)][line.attempt].append(line)
            if line.clock < line.scheduled:
                report.early.append((line.job, line.scheduled, line.clock))
        seen[(line.job, line.scheduled, line.attempt, line.pid)].append(line)
    for (job, scheduled), attempts in starts.items():
        for attempt, runs in attempts.items():
            if len(runs) > 1:
                report.duplicated.append((job, scheduled, attempt))
        # A lost attempt's re-run, whether or not the lost one got as far as
        # its first line: a worker frozen at the fire instant is killed (by
        # its watchdog) before the command runs, and only attempt 2 starts.
        report.reruns += max(attempts) - 1
    # Every fire the schedules imply in the window ran (an attempt started).
    for job_id, body in load.jobs.items():
        if body.get("concurrency_policy") == "forbid":
            continue  # forbid: a fire due while one runs is skipped, by design
        for at in implied_fires(body, begin, end):
            report.expected += 1
            if (job_id, at) not in starts:
                report.lost.append((job_id, at))
    # One run's life: its first line to its last (beats every 0.5 s).
    lives: dict[tuple[str, float], list[tuple[float, float, int]]] = defaultdict(list)
    by_job: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for (job, scheduled, attempt, _pid), run_lines in seen.items():
        first = min(x.clock for x in run_lines)
        last = max(x.clock for x in run_lines)
        lives[(job, scheduled)].append((first, last, attempt))
        by_job[job].append((first, last, scheduled))
    for fire, tries in lives.items():  # attempts of one fire never overlap
        tries.sort()
        for one, next_one in zip(tries, tries[1:], strict=False):
            if next_one[0] < one[1]:  # started before the other's last sign of life
                report.live_twice.append(fire)
    forbid = {j for j, b in load.jobs.items() if b.get("concurrency_policy") == "forbid"}
    for job in forbid:  # a forbid job's runs never overlap, whatever their fires
        ordered = sorted(by_job.get(job, []))
        for run, next_run in zip(ordered, ordered[1:], strict=False):
            if next_run[0] < run[1]:
                report.forbid_overlaps.append((job, run[2], next_run[2]))
    # Acknowledged creates exist and ran.
    report.creates_acknowledged = len(load.acknowledged)
    report.create_failures = load.create_failures
    with cluster.api(timeout=30) as api:
        for job_id, due in load.acknowledged.items():
            if api.get(f"/jobs/{job_id}").status_code != 200 or (job_id, due) not in starts:
                report.creates_missing.append(job_id)
    # How long firing stopped after each fault: the latest start of the
    # every-second fires due in the 10 s after it began.
    every_second = {j for j, b in load.jobs.items() if b["schedule"] == "* * * * * *"}
    for i, f in enumerate(faults):
        late = [
            min(r.clock for r in runs[min(runs)]) - at
            for (job, at), runs in starts.items()
            if job in every_second and f.at <= at < f.at + 10
        ]
        report.gaps[i] = max(late, default=0.0)
    report.claims_fenced = cluster.role_log_events("scheduler", "claim_fenced")
    up_log = (cluster.root / "up.log").read_text(errors="replace")
    report.restarts = [line.split(" ", 1)[1] for line in up_log.splitlines() if "started again" in line]
    return report
