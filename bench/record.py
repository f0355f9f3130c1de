"""The figures a bench run writes to ``bench/results/``: JSON and a plot, beside what it prints."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine
from bench.peers.figures import Lateness, write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# The machine's readings of this run (bench.machine), taken once as it starts.
MACHINE: dict[str, Any] = {}


def read_machine() -> None:
    """Take the machine's readings (about a second) and print them."""
    MACHINE.update(machine.reading())
    print(f"  ({machine.describe(MACHINE)})", flush=True)


def meta() -> dict[str, Any]:
    """When and where: the figures mean little without the machine they came from."""
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        **MACHINE,
    }


@dataclass
class Figures:
    lateness_ms: dict[str, list[float]] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    # Figures of other shapes, by scenario: failover gaps, resident sizes per role.
    others: dict[str, dict[str, Any]] = field(default_factory=dict)

    def lateness(self, name: str, values: list[float]) -> None:
        self.lateness_ms.setdefault(name, []).extend(values)

    def throughput(self, name: str, rate: float) -> None:
        self.rates[name] = rate

    def figure(self, name: str, values: dict[str, Any]) -> None:
        self.others[name] = values

    def document(self) -> dict[str, Any]:
        return {
            "meta": meta(),
            "lateness": {
                name: {**Lateness.of(v).__dict__, "values_ms": v} for name, v in self.lateness_ms.items() if v
            },
            "throughput_per_s": self.rates,
            "other": self.others,
        }

    def write(self, directory: Path = RESULTS_DIR, stem: str = "bench") -> list[Path]:
        """``STEM.json`` and ``STEM.png`` (the latest run; git keeps the history)."""
        if not self.lateness_ms and not self.rates and not self.others:
            return []
        doc = self.document()
        write_json(directory / f"{stem}.json", doc)
        if not plotting_available():
            return [directory / f"{stem}.json"]
        from bench.plot import plot_bench

        plot_bench(doc, directory / f"{stem}.png")
        return [directory / f"{stem}.json", directory / f"{stem}.png"]


def plotting_available() -> bool:
    """matplotlib is in the bench extra (`make bench` installs it); without it, JSON only."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print("  (no matplotlib: no plot; `make bench` installs it)", flush=True)
        return False
    return True
