"""Micro-benchmark of the process runtime's gates: arm, release and wait N
runs of ``true`` with ProcessRuntime directly, in one event loop, in batches
(as a worker arms a batch ahead, releases it at its instant and waits it).

``python -m bench.gates [-n 1000] [--batch 100] [--rounds 1] [--launch fork]
[--command true]``
prints runs/s and, per run, the loop's wall time in each phase, the
process's own CPU time and its children's (the gates', or the launcher's
and its runs', counted once it exits with the runtime's close).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import tempfile
import time
from pathlib import Path

from cronfleet.config import Settings
from worker.process_runtime import ProcessRuntime
from worker.runtime import ArmedRun, RunSpec


async def one_round(
    root: Path, n: int, batch: int, ids: itertools.count[int], launch: str, command: str
) -> dict[str, float]:
    # As a worker runs it by default: with its watchdog (no setpriv per gate).
    runtime = ProcessRuntime(1.0, Settings().watchdog_seconds, str(root / "fenced"), launch)
    phases = {"arm": 0.0, "release": 0.0, "wait": 0.0}
    failed = 0
    cpu0, wall0, kids0 = time.process_time(), time.perf_counter(), _children_cpu()
    for start in range(0, n, batch):
        specs = []
        for _ in range(min(batch, n - start)):
            i = next(ids)
            specs.append(RunSpec(i, "bench", 1, root / str(i) / "output.log", command=command))
        t0 = time.perf_counter()
        armed: list[ArmedRun] = [await runtime.arm(s) for s in specs]
        t1 = time.perf_counter()
        for run in armed:
            await run.release()
        t2 = time.perf_counter()
        outcomes = await asyncio.gather(*(run.wait() for run in armed))
        t3 = time.perf_counter()
        failed += sum(1 for o in outcomes if o.status != "succeeded")
        phases["arm"] += t1 - t0
        phases["release"] += t2 - t1
        phases["wait"] += t3 - t2
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await runtime.close()  # the launcher exits: its CPU and its runs' are counted
    kids = _children_cpu() - kids0
    per_run = {k: v / n * 1000 for k, v in phases.items()}
    return {
        "runs_per_s": n / wall,
        "cpu_ms": cpu / n * 1000,
        "children_ms": kids / n * 1000,
        "failed": failed,
        **per_run,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def main(n: int, batch: int, rounds: int, launch: str, command: str) -> None:
    ids = itertools.count(1)
    with tempfile.TemporaryDirectory(prefix="cronfleet-gates-") as tmp:
        for _ in range(rounds):
            r = await one_round(Path(tmp), n, batch, ids, launch, command)
            print(
                f"n={n} batch={batch}: {r['runs_per_s']:7.0f} runs/s  per run: arm {r['arm']:.3f} ms"
                f"  release {r['release']:.3f} ms  wait {r['wait']:.3f} ms  cpu {r['cpu_ms']:.3f} ms"
                f"  children's cpu {r['children_ms']:.3f} ms"
                f"  failed={r['failed']:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--launch", choices=("fork", "exec"), default="fork")
    parser.add_argument("--command", default="true", help="each run's command")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.batch, args.rounds, args.launch, args.command))
