"""The process runtime's watchdog: kills the worker's runs when the worker
dies or stops answering, so that a run is never live twice.

A run's process group outlives its worker (a SIGKILLed worker takes only its
direct children with it, by the parent-death signal) and goes on while the
worker is frozen (SIGSTOP, a VM pause): meanwhile the coordinator declares
the run lost and runs it again elsewhere. So each worker starts this small
process in a session of its own (stdlib only, run by path), tells it on a
pipe each run's process group as it starts and ends, and writes to it every
``BEAT`` seconds. Silent for ``limit`` seconds (frozen), or the pipe closed
(dead): the watchdog writes a fence mark for each group, then SIGKILLs it,
and keeps watching (a frozen worker may wake up; its killed runs then end
as ``lost``, from the mark). The limit is below the time the coordinator
waits before it declares a silent worker's runs lost (see coordinator.node).

Lines on the pipe: ``+PGID``, ``-PGID``, ``.`` (a beat), ``stop`` (a clean
shutdown: the worker has dealt with its runs itself).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time

BEAT = 0.5


def fence(groups: set[int], fence_dir: str, why: str) -> None:
    for pgid in sorted(groups):
        with open(os.path.join(fence_dir, str(pgid)), "w") as mark:
            mark.write(why)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        print(f"{time.strftime('%H:%M:%S')} watchdog: killed run group {pgid} ({why})", file=sys.stderr)
    groups.clear()


def watch(limit: float, fence_dir: str, fd: int = 0) -> None:
    groups: set[int] = set()
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], limit)
        if not ready:
            fence(groups, fence_dir, f"the worker did not answer for {limit:g} s")
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            fence(groups, fence_dir, "the worker died")
            return
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.startswith(b"+"):
                groups.add(int(line[1:]))
            elif line.startswith(b"-"):
                groups.discard(int(line[1:]))
            elif line == b"stop":
                return


class Watchdog:
    """The worker's end: starts the watchdog and talks to it."""

    def __init__(self, limit: float, fence_dir: str) -> None:
        self.limit = limit
        self.fence_dir = fence_dir
        os.makedirs(fence_dir, exist_ok=True)
        read_end, self._fd = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(limit), fence_dir],
            stdin=read_end,
            start_new_session=True,  # a signal meant for the worker does not reach it
        )
        os.close(read_end)

    def _say(self, line: bytes) -> None:
        with contextlib.suppress(OSError):  # a watchdog that died: nothing left to tell
            os.write(self._fd, line + b"\n")  # a few bytes into a pipe it drains: never blocks long

    def started(self, pgid: int) -> None:
        self._say(b"+%d" % pgid)

    def ended(self, pgid: int) -> str | None:
        """Forget the group; why the watchdog killed it, if it did."""
        self._say(b"-%d" % pgid)
        mark = os.path.join(self.fence_dir, str(pgid))
        try:
            with open(mark) as f:
                why = f.read()
            os.unlink(mark)
            return why
        except FileNotFoundError:
            return None

    def beat(self) -> None:
        self._say(b".")

    def stop(self) -> None:
        self._say(b"stop")
        os.close(self._fd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2)


if __name__ == "__main__":
    watch(float(sys.argv[1]), sys.argv[2])
