"""The process runtime's watchdog (worker.watchdog) on real processes: a
worker that falls silent, or dies, has its runs' whole process groups killed
(so a run re-run elsewhere is never live twice), and a killed run ends lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.helpers import assert_eventually
from worker.process_runtime import ProcessRuntime
from worker.runtime import RunSpec
from worker.watchdog import Watchdog


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead
        return f.read().split(")")[-1].split()[0] != "Z"


def dead(pid: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not alive(pid)

    return check


def group_with_grandchild(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A shell in its own session whose child outlives it: what a run is."""
    pid_file = tmp_path / "child.pid"
    proc = subprocess.Popen(
        ["/bin/sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], start_new_session=True
    )
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc, int(pid_file.read_text())


async def test_a_silent_worker_has_its_runs_killed_and_marked(tmp_path: Path) -> None:
    dog = Watchdog(0.5, str(tmp_path / "fenced"))
    try:
        proc, child = group_with_grandchild(tmp_path)
        dog.started(proc.pid)
        beating_until = time.monotonic() + 1.5
        while time.monotonic() < beating_until:  # beats keep it alive past the limit
            dog.beat()
            await asyncio.sleep(0.1)
        assert alive(child)
        await assert_eventually(dead(child), timeout=5, what="the run's group killed")
        proc.wait(5)
        why = dog.ended(proc.pid)
        assert why is not None and "did not answer" in why
        assert dog.proc.poll() is None, "it keeps watching: a frozen worker may wake up"
    finally:
        dog.stop()


async def test_a_mark_of_a_previous_life_is_not_a_run_of_this_one(tmp_path: Path) -> None:
    # A previous life's watchdog marked a group whose pid a run of this life
    # now has: this life's watchdog has fenced nothing, so the run ended as
    # it ended. (Until this life's watchdog fences, no end looks for a mark.)
    fence_dir = tmp_path / "fenced"
    fence_dir.mkdir()
    for left in ("4242", "cabc"):  # a group's mark, and a container's
        (fence_dir / left).write_text("the worker died")
    dog = Watchdog(30, str(fence_dir))
    try:
        assert sorted(p.name for p in fence_dir.iterdir()) == ["cabc"], "kept for its recovery"
        proc, _ = group_with_grandchild(tmp_path)
        (fence_dir / str(proc.pid)).write_text("the worker died")
        dog.started(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        assert dog.ended(proc.pid) is None
    finally:
        dog.stop()


async def test_a_dead_worker_has_its_runs_killed(tmp_path: Path) -> None:
    # The worker is a child process here, so that it can die by SIGKILL.
    fence_dir = tmp_path / "fenced"
    script = (
        "import sys, time; from worker.watchdog import Watchdog; "
        f"d = Watchdog(30, {str(fence_dir)!r}); d.started(int(sys.argv[1])); "
        "print(d.proc.pid, flush=True); time.sleep(60)"
    )
    proc, child = group_with_grandchild(tmp_path)
    worker = subprocess.Popen(  # noqa: ASYNC220 - a worker process to SIGKILL, started once
        [sys.executable, "-c", script, str(proc.pid)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    assert worker.stdout is not None
    dog_pid = int(worker.stdout.readline())
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    await assert_eventually(dead(child), timeout=5, what="the run's group killed")
    await assert_eventually(dead(dog_pid), timeout=5, what="the watchdog gone after")
    assert (fence_dir / str(proc.pid)).read_text() == "the worker died"
    proc.wait(5)


async def test_a_dead_workers_ended_run_is_left_alone(tmp_path: Path) -> None:
    # A run started and one started then ended, each said in a write of its
    # own, then the worker dies: the one still running is killed, the one
    # that ended is not the watchdog's to kill. (Lines said while the
    # watchdog naps: tests/unit/test_watchdog_pipe.py.)
    fence_dir = tmp_path / "fenced"
    script = (
        "import sys, time; from worker.watchdog import Watchdog; "
        f"d = Watchdog(30, {str(fence_dir)!r}); "
        "d.started(int(sys.argv[1])); d.flush(); d.started(int(sys.argv[2])); d.flush(); "
        "d.ended(int(sys.argv[1])); d.flush(); print(d.proc.pid, flush=True); time.sleep(60)"
    )
    (ended_dir := tmp_path / "ended").mkdir()
    (running_dir := tmp_path / "running").mkdir()
    ended, ended_child = group_with_grandchild(ended_dir)
    running, running_child = group_with_grandchild(running_dir)
    worker = subprocess.Popen(  # noqa: ASYNC220 - a worker process to SIGKILL, started once
        [sys.executable, "-c", script, str(ended.pid), str(running.pid)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    assert worker.stdout is not None
    dog_pid = int(worker.stdout.readline())
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    await assert_eventually(dead(running_child), timeout=5, what="the running group killed")
    await assert_eventually(dead(dog_pid), timeout=5, what="the watchdog gone after")
    assert alive(ended_child), "a group said to have ended is left alone"
    assert sorted(p.name for p in fence_dir.iterdir()) == [str(running.pid)]
    os.killpg(ended.pid, signal.SIGKILL)
    ended.wait(5)
    running.wait(5)


# A worker that arms a run after its instant (forked running by the launcher,
# worker.launcher), says its pid, and freezes before its loop turns again.
FREEZES_AFTER_A_LATE_RUN = """
import asyncio, sys, time
from worker.process_runtime import ProcessRuntime
from worker.runtime import RunSpec

async def main():
    runtime = ProcessRuntime(0.5, watchdog_seconds=0.5, fence_dir=sys.argv[1])
    spec = RunSpec(1, "job", 1, sys.argv[2], command=sys.argv[3], fire_at=time.time() - 1)
    armed = await runtime.arm(spec)
    print(armed.pid, flush=True)
    time.sleep(60)

asyncio.run(main())
"""


async def test_a_run_forked_running_is_known_to_the_watchdog_from_its_fork(tmp_path: Path) -> None:
    # The launcher tells the watchdog each run's group before the worker
    # hears its pid: a worker frozen right after it still has the run killed.
    # (Said by the worker's loop, the group was never told: it froze first.)
    fence_dir = tmp_path / "fenced"
    worker = subprocess.Popen(  # noqa: ASYNC220 - a worker process to freeze, started once
        [
            sys.executable,
            "-c",
            FREEZES_AFTER_A_LATE_RUN,
            str(fence_dir),
            str(tmp_path / "run" / "out.log"),
            "sleep 60",
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert worker.stdout is not None
        group = int(worker.stdout.readline())
        await assert_eventually(dead(group), timeout=10, what="the run's group killed by the watchdog")
        assert "did not answer" in (fence_dir / str(group)).read_text()
    finally:
        worker.kill()
        worker.wait()


async def test_a_watchdog_that_died_does_not_take_the_launcher_with_it(tmp_path: Path) -> None:
    # The launcher writes each run's group into the watchdog's pipe: with
    # nobody reading it, a write must fail, not kill the launcher (SIGPIPE),
    # and runs go on unfenced, as they do when the worker's own word is lost.
    runtime = ProcessRuntime(0.5, watchdog_seconds=30, fence_dir=str(tmp_path / "fenced"))
    assert runtime.watchdog is not None and runtime.launcher is not None
    runtime.watchdog.proc.kill()
    runtime.watchdog.proc.wait()
    for n, fire_at in enumerate((time.time() - 1, None)):  # forked running, then held
        spec = RunSpec(n, "job", 1, tmp_path / f"run{n}" / "out.log", command="echo ran", fire_at=fire_at)
        armed = await runtime.arm(spec)
        await armed.release()
        outcome = await asyncio.wait_for(armed.wait(), 10)
        assert (outcome.status, spec.spool_path.read_text()) == ("succeeded", "ran\n")
    await runtime.close()


async def test_a_run_the_watchdog_killed_ends_lost(tmp_path: Path) -> None:
    runtime = ProcessRuntime(0.5, watchdog_seconds=0.5, fence_dir=str(tmp_path / "fenced"))
    spec = RunSpec(
        execution_id=1, job_id="job", attempt=1, spool=tmp_path / "run" / "out.log", command="sleep 60"
    )
    armed = await runtime.arm(spec)
    await armed.release()
    outcome = await asyncio.wait_for(armed.wait(), 10)  # nobody beats: the limit passes
    assert outcome.status == "lost" and "watchdog" in (outcome.error or "")
    await runtime.close()


async def test_a_graceful_stop_longer_than_the_limit_still_beats(tmp_path: Path) -> None:
    # The keep-warm loop (which beats) ends when a graceful stop begins;
    # stopping runs may take longer than the limit (a grace before SIGKILL).
    # A run that outlives the limit by a second after that must not be killed
    # as lost: it ends on its own, succeeded. (The limit is twice the beat.)
    runtime = ProcessRuntime(0.5, watchdog_seconds=1.0, fence_dir=str(tmp_path / "fenced"))
    spec = RunSpec(
        execution_id=1, job_id="job", attempt=1, spool=tmp_path / "run" / "out.log", command="sleep 2.5"
    )
    stop = asyncio.Event()
    warm = asyncio.create_task(runtime.keep_warm(stop, _no_wait))
    armed = await runtime.arm(spec)
    await armed.release()
    stop.set()
    await asyncio.wait_for(warm, 5)  # the loop is over; the beats go on
    outcome = await asyncio.wait_for(armed.wait(), 10)
    assert outcome.status == "succeeded", outcome
    await runtime.close()


async def _no_wait() -> None:
    return None
