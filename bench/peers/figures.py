"""The peer bench's figures: lateness stats, ratios, the table and the JSON (no I/O but the file write)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Workload = Literal["same_second", "sustained_noop", "sustained_process"]
WORKLOADS: tuple[Workload, ...] = ("same_second", "sustained_noop", "sustained_process")
CRONFLEET = "cronfleet"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank on the sorted values, as bench/harness.py's ``pct`` computes it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Lateness:
    """Lateness of runs (ms): each command's own clock at its start minus its scheduled time."""

    n: int
    p50: float
    p99: float
    max: float
    early: int

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> Lateness:
        return cls(
            n=len(values_ms),
            p50=percentile(values_ms, 50),
            p99=percentile(values_ms, 99),
            max=max(values_ms),
            early=sum(1 for v in values_ms if v < 0),
        )

    def text(self) -> str:
        early = f", {self.early} early" if self.early else ""
        return f"p50 {ms(self.p50)}  p99 {ms(self.p99)}  max {ms(self.max)}{early}"


def ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if abs(value) >= 1000 else f"{value:.0f} ms"


@dataclass
class Measurement:
    """One system's result for one workload in one round: lateness values or a rate."""

    system: str
    workload: Workload
    round: int
    size: int
    lateness_ms: list[float] = field(default_factory=list)
    rate: float | None = None


@dataclass(frozen=True)
class Ratio:
    """cronfleet's figure divided by a peer's, and whether that is cronfleet's win."""

    value: float
    better: bool

    def text(self) -> str:
        return f"x{self.value:.2f} ({'better' if self.better else 'worse'})"


def ratio(cronfleet: float, peer: float, *, higher_is_better: bool) -> Ratio | None:
    """cronfleet ÷ peer; None when the peer's figure is zero (nothing to divide by)."""
    if peer == 0:
        return None
    value = cronfleet / peer
    better = value > 1 if higher_is_better else value < 1
    return Ratio(value, better)


@dataclass(frozen=True)
class Summary:
    """One system's figure for one workload over every round of the run."""

    system: str
    workload: Workload
    size: int
    rounds: int
    lateness: Lateness | None = None
    rate: float | None = None  # median over rounds
    rates: tuple[float, ...] = ()

    @property
    def key_figure(self) -> float:
        """The figure compared across systems: p99 lateness, or runs/s."""
        if self.lateness is not None:
            return self.lateness.p99
        assert self.rate is not None
        return self.rate

    def text(self) -> str:
        if self.lateness is not None:
            return self.lateness.text()
        assert self.rate is not None
        spread = f" ({min(self.rates):,.0f}-{max(self.rates):,.0f})" if len(self.rates) > 1 else ""
        return f"{self.rate:,.0f} runs/s{spread}"


def summarise(measurements: Sequence[Measurement]) -> list[Summary]:
    """Pool each (workload, system)'s rounds: lateness values together, rates by their median."""
    groups: dict[tuple[Workload, str], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.workload, m.system), []).append(m)
    out = []
    for (workload, system), ms_ in groups.items():
        values = [v for m in ms_ for v in m.lateness_ms]
        rates = tuple(m.rate for m in ms_ if m.rate is not None)
        out.append(
            Summary(
                system=system,
                workload=workload,
                size=ms_[0].size,
                rounds=len(ms_),
                lateness=Lateness.of(values) if values else None,
                rate=statistics.median(rates) if rates else None,
                rates=rates,
            )
        )
    return out


WORKLOAD_TITLES: dict[Workload, str] = {
    "same_second": "{n} jobs due in the same second (`date`)",
    "sustained_noop": "sustained no-op, {n} runs",
    "sustained_process": "sustained `true` process, {n} runs",
}


def format_table(summaries: Sequence[Summary]) -> str:
    """One plain-text table: per workload, cronfleet first, then each peer with cronfleet ÷ peer."""
    header = ("workload", "system", "figure", "cronfleet ÷ system")
    rows: list[tuple[str, str, str, str]] = []
    for workload in WORKLOADS:
        here = [s for s in summaries if s.workload == workload]
        if not here:
            continue
        here.sort(key=lambda s: (s.system != CRONFLEET, s.system))
        ours = here[0] if here[0].system == CRONFLEET else None
        title = WORKLOAD_TITLES[workload].format(n=f"{here[0].size:,}")
        for i, s in enumerate(here):
            if s is ours:
                cmp = "-"
            elif ours is None:
                cmp = "(cronfleet not measured)"
            else:
                r = ratio(ours.key_figure, s.key_figure, higher_is_better=s.lateness is None)
                what = "p99" if s.lateness is not None else "runs/s"
                cmp = f"{what} {r.text()}" if r is not None else "n/a"
            rows.append((title if i == 0 else "", s.system, s.text(), cmp))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


NOTE = (
    "cronfleet does more per fire than any peer here: each fire is a durable execution row in\n"
    "Postgres (claimed, assigned, started and finished, committed before it is acknowledged), runs\n"
    "isolated in its own process group (or container) under a fencing epoch, and its output is kept.\n"
    "APScheduler keeps jobs in memory in one process; Celery's Redis holds tasks in memory; pgqueuer\n"
    "keeps a queue row per job in Postgres but no history row per run. Ratios are cronfleet ÷ peer:\n"
    "for lateness below 1 is better, for runs/s above 1 is better."
)


def results_document(
    measurements: Sequence[Measurement], meta: dict[str, Any], configs: dict[str, str]
) -> dict[str, Any]:
    return {
        "meta": meta,
        "configs": configs,
        "summaries": [
            {
                **{k: v for k, v in asdict(s).items() if k != "lateness"},
                "lateness": asdict(s.lateness) if s.lateness is not None else None,
            }
            for s in summarise(measurements)
        ],
        "measurements": [asdict(m) for m in measurements],
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
