"""How fast this machine is today: two readings taken before the scenarios,
printed and written with the figures, so that a run can be read beside
another day's.

The same commit on this VM has run 40% slower for every Python role after a
reboot (while an in-process peer did not move), and 15% apart within an hour;
without a reading of the machine, a figure says as much about the day as
about the code. The readings are the two kinds of work cronfleet's figures
are made of: Python's interpreter (a fixed loop of dict and ``str()`` work, on the
interpreter this bench runs on) and the kernel's process work (a fork, an
exit and a wait of ``/bin/sh``, the process runtime's floor per run).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

FORKS = 1000


def _python_loop() -> None:
    counts: dict[int, int] = {}
    for i in range(300_000):
        counts[i % 1000] = counts.get(i % 1000, 0) + len(str(i))


def python_loop_ms(tries: int = 3) -> float:
    """The best of ``tries`` of a fixed loop of interpreter work, in ms."""
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        _python_loop()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def shell_fork_us(tries: int = 3) -> float:
    """The best of ``tries`` of ``/bin/sh`` forking and waiting for a
    subshell that does nothing, per fork, in us."""
    script = f"i=0; while [ $i -lt {FORKS} ]; do ( : ); i=$((i+1)); done"
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", script], check=True)
        best = min(best, time.perf_counter() - t0)
    return best / FORKS * 1e6


def reading() -> dict[str, Any]:
    """Both readings, and the interpreter they (and the bench's roles) ran on."""
    return {
        "python": f"{sys.version.split()[0]} ({sys.base_prefix})",
        "python_loop_ms": round(python_loop_ms(), 1),
        "shell_fork_us": round(shell_fork_us(), 1),
    }


def describe(r: dict[str, Any]) -> str:
    """The readings as the bench prints them."""
    return (
        f"machine today: a fixed Python loop {r['python_loop_ms']} ms on Python {r['python']}, "
        f"a shell's fork and wait {r['shell_fork_us']} us"
    )


def title_line(meta: dict[str, Any]) -> str:
    """The readings in a document's meta as a plot title's second line ("" if not taken)."""
    loop, fork = meta.get("python_loop_ms"), meta.get("shell_fork_us")
    if loop is None or fork is None:
        return ""
    return f"\nthe machine: a Python loop {loop} ms, a shell's fork {fork} us"
