"""The process runtime's launcher (worker.launcher): runs forked from one
resident shell, each as separate from the others as a shell exec'd per run."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_process_runtime import CHECKPOINTING, read_if_there, run, spec, wait_for_file
from worker import process_runtime
from worker.command_text import needs_own_shell
from worker.process_run import ProcessRun
from worker.process_runtime import ProcessRuntime
from worker.runtime import RunSpec


@pytest.fixture
async def runtime() -> AsyncIterator[ProcessRuntime]:
    made = ProcessRuntime(1.0, launch="fork")
    assert made.launcher is not None
    yield made
    await made.close()


async def test_a_run_sees_nothing_of_another_run(tmp_path: Path, runtime: ProcessRuntime) -> None:
    first_spec = spec(tmp_path, "MINE=1; export EXPORTED=2; cd /; echo x", env={"SECRET": "s"})
    first, _ = await run(first_spec, runtime)
    leftovers = (
        "${_c+c}${_m+m}${_n+n}${_d+d}${_dir+dir}${_run_dir+rd}${_out+o}${_report+r}${_go+g}${_how+how}"
        "${_hold+h}${_wd+wd}"
    )
    second = spec(tmp_path, f'echo "[$MINE$EXPORTED$SECRET]"; pwd; echo "[{leftovers}]"; echo "[$#$*]"')
    outcome, out = await run(second, runtime)
    said = out.splitlines()
    assert (first.status, outcome.status) == ("succeeded", "succeeded")
    assert (said[0], said[1]) == ("[]", str(second.run_dir))
    assert said[2] == "[]", "nothing of the launcher's own shell variables either"
    assert said[3] == "[0]", "no arguments, as with sh -c"


async def test_each_run_gets_its_own_exit_code_when_many_run_at_once(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    specs = [spec(tmp_path, f"exit {i % 7}") for i in range(150)]
    armed = [await runtime.arm(s) for s in specs]
    for a in armed:
        await a.release()
    outcomes = await asyncio.gather(*(a.wait() for a in armed))
    assert [o.exit_code for o in outcomes] == [i % 7 for i in range(150)]


async def test_the_launcher_forgets_each_run_once_it_has_said_how_it_ended(
    tmp_path: Path, runtime: ProcessRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dash keeps a job until ``jobs`` shows it: kept, the table grew by a
    # job a run, and each fork walked it (worker.launcher). At its end the
    # launcher lists the jobs it still holds (to kill them): none is left.
    assert runtime.launcher is not None
    folder, remove = runtime.launcher.dir, shutil.rmtree
    held: list[str] = []

    def read_then_remove(path: str, **kw: Any) -> None:
        if path == folder:
            held.extend(Path(path, ".left").read_text().split())
        remove(path, **kw)

    monkeypatch.setattr(shutil, "rmtree", read_then_remove)
    armed = [await runtime.arm(spec(tmp_path, f"exit {i % 3}")) for i in range(60)]
    for a in reversed(armed):
        await a.release()
    outcomes = await asyncio.gather(*(a.wait() for a in armed))
    assert [o.exit_code for o in outcomes] == [i % 3 for i in range(60)]
    await runtime.close()
    assert held == [], "every run's job freed once its status was said"


async def test_a_command_that_says_its_pid_gets_a_shell_of_its_own(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    s = spec(tmp_path, 'echo "$$ ${$}"')
    armed = await runtime.arm(s)
    assert isinstance(armed, ProcessRun)
    await armed.release()
    await armed.wait()
    assert read_if_there(s.spool_path).split() == [str(armed.pid)] * 2
    assert needs_own_shell(["echo $$"]) and needs_own_shell(["echo ${$}"])
    assert not needs_own_shell(["echo $1 $@"])


async def test_echo_reads_backslash_escapes_as_sh_does(tmp_path: Path, runtime: ProcessRuntime) -> None:
    _, out = await run(spec(tmp_path, r"echo 'a\tb'"), runtime)
    assert out == "a\tb\n"


def what_is_in(folder: str) -> tuple[list[str], int] | None:
    """The folder's entries and mode; None when it is gone."""
    try:
        return os.listdir(folder), os.stat(folder).st_mode & 0o777
    except FileNotFoundError:
        return None


