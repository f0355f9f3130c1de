"""APScheduler 3, in this process: a BackgroundScheduler, the memory job store, a thread pool.

Its documentation's advice for throughput is the executor: the default
ThreadPoolExecutor for work that waits (a child process, I/O), a process pool
only for CPU-bound Python. Every run here waits on a child process or does
nothing, so a thread pool of 20 (the size its configuration example uses;
in a quick try here, 10 was no better and 50 worse: more threads contend for
the GIL while forking). ``misfire_grace_time=None`` runs a late
job however late, as cronfleet does (the default, 1 s, would drop late runs
and flatter the tail); ``coalesce`` does not matter for one-off jobs.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from bench.peers import witness

POOL_SIZE = 20


class APSchedulerPeer:
    name = "apscheduler"
    config = (
        f"APScheduler 3 BackgroundScheduler in the bench's process, memory job store, "
        f"ThreadPoolExecutor({POOL_SIZE}), misfire_grace_time=None; one-off DateTrigger jobs"
    )

    def __init__(self, pool_size: int = POOL_SIZE) -> None:
        self.pool_size = pool_size
        self.dir = Path(tempfile.mkdtemp(prefix="bench-apscheduler-"))
        self._seq = 0

    def __enter__(self) -> APSchedulerPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _witness(self) -> Path:
        self._seq += 1
        return self.dir / f"w{self._seq}.txt"

    def _run(self, func: Any, args_of: list[tuple[Any, ...]], when: datetime, timeout: float) -> Path:
        """A fresh scheduler per measurement: jobs added while it is stopped, then started."""
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(self.pool_size)},
            job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
            timezone="UTC",
        )
        trigger = DateTrigger(run_date=when, timezone="UTC")
        for args in args_of:
            scheduler.add_job(func, trigger, args=args)
        path = Path(args_of[0][0])
        scheduler.start()
        try:
            witness.wait_for(path, len(args_of), timeout)
        finally:
            scheduler.shutdown(wait=True)
        return path

    def run_same_second(self, n: int) -> list[float]:
        path = str(self._witness())
        due = witness.due_second(witness.NOTICE)
        when = datetime.fromtimestamp(due, UTC)
        out = self._run(witness.run_clock, [(path, due)] * n, when, timeout=120 + n / 20)
        return witness.lateness_ms(witness.read(out))

    def run_sustained_noop(self, count: int) -> float:
        path = str(self._witness())
        out = self._run(witness.run_noop, [(path,)] * count, datetime.now(UTC), timeout=300)
        return witness.rate(witness.read(out))

    def run_sustained_process(self, count: int) -> float:
        path = str(self._witness())
        out = self._run(witness.run_true, [(path,)] * count, datetime.now(UTC), timeout=300)
        return witness.rate(witness.read(out))
