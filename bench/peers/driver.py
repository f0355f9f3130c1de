"""Runs cronfleet and its peers on the same workloads, round after round, and reports."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench import machine
from bench.peers import Peer
from bench.peers.figures import (
    NOTE,
    WORKLOADS,
    Measurement,
    Workload,
    format_table,
    results_document,
    summarise,
    write_json,
)


@dataclass(frozen=True)
class Sizes:
    same_second: int
    sustained_noop: int
    sustained_process: int

    def of(self, workload: Workload) -> int:
        return int(getattr(self, workload))


QUICK = Sizes(same_second=200, sustained_noop=10_000, sustained_process=1_000)
FULL = Sizes(same_second=1_000, sustained_noop=50_000, sustained_process=3_000)  # as `make bench` sizes them


class CronfleetSystem:
    """cronfleet through the existing bench's scenarios: a fresh local cluster per measurement."""

    name = "cronfleet"
    config = (
        "cronfleet local cluster (`python -m launch up`, Postgres + etcd): same second: 1 scheduler, "
        "1 worker, process runtime, the jobs stored 3 s ahead in one statement; sustained: 2 schedulers, "
        "claim batch 2,000, noop runtime on 2 workers (capacity 100,000) / process runtime on 2 workers "
        "(capacity 512 each), fires inserted due in Postgres; figures from each run's execution rows and "
        "output"
    )

    def __init__(
        self, same_second: Callable[[int], list[float]], throughput: Callable[[str, int], float]
    ) -> None:
        self._same_second = same_second
        self._throughput = throughput

    def __enter__(self) -> CronfleetSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run_same_second(self, n: int) -> list[float]:
        return self._same_second(n)

    def run_sustained_noop(self, count: int) -> float:
        return self._throughput("noop", count)

    def run_sustained_process(self, count: int) -> float:
        return self._throughput("process", count)


PEERS = ("apscheduler", "celery", "pgqueuer")


def make_peers(names: Sequence[str], new_database: Callable[[str], str] | None) -> list[Peer]:
    """The named peers (all when none is named); each one's library is imported only when it runs."""
    unknown = set(names) - set(PEERS)
    if unknown:
        raise SystemExit(f"unknown peers {sorted(unknown)}; known: {list(PEERS)}")
    made: list[Peer] = []
    for name in names or PEERS:
        if name == "apscheduler":
            from bench.peers.apscheduler_peer import APSchedulerPeer

            made.append(APSchedulerPeer())
        elif name == "celery":
            from bench.peers.celery_peer import CeleryPeer

            made.append(CeleryPeer())
        else:
            from bench.peers.pgqueuer_peer import PgqueuerPeer

            made.append(PgqueuerPeer(new_database))
    return made


def measure(system: Peer, workload: Workload, size: int, round_: int) -> Measurement:
    m = Measurement(system=system.name, workload=workload, round=round_, size=size)
    if workload == "same_second":
        m.lateness_ms = system.run_same_second(size)
    elif workload == "sustained_noop":
        m.rate = system.run_sustained_noop(size)
    else:
        m.rate = system.run_sustained_process(size)
    return m


def run_peers(
    cronfleet: Peer,
    peers: Sequence[Peer],
    sizes: Sizes,
    rounds: int,
    workloads: Sequence[Workload] = WORKLOADS,
    results_dir: Path | None = None,
    meta: dict[str, object] | None = None,
) -> list[Measurement]:
    """Per round and workload: cronfleet, then each peer (A B A B over the rounds); then the table,
    the note, and (with ``results_dir``) ``peers.json`` and ``peers.png`` there."""
    measurements: list[Measurement] = []
    failures: list[str] = []
    with ExitStack() as stack:
        systems = [stack.enter_context(cronfleet), *(stack.enter_context(p) for p in peers)]
        for round_ in range(1, rounds + 1):
            for workload in workloads:
                for system in systems:
                    t0 = time.monotonic()
                    try:
                        m = measure(system, workload, sizes.of(workload), round_)
                    except Exception as exc:  # a peer that fails is reported, the others still run
                        failures.append(f"{system.name} {workload} round {round_}: {exc!r}")
                        traceback.print_exc()
                        continue
                    measurements.append(m)
                    figure = (
                        summarise([m])[0].text()
                        if m.lateness_ms or m.rate is not None
                        else "nothing measured"
                    )
                    print(
                        f"  round {round_} {workload:<18} {system.name:<12} {figure}"
                        f"   ({time.monotonic() - t0:.0f} s)",
                        flush=True,
                    )
    print()
    print(format_table(summarise(measurements)))
    print()
    print(NOTE)
    configs = {s.name: s.config for s in [cronfleet, *peers]}
    print()
    for name, config in configs.items():
        print(f"  {name}: {config}")
    for failure in failures:
        print(f"  FAILED {failure}")
    if results_dir is not None:
        from bench.record import plotting_available

        end = {"load_average_1m_at_end": round(os.getloadavg()[0], 2)}
        doc = results_document(
            measurements, {**(meta or {}), **end, "rounds": rounds, "failures": failures}, configs
        )
        write_json(results_dir / "peers.json", doc)
        plural = "s" if rounds != 1 else ""
        m = doc["meta"]
        subtitle = (
            f"{m.get('at', '')}, {m.get('cores', '?')} cores shared with other work (load average "
            f"{m.get('load_average_1m', '?')} at the start, {m['load_average_1m_at_end']} at the end), "
            f"{rounds} round{plural}"
        ) + machine.title_line(m)
        print(f"\n  figures: {results_dir / 'peers.json'}", flush=True)
        if plotting_available():
            from bench.plot import plot_peers

            plot_peers(measurements, results_dir / "peers.png", subtitle)
            print(f"  plot: {results_dir / 'peers.png'}")
    return measurements