async def test_the_launchers_files_go_with_the_runs(tmp_path: Path, runtime: ProcessRuntime) -> None:
    assert runtime.launcher is not None
    await run(spec(tmp_path, "true", env={"SECRET": "s"}), runtime)
    killed = await runtime.arm(spec(tmp_path, "true"))
    await killed.kill("cancelled")
    await killed.wait()
    folder = runtime.launcher.dir
    assert what_is_in(folder) == ([], 0o700), "each run's env file and FIFO removed at its end"
    await runtime.close()
    assert what_is_in(folder) is None


async def test_a_launcher_that_dies_takes_its_runs_and_is_replaced(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    assert runtime.launcher is not None
    running = await runtime.arm(spec(tmp_path, "sleep 30"))
    prepared = await runtime.arm(spec(tmp_path, "echo ran"))
    await running.release()
    os.kill(runtime.launcher.pid, signal.SIGKILL)
    outcomes = await asyncio.wait_for(asyncio.gather(running.wait(), prepared.wait()), 10)
    assert [(o.status, o.error) for o in outcomes] == [
        ("lost", "killed: the launcher it was forked from died")
    ] * 2
    outcome, out = await run(spec(tmp_path, "echo again"), runtime)
    assert (outcome.status, out) == ("succeeded", "again\n"), "a new launcher for the next run"


async def test_past_a_crowd_at_one_instant_runs_get_gates_of_their_own(
    tmp_path: Path, runtime: ProcessRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A forked run costs more at its instant than an exec'd gate: past
    # FORKED_PER_INSTANT runs armed ahead for one instant, the rest are exec'd.
    monkeypatch.setattr(process_runtime, "FORKED_PER_INSTANT", 2)
    fire_at = time.time() + 60
    specs = [spec(tmp_path, 'echo $$; cut -d" " -f6 /proc/$$/stat', fire_at=fire_at) for _ in range(3)]
    late = spec(tmp_path, 'echo $$; cut -d" " -f6 /proc/$$/stat')  # no instant ahead: forked
    armed = [await runtime.arm(s) for s in [*specs, late]]
    for a in armed:
        await a.release()
    await asyncio.gather(*(a.wait() for a in armed))
    own_session = [in_a_session_of_its_own(s) for s in [*specs, late]]
    assert own_session == [False, False, True, False], "the third is a gate, a session of its own"
    # Released, they no longer count: the next run for that instant is forked again.
    again = spec(tmp_path, 'echo $$; cut -d" " -f6 /proc/$$/stat', fire_at=fire_at)
    await run(again, runtime)
    assert not in_a_session_of_its_own(again)


def in_a_session_of_its_own(s: RunSpec) -> bool:
    """From the run's output: its shell's pid, then its session's id."""
    pid, session = read_if_there(s.spool_path).split()
    return pid == session


async def test_a_run_armed_after_its_instant_runs_as_it_is_forked(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    # No FIFO, no release: its start is its fork's. The rest is as for any
    # run: its checkpoint seeded and read back, its output, its exit code.
    assert runtime.launcher is not None
    s = spec(tmp_path, CHECKPOINTING, checkpoint=b"step 2", fire_at=time.time() - 1)
    forked = time.time()
    armed = await runtime.arm(s)
    assert isinstance(armed, ProcessRun) and armed.started_at is not None and armed.started_at >= forked
    outcome = await asyncio.wait_for(armed.wait(), 10)  # never released
    assert (outcome.status, outcome.exit_code, outcome.checkpoint) == ("failed", 1, b"step 3\n")
    assert s.spool_path.read_text() == "from=step 2\n"
    running = await runtime.arm(spec(tmp_path, "sleep 30", fire_at=time.time()))
    files = [n for n in os.listdir(runtime.launcher.dir) if n.startswith("r")]
    assert files == ["r1.env"], "its environment only: no FIFO"
    await running.kill("cancelled")
    assert (await running.wait()).status == "cancelled"
    assert what_is_in(runtime.launcher.dir) == ([], 0o700)


async def test_a_launcher_that_dies_takes_the_runs_it_had_not_said_yet(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    # A run forked running is live from its fork: if its launcher dies
    # before the worker hears its pid, it goes all the same (its group is
    # found in the launcher's session), else nobody would ever reap or stop it.
    assert runtime.launcher is not None
    s = spec(tmp_path, "sleep 30", fire_at=time.time() - 1)
    armed = await runtime.arm(s)
    assert isinstance(armed, ProcessRun)
    runtime.launcher._live.clear()  # as if the launcher died before it said the pid
    os.kill(runtime.launcher.pid, signal.SIGKILL)
    outcome = await asyncio.wait_for(armed.wait(), 10)
    assert outcome.status == "lost"
    assert not _alive(armed.pid), "its group killed with the launcher's session"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_run_forked_running_is_kept_from_beginning_only_if_it_had_not_begun(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    # Withheld (a cancel, a withdrawal or a stop while it armed): the worker
    # took its claim first, and it runs nothing; else it has begun, and says
    # so. Either way the answer is true: never "withheld" and run.
    markers = [tmp_path / f"ran{i}" for i in range(20)]
    outcomes = []
    for marker in markers:
        armed = await runtime.arm(spec(tmp_path, f"touch {marker}", fire_at=time.time() - 1))
        withheld = armed.withhold()
        assert (armed.started_at is None) == withheld
        outcomes.append((withheld, await asyncio.wait_for(armed.wait(), 10)))
    for marker, (withheld, outcome) in zip(markers, outcomes, strict=True):
        assert withheld != marker.exists(), f"withheld {withheld}, ran {marker.exists()}"
        assert outcome.exit_code == (125 if withheld else 0)


async def test_a_run_whose_claim_was_taken_runs_nothing(
    tmp_path: Path, runtime: ProcessRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker withheld it before the launcher forked it: its claim is
    # there when the run comes to take it.
    assert runtime.launcher is not None
    launcher, prepare = runtime.launcher, runtime.launcher.prepare

    def claimed_first(*args: Any) -> tuple[str, int, tuple[str, ...]]:
        name, gate, files = prepare(*args)
        Path(launcher.claim_of(name)).touch(mode=0o600)
        return name, gate, files

    monkeypatch.setattr(launcher, "prepare", claimed_first)
    marker = tmp_path / "ran"
    s = spec(tmp_path, f"touch {marker}", fire_at=time.time() - 1)
    armed = await runtime.arm(s)
    outcome = await asyncio.wait_for(armed.wait(), 10)
    assert outcome.exit_code == 125 and not marker.exists()
    assert read_if_there(s.spool_path) == "", "not a word of its own either"


async def test_a_run_that_removed_its_checkpoint_file_is_still_seen_to_have_begun(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    # Its claim is a file the command is not told of: removing what it was
    # told of ("nothing to resume") cannot make it look never begun, which a
    # stop would then return to run again elsewhere.
    marker = tmp_path / "ran"
    s = spec(tmp_path, f'rm -f "$CRONFLEET_CHECKPOINT"; echo x > {marker}; sleep 30', fire_at=time.time() - 1)
    armed = await runtime.arm(s)
    await wait_for_file(marker)
    assert armed.withhold() is False and armed.started_at is not None
    await armed.kill("cancelled")
    await asyncio.wait_for(armed.wait(), 10)


async def test_a_run_forked_running_that_has_ended_is_not_withheld(
    tmp_path: Path, runtime: ProcessRuntime
) -> None:
    # Its claim is one of its files, removed at its end: a stop that meets a
    # run already over must not take the claim made anew for "never began"
    # (a run that ran, returned and run again elsewhere).
    marker = tmp_path / "ran"
    armed = await runtime.arm(spec(tmp_path, f"echo x > {marker}", fire_at=time.time() - 1))
    await asyncio.wait_for(armed.wait(), 10)
    assert marker.exists() and armed.withhold() is False and armed.started_at is not None
