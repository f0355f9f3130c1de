"""The role processes of a bench cluster (``launch up`` writes each one's pid to ``run/NAME.pid``)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def role_pids(state: Path) -> dict[str, int]:
    """Member name (``scheduler-1``) -> pid of its live process, checked against its cmdline."""
    out = {}
    for pid_file in sorted((state / "run").glob("*.pid")):
        name = pid_file.stem
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            continue
        role = name.rsplit("-", 1)[0]
        # A zombie (killed, not yet reaped by the paused supervisor) is not live.
        if role.encode() in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z":
            out[name] = pid
    return out


def rss_mb(pid: int) -> float | None:
    """Resident size (VmRSS) in MB, None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextmanager
def supervisor_paused(launch_pid: int) -> Iterator[None]:
    """``launch up`` restarts a dead role 0.2 s after its death: stopped (SIGSTOP),
    it restarts nothing, so what follows a kill is the survivors' doing alone.
    The roles run in their own sessions and go on."""
    os.kill(launch_pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(launch_pid, signal.SIGCONT)


def kill(pid: int) -> float:
    """SIGKILL; the time it was sent (epoch seconds)."""
    at = time.time()
    os.kill(pid, signal.SIGKILL)
    return at
