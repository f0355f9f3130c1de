"""The chaos suite: a local cluster (3 etcd members, 2 coordinators, 3
schedulers, 3 workers on the process runtime), jobs whose commands write a
witness line outside the cluster, faults injected one at a time in an order
drawn from a fixed seed, and the witness compared with what the schedules
imply.

Each run writes to the witness file (O_APPEND, one short line per write, so
lines never interleave): ``S`` when it starts, ``H`` every half second while
a long one lives, ``E`` when it ends, each with the job, the fire it is for
($CRONFLEET_SCHEDULED_AT), the attempt, the command's own clock and its pid.

Faults: SIGSTOP of a scheduler, of the leading coordinator and of a worker
past their leases (then SIGCONT); SIGKILL of a worker mid-run (``cronfleet
up`` starts it again); a worker cut off from its schedulers without stopping
it (an iptables rule matching the worker's cgroup rejects its packets to the
schedulers' ports: closing its connections at the socket level; its etcd
session lives on); SIGKILL of Postgres under load (started again after a
moment); SIGKILL of one etcd member (started again later).

This file runs a chaos run; its rooms: ``cluster.py`` (the cluster and the
plan), ``load.py`` (the jobs and their witness), ``faults.py`` and
``judging.py`` (the witness against the schedules).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.chaos.cluster import ChaosCluster, Plan
from tests.chaos.faults import FAULTS, Fault, fault_order
from tests.chaos.judging import Report, implied_fires, judge, read_witness
from tests.chaos.load import Load, create_jobs, keep_creating

__all__ = ["Plan", "Report", "report_file", "run_chaos"]


def run_chaos(root: Path, plan: Plan, say: Callable[[str], None] = print) -> Report:
    rng = random.Random(plan.seed)
    cluster = ChaosCluster(root)
    load = Load()
    stop_creating = threading.Event()
    try:
        cluster.start()
        create_jobs(cluster, plan, load)
        say(f"chaos: cluster up, {len(load.jobs)} jobs; seed {plan.seed}")
        creator = threading.Thread(
            target=keep_creating, args=(cluster, plan, load, stop_creating), daemon=True
        )
        creator.start()
        time.sleep(plan.settle)
        begin = time.time()
        faults: list[Fault] = []
        for kind in fault_order(plan, rng):
            fault = Fault(kind, "", time.time())
            fault.target = FAULTS[kind](cluster, rng, plan)
            fault.healed = time.time()
            faults.append(fault)
            say(f"  {kind} {fault.target} ({fault.healed - fault.at:.1f} s)")
            time.sleep(plan.settle)
        stop_creating.set()
        creator.join(10)
        window = (begin, time.time() - 2)
        _wait_for_reruns(cluster, load, window)
        return judge(cluster, load, faults, window)
    finally:
        stop_creating.set()
        cluster.stop()


def _wait_for_reruns(cluster: ChaosCluster, load: Load, window: tuple[float, float]) -> None:
    """Until every fire of the window has started (late ones and re-runs of
    lost ones take a few seconds more), or 60 s: what is still missing then
    is lost."""

    def all_started() -> bool:
        started = {(x.job, x.scheduled) for x in read_witness(cluster.witness) if x.kind == "S"}
        return all(
            (job, at) in started
            for job, body in load.jobs.items()
            if body.get("concurrency_policy") != "forbid"
            for at in implied_fires(body, *window)
        ) and all((job, due) in started for job, due in load.acknowledged.items())

    deadline = time.monotonic() + 60
    while not all_started() and time.monotonic() < deadline:
        time.sleep(1)  # the witness is read whole each time: not too often


@contextlib.contextmanager
def report_file(path: Path) -> Iterator[Callable[[str], None]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:

        def say(text: str) -> None:
            print(text, flush=True)
            out.write(text + "\n")
            out.flush()

        yield say


def as_json(report: Report) -> str:
    return json.dumps({"broken": report.broken, "faults": [f.__dict__ for f in report.faults]}, indent=2)
