"""Plots of a bench run (matplotlib, no display): lateness distributions and throughput bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from bench import machine  # noqa: E402
from bench.peers.figures import (  # noqa: E402
    CRONFLEET,
    WORKLOAD_TITLES,
    Measurement,
    Summary,
    Workload,
    summarise,
)

COLOURS = {"cronfleet": "#1f6feb", "apscheduler": "#d1861b", "celery": "#2da44e", "pgqueuer": "#8250df"}


def _colour(system: str) -> str:
    return COLOURS.get(system, "#6e7781")


def _lateness_boxes(ax: Axes, names: Sequence[str], values: Sequence[Sequence[float]], title: str) -> None:
    """Horizontal boxes (whiskers at p1 and p99), every value as a faint dot, p99 written beside."""
    positions = list(range(len(names), 0, -1))
    ax.boxplot(
        [list(v) for v in values],
        positions=positions,
        vert=False,
        whis=(1, 99),
        widths=0.5,
        showfliers=False,
        medianprops={"color": "black"},
    )
    for pos, name, v in zip(positions, names, values, strict=True):
        ordered = sorted(v)
        step = max(1, len(ordered) // 400)  # a dot per value, thinned past 400
        ax.scatter(ordered[::step], [pos] * len(ordered[::step]), s=4, alpha=0.25, color=_colour(name))
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        ax.annotate(
            f"p99 {p99:,.0f} ms",
            (p99, pos),
            xytext=(6, 8),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_yticks(positions, list(names))
    ax.set_xlabel("lateness (ms): the command's own clock at its start minus its scheduled time")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.1)  # room for the p99 label of the slowest


def _bars(
    ax: Axes, names: Sequence[str], rates: Sequence[float], spans: Sequence[tuple[float, ...]], title: str
) -> None:
    """Bars at the median of the rounds, a line from the lowest round to the highest."""
    low = [r - min(s or (r,)) for r, s in zip(rates, spans, strict=True)]
    high = [max(s or (r,)) - r for r, s in zip(rates, spans, strict=True)]
    bars = ax.bar(
        list(names),
        list(rates),
        color=[_colour(n) for n in names],
        yerr=[low, high],
        capsize=4,
        ecolor="#444",
    )
    for bar, r, up in zip(bars, rates, high, strict=True):  # the figure above its range line
        ax.annotate(
            f"{r:,.0f}",
            (bar.get_x() + bar.get_width() / 2, r + up),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_ylabel("runs per second")
    ax.set_title(title, fontsize=10)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="x", labelsize=8)


def plot_peers(measurements: Sequence[Measurement], path: Path, subtitle: str) -> None:
    """Three panels: the same-second lateness of every system, then no-op and process runs/s."""
    summaries = summarise(measurements)

    def of(workload: Workload) -> list[Summary]:
        here = [s for s in summaries if s.workload == workload]
        return sorted(here, key=lambda s: (s.system != CRONFLEET, s.system))

    fig = plt.figure(figsize=(12, 7.5), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[1.1, 1])
    same = of("same_second")
    if same:
        values = {
            s.system: [
                v
                for m in measurements
                if m.system == s.system and m.workload == "same_second"
                for v in m.lateness_ms
            ]
            for s in same
        }
        _lateness_boxes(
            fig.add_subplot(grid[0, :]),
            [s.system for s in same],
            [values[s.system] for s in same],
            WORKLOAD_TITLES["same_second"].format(n=f"{same[0].size:,}").replace("`", "")
            + ": lateness (boxes p25-p75, whiskers p1-p99)",
        )
    sustained: tuple[Workload, ...] = ("sustained_noop", "sustained_process")
    for col, workload in enumerate(sustained):
        rows = of(workload)
        if rows:
            _bars(
                fig.add_subplot(grid[1, col]),
                [s.system for s in rows],
                [s.rate or 0.0 for s in rows],
                [s.rates for s in rows],
                WORKLOAD_TITLES[workload].format(n=f"{rows[0].size:,}").replace("`", "")
                + " (median, range of rounds)",
            )
    fig.suptitle(f"cronfleet and its peers, same machine, same run\n{subtitle}", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bench(doc: dict[str, Any], path: Path) -> None:
    """cronfleet's own bench: a lateness box per scenario (log scale), throughput bars,
    each role's resident size over the memory scenario."""
    lateness: dict[str, Any] = doc.get("lateness", {})
    rates: dict[str, float] = doc.get("throughput_per_s", {})
    memory = {
        name.removeprefix("memory, "): v["samples"]
        for name, v in doc.get("other", {}).items()
        if isinstance(v, dict) and v.get("samples")
    }
    panels = max(1, int(bool(lateness)) + int(bool(rates)) + int(bool(memory)))
    fig, axes = plt.subplots(
        panels,
        1,
        figsize=(11, 2 + 0.45 * len(lateness) + 2.5 * bool(rates) + 3 * bool(memory)),
        layout="constrained",
        squeeze=False,
    )
    i = 0
    if lateness:
        ax = axes[i][0]
        names = list(lateness)
        values = [[max(v, 0.01) for v in lateness[n]["values_ms"]] for n in names]  # log scale: no zero
        _lateness_boxes(ax, names, values, "lateness per scenario (boxes p25-p75, whiskers p1-p99)")
        ax.set_xscale("log")
        i += 1
    if rates:
        names = list(rates)
        ax = axes[i][0]
        bars = ax.barh(names, [rates[n] for n in names], color=_colour(CRONFLEET))
        ax.bar_label(bars, labels=[f"{rates[n]:,.0f}/s" for n in names], fontsize=8, padding=2)
        ax.set_xlabel("fires per second, first claim to last report")
        ax.set_title("throughput", fontsize=10)
        ax.margins(x=0.15)
        i += 1
    if memory:
        ax = axes[i][0]
        for name, samples in memory.items():
            ax.plot([t for t, _ in samples], [mb for _, mb in samples], label=name)
        ax.set_xlabel("seconds of load")
        ax.set_ylabel("resident size (MB)")
        ax.set_title("memory: each role's RSS under load", fontsize=10)
        ax.legend(fontsize=8, ncols=3)
        ax.grid(alpha=0.3)
    meta = doc.get("meta", {})
    fig.suptitle(
        f"cronfleet bench, {meta.get('at', '')} on {meta.get('cores', '?')} cores "
        f"(load average {meta.get('load_average_1m', '?')} at the end)" + machine.title_line(meta),
        fontsize=11,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
