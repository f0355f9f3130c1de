"""The throughput scenario's CPU per fire: a role's time includes what ran
under it (a worker's runs), counted apart, also once those have ended."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench import cpu

# A "worker" whose run (a child) spends ~0.3 s of CPU and ends, reaped; the
# worker itself then spends ~0.1 s, says so, and waits to be killed.
ROLE = """
import subprocess, sys, time
def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
run = "import time\\nend = time.process_time() + 0.3\\nwhile time.process_time() < end:\\n    pass"
subprocess.run([sys.executable, "-c", run])
spin(0.1)
open(sys.argv[2], "w").close()
time.sleep(60)
"""


def test_a_workers_runs_count_for_it_and_apart(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    done = tmp_path / "done"
    role = subprocess.Popen([sys.executable, "-c", ROLE, "worker", str(done)])
    try:
        (tmp_path / "run" / "worker-1.pid").write_text(str(role.pid))
        before = cpu.snapshot(tmp_path, tmp_path / "no-postgres")
        deadline = time.monotonic() + 30
        while not done.exists():
            assert time.monotonic() < deadline, "the role never finished its work"
            time.sleep(0.02)
        figures = cpu.per_fire(before, cpu.snapshot(tmp_path, tmp_path / "no-postgres"), fires=1000)
    finally:
        role.kill()
        role.wait()
    # Per fire: 0.3 s of runs and 0.1 s of its own over 1,000 fires (ticks are 10 ms).
    assert 250 <= figures["worker_runs"] <= 450
    assert 320 <= figures["worker"] <= 600 and figures["worker"] > figures["worker_runs"]
    assert "postgres" not in figures and 0 < figures["machine_busy"] <= 1
    assert "workers" in cpu.describe(figures) and "their runs" in cpu.describe(figures)
