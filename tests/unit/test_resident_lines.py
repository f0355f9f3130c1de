"""A per_job gate's lines reach the run they are about, also when another
process's stray write lands in front of one."""

from __future__ import annotations

import asyncio
from typing import Any

from worker.resident_gate import Resident


def resident(*nonces: str) -> Resident:
    nothing: Any = None
    r = Resident(container=nothing, sock=nothing, job_id="j", profile=nothing)
    r.inbox = {n: asyncio.Queue() for n in nonces}
    return r


def said(r: Resident, nonce: str) -> list[str]:
    q = r.inbox[nonce]
    return [q.get_nowait() for _ in range(q.qsize())]


def test_lines_go_to_the_run_whose_nonce_starts_them() -> None:
    r = resident("aa11", "bb22")
    r.route("aa11 pid 16")
    r.route("bb22 exited 0")
    r.route("cc33 end 0")  # a run not (or no longer) here
    assert said(r, "aa11") == ["pid 16"] and said(r, "bb22") == ["exited 0"]
    assert r.pids == {"aa11": 16}


def test_a_line_split_by_a_stray_write_still_reaches_its_run() -> None:
    """Seen: "/bin/sh: " of the shell's own complaint, then another run's end."""
    r = resident("753df58d4003c526")
    r.route("/bin/sh: 753df58d4003c526 end 0")
    r.route("can't open /proc/23/stat: no such file")
    assert said(r, "753df58d4003c526") == ["end 0"]
