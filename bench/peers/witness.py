"""What each run writes down, from whichever process runs it, and what the bench reads back.

A run appends one line to a witness file: ``scheduled start end`` (epoch
seconds; ``scheduled`` is 0 for throughput runs). One ``os.write`` of a short
line to an ``O_APPEND`` file is atomic, so prefork children and asyncio tasks
can share the file. The fd is opened once per process.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK = "date +%s.%N"  # as the cronfleet bench's process runtime runs it
TRUE = "true"
NOTICE = 3.0  # seconds between storing the same-second jobs and their second, as cronfleet's scenario
_fds: dict[tuple[int, str], int] = {}


def _fd(path: str) -> int:
    key = (os.getpid(), path)
    if key not in _fds:
        _fds[key] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    return _fds[key]


def write(path: str, scheduled: float, start: float, end: float) -> None:
    os.write(_fd(path), f"{scheduled:.6f} {start:.9f} {end:.9f}\n".encode())


def run_clock(path: str, scheduled: float) -> None:
    """The same-second job: the command's own clock is its start."""
    out = subprocess.run(["/bin/sh", "-c", CLOCK], capture_output=True, check=True, text=True).stdout
    write(path, scheduled, float(out.strip()), time.time())


def run_noop(path: str) -> None:
    t = time.time()
    write(path, 0.0, t, t)


def run_true(path: str) -> None:
    start = time.time()
    subprocess.run(["/bin/sh", "-c", TRUE], check=True)
    write(path, 0.0, start, time.time())


@dataclass(frozen=True)
class Line:
    scheduled: float
    start: float
    end: float


def parse(text: str) -> list[Line]:
    out = []
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) == 3:
            out.append(Line(float(parts[0]), float(parts[1]), float(parts[2])))
    return out


def read(path: Path) -> list[Line]:
    return parse(path.read_text()) if path.exists() else []


def lateness_ms(lines: list[Line]) -> list[float]:
    return [(line.start - line.scheduled) * 1000 for line in lines]


def rate(lines: list[Line]) -> float:
    """Runs per second from the first run's start to the last run's end."""
    if not lines:
        return 0.0
    span = max(line.end for line in lines) - min(line.start for line in lines)
    return len(lines) / max(span, 1e-6)


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for(
    path: Path, count: int, timeout: float, log: Path | None = None, poll: float = 0.2
) -> list[Line]:
    """Until ``count`` lines are written; raises with how many came (and the end of ``log``)
    when the time is up. Polls gently: the bench shares the two cores with what it measures."""
    deadline = time.monotonic() + timeout
    while count_lines(path) < count:
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
            raise TimeoutError(
                f"{count_lines(path)}/{count} runs witnessed in {timeout:.0f} s ({path})\n{tail}"
            )
        time.sleep(poll)
    return read(path)


def due_second(ahead: float) -> float:
    """A whole second (epoch) at least ``ahead`` seconds from now."""
    return float(int(time.time() + ahead) + 1)
