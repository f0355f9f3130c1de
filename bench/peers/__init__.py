"""The same workloads driven through the schedulers people would pick instead of cronfleet.

Each peer is a context manager (it starts what it needs: Redis, Postgres, a
worker) with the same three measurements, so one driver (``__main__``) runs
them all beside cronfleet, round after round:

- ``run_same_second(n)``: n one-off jobs due in the same second, each running
  ``date +%s.%N`` through ``/bin/sh -c``; the lateness of each command's own
  clock against the scheduled second (ms).
- ``run_sustained_noop(count)``: count already-due runs of a no-op; runs/s
  from the first run's start to the last run's end.
- ``run_sustained_process(count)``: the same with ``/bin/sh -c true`` per run.
"""

from __future__ import annotations

from typing import Protocol


class Peer(Protocol):
    name: str
    config: str  # what it is configured with, and why (printed and kept in the JSON)

    def __enter__(self) -> Peer: ...

    def __exit__(self, *exc: object) -> None: ...

    def run_same_second(self, n: int) -> list[float]: ...

    def run_sustained_noop(self, count: int) -> float: ...

    def run_sustained_process(self, count: int) -> float: ...
