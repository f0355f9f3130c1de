"""The process runtime on this host: gate, steps, checkpoints, kill; each
test with runs forked by the launcher and with a gate exec'd per run."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from cronfleet.models import Step
from tests.helpers import assert_eventually
from worker.process_run import ProcessRun
from worker.process_runtime import ProcessRuntime
from worker.run_folders import kept_folder_for, remove_run_dir
from worker.runtime import RunOutcome, RunSpec

_ids = itertools.count(1)
LAUNCH = "fork"
_made: list[ProcessRuntime] = []


@pytest.fixture(autouse=True, params=["fork", "exec"])
async def launch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setattr(sys.modules[__name__], "LAUNCH", request.param)
    yield str(request.param)
    while _made:
        await _made.pop().close()


def process_runtime(*args: Any, **kw: Any) -> ProcessRuntime:
    _made.append(ProcessRuntime(*args, **{"launch": LAUNCH, **kw}))
    return _made[-1]


CHECKPOINTING = 'echo "from=$(cat "$CRONFLEET_CHECKPOINT")"; echo "step 3" > "$CRONFLEET_CHECKPOINT"; exit 1'


def spec(tmp_path: Path, command: str = "", **kw: Any) -> RunSpec:
    n = next(_ids)
    path = tmp_path / f"run{n}" / "out.log"
    return RunSpec(execution_id=n, job_id="job", attempt=1, spool=path, command=command, **kw)


async def run(s: RunSpec, runtime: ProcessRuntime | None = None) -> tuple[RunOutcome, str]:
    armed = await (runtime or process_runtime(1.0)).arm(s)
    await armed.release()
    outcome = await armed.wait()
    return outcome, s.spool_path.read_text()


async def test_the_checkpoint_is_seeded_and_kept(tmp_path: Path) -> None:
    outcome, out = await run(spec(tmp_path, CHECKPOINTING, checkpoint=b"step 2"))
    assert out == "from=step 2\n"
    assert (outcome.status, outcome.exit_code, outcome.checkpoint) == ("failed", 1, b"step 3\n")


async def test_no_checkpoint_written_is_none(tmp_path: Path) -> None:
    outcome, _ = await run(spec(tmp_path, "true"))
    assert outcome.checkpoint is None and outcome.status == "succeeded"


async def test_with_no_seed_the_checkpoint_file_is_there_and_empty(tmp_path: Path) -> None:
    outcome, _ = await run(
        spec(tmp_path, 'test -f "$CRONFLEET_CHECKPOINT" && test ! -s "$CRONFLEET_CHECKPOINT"')
    )
    assert outcome.status == "succeeded" and outcome.checkpoint is None


async def test_a_timeout_keeps_what_was_written(tmp_path: Path) -> None:
    outcome, _ = await run(spec(tmp_path, 'echo half > "$CRONFLEET_CHECKPOINT"; sleep 30', timeout_seconds=1))
    assert outcome.status == "timed_out" and outcome.checkpoint == b"half\n"


async def test_steps_report_results_and_stderr_joins_the_log(tmp_path: Path) -> None:
    steps = (Step(name="one", run="echo out; echo err >&2"), Step(name="two", run="exit 4"))
    outcome, out = await run(spec(tmp_path, steps=steps))
    assert [(s.name, s.exit_code) for s in outcome.steps] == [("one", 0), ("two", 4)]
    assert "out\nerr\n" in out and outcome.exit_code == 4


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes in a process group."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                state, _ppid, pgrp = f.read().rsplit(")", 1)[1].split()[:3]
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended while we looked
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry))
    return members


def no_group(pgid: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not group_members(pgid)

    return check


def read_if_there(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


async def wait_for_file(path: Path) -> str:
    async def written() -> str:
        return read_if_there(path)

    return await assert_eventually(written, timeout=10, what=f"{path} written")


def open_fds() -> int:
    """The pipes and pidfds this process holds (what arming a run opens;
    other descriptors come and go with whatever else runs in the process)."""
    held = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue  # closed meanwhile (the listing's own one, too)
        held += target.startswith("pipe:") or "pidfd" in target
    return held


@pytest.mark.parametrize(
    ("command", "status", "code", "error"),
    [
        ("true", "succeeded", 0, ""),
        ("exit 3", "failed", 3, ""),
        ("kill -KILL $$", "failed", 137, "killed by signal 9"),  # the run's shell itself
        ("kill -TERM $$", "failed", 143, "killed by signal 15"),
        ("exit 143", "failed", 143, ""),
    ],
)
async def test_exit_codes_and_signals(
    tmp_path: Path, launch: str, command: str, status: str, code: int, error: str
) -> None:
    outcome, _ = await run(spec(tmp_path, command))
    if launch == "fork":
        error = ""  # the launcher has the status as $? says it: 128+N, whatever the cause
    assert (outcome.status, outcome.exit_code, outcome.error) == (status, code, error)


async def test_a_run_has_its_own_group_env_and_cwd(tmp_path: Path, launch: str) -> None:
    s = spec(
        tmp_path,
        'echo $$; cut -d" " -f5,6 /proc/$$/stat; pwd; echo "$GREETING"; echo "$CRONFLEET_SCHEDULED_AT"',
        env={"GREETING": "hi"},
        fire=timestamp_pb2.Timestamp(seconds=1_767_225_600, nanos=250_000_000),
    )
    outcome, out = await run(s)
    pid, group_and_session, cwd, greeting, fire = out.splitlines()
    group, session = group_and_session.split()
    assert group == pid, "a group of its own, led by the run's shell"
    # A gate is a session of its own; a launched run is in the launcher's.
    assert session == pid if launch == "exec" else session != pid
    assert (cwd, greeting, outcome.status) == (str(s.run_dir), "hi", "succeeded")
    assert fire == "2026-01-01T00:00:00.250Z"


async def test_a_command_that_is_one_program_is_execd_by_its_shell(tmp_path: Path) -> None:
    # As `bash -c "prog args"` does: the program is the run's process
    # itself, the leader of its group; with more to do, the shell forks it.
    def leads_its_group(stat: str) -> bool:
        pid, after_name = stat.split()[0], stat.rsplit(")", 1)[1].split()
        return after_name[2] == pid  # fields: state, ppid, pgrp

    outcome, out = await run(spec(tmp_path, "cat /proc/self/stat"))
    assert outcome.status == "succeeded" and leads_its_group(out)
    outcome, out = await run(spec(tmp_path, "cat /proc/self/stat; true"))
    assert outcome.status == "succeeded" and not leads_its_group(out)
    outcome, out = await run(spec(tmp_path, 'printenv GREETING "$NOT_SET"', env={"GREETING": "hi there"}))
    assert (outcome.status, out) == ("failed", "hi there\n"), "printenv fails on the unset name"
    outcome, _ = await run(spec(tmp_path, "sleep 30", timeout_seconds=0.5))
    assert outcome.status == "timed_out"


async def test_a_program_not_found_reads_as_the_shell_says_it(tmp_path: Path) -> None:
    outcome, out = await run(spec(tmp_path, "no-such-program-here --version"))
    assert (outcome.status, outcome.exit_code) == ("failed", 127)
    assert out.endswith(": no-such-program-here: not found\n") and "exec" not in out


async def test_the_gate_holds_the_command_until_released(tmp_path: Path) -> None:
    s = spec(tmp_path, "echo ran")
    armed = await process_runtime(1.0).arm(s)
    # The gate only reads its stdin; the command is behind it. Arm a second
    # run and finish it first: by then the first has had its chance to run.
    await run(spec(tmp_path, "true"))
    assert s.spool_path.read_text() == ""
    await armed.release()
    outcome = await armed.wait()
    assert outcome.status == "succeeded" and s.spool_path.read_text() == "ran\n"


async def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    s = spec(tmp_path, 'echo $$ > "$HOME/gate.pid"; sleep 60 & sleep 60', timeout_seconds=1)
    armed = await process_runtime(1.0).arm(s)
    await armed.release()
    outcome = await armed.wait()
    assert outcome.status == "timed_out"
    await assert_eventually(
        no_group(int((s.run_dir / "gate.pid").read_text())), timeout=5, what="no process left"
    )


async def test_a_group_that_ignores_sigterm_gets_sigkill_after_the_grace(tmp_path: Path) -> None:
    # SIG_IGN is inherited through exec: the sleeps ignore SIGTERM too.
    s = spec(tmp_path, "trap '' TERM; echo $$ > \"$HOME/gate.pid\"; sleep 60 & sleep 60", timeout_seconds=1)
    armed = await process_runtime(0.5).arm(s)
    await armed.release()
    outcome = await armed.wait()
    assert (outcome.status, outcome.exit_code) == ("timed_out", 137)
    await assert_eventually(
        no_group(int((s.run_dir / "gate.pid").read_text())), timeout=5, what="no process left"
    )


async def test_a_run_killed_before_its_release_never_runs(tmp_path: Path) -> None:
    runtime = process_runtime(1.0)
    await run(spec(tmp_path, "true"), runtime)  # the launcher's pipes are open from now on
    fds = open_fds()
    s = spec(tmp_path, "echo ran")
    armed = await runtime.arm(s)
    await armed.kill("cancelled")
    outcome = await armed.wait()
    await armed.release()  # too late (the lifecycle does not, but a race may): nothing happens
    assert (outcome.status, read_if_there(s.spool_path)) == ("cancelled", "")
    assert open_fds() == fds, "the gate's pipe and pidfd are closed"


async def test_a_gate_gone_before_its_release(tmp_path: Path) -> None:
    s = spec(tmp_path, "echo ran")
    armed = await process_runtime(1.0).arm(s)
    assert isinstance(armed, ProcessRun)
    os.kill(armed.pid, signal.SIGKILL)  # as if the OOM killer took it
    await armed.release()  # its pipe has no reader, or is closed: no error
    outcome = await armed.wait()
    assert (outcome.status, outcome.exit_code, read_if_there(s.spool_path)) == ("failed", 137, "")


async def test_many_runs_leave_no_descriptor_behind(tmp_path: Path) -> None:
    runtime = process_runtime(1.0)
    await run(spec(tmp_path, "true"), runtime)  # the launcher's pipes are open from now on
    fds = open_fds()
    armed = [await runtime.arm(spec(tmp_path, "true")) for _ in range(20)]
    for a in armed:
        await a.release()
    outcomes = await asyncio.gather(*(a.wait() for a in armed))
    assert {o.status for o in outcomes} == {"succeeded"}
    assert open_fds() == fds


@pytest.mark.parametrize("watchdog", [False, True], ids=["parent-death-signal", "watchdog"])
async def test_a_run_dies_with_its_worker(tmp_path: Path, launch: str, watchdog: bool) -> None:
    # The worker is a child process here, so that it can die by SIGKILL; the
    # gate loops, so only the parent-death signal (no watchdog) or the
    # watchdog (which then stands in for it: no setpriv) ends it.
    s = spec(tmp_path, 'echo $$ > "$HOME/gate.pid"; while :; do sleep 0.1; done')
    runtime_args = f"1.0, watchdog_seconds=30, fence_dir={str(tmp_path / 'fenced')!r}" if watchdog else "1.0"
    runtime_args += f", launch={launch!r}"
    script = (
        "import asyncio, pathlib, sys; from worker.process_runtime import ProcessRuntime; "
        "from worker.runtime import RunSpec\n"
        "async def main():\n"
        "    s = RunSpec(1, 'job', 1, pathlib.Path(sys.argv[1]), command=sys.argv[2])\n"
        f"    armed = await ProcessRuntime({runtime_args}).arm(s)\n"
        "    await armed.release()\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    worker = subprocess.Popen(  # noqa: ASYNC220 - a worker process to SIGKILL, started once
        [sys.executable, "-c", script, str(s.spool_path), s.command], cwd=Path(__file__).parents[2]
    )
    try:
        gate = int(await wait_for_file(s.run_dir / "gate.pid"))
    finally:
        worker.kill()
        worker.wait()
    await assert_eventually(no_group(gate), timeout=5, what="the run's gate killed with its worker")


@pytest.mark.parametrize(
    "command",
    [
        "ls /proc/$$/fd; :",
        r"ls -l /proc/self/fd | grep -v ' -> /proc/' | sed -n 's| -> .*||p' | grep -o '[0-9]*$'",
    ],
    ids=["the-shell", "its-child"],  # with $$ a launched command gets a shell of its own: both ways
)
async def test_a_run_inherits_no_descriptor_of_the_worker(tmp_path: Path, command: str) -> None:
    # The spawn closes nothing itself: every descriptor the worker holds must
    # be close-on-exec. The command has its stdin, stdout and stderr.
    leak_r, leak_w = os.pipe()  # not inheritable, as Python makes them
    try:
        outcome, out = await run(spec(tmp_path, command))
    finally:
        os.close(leak_r)
        os.close(leak_w)
    assert outcome.status == "succeeded"
    assert sorted(out.split()) == ["0", "1", "2"]


async def test_a_run_ignores_no_signal_the_worker_ignores(tmp_path: Path) -> None:
    # Python ignores SIGPIPE; a background job of a shell ignores SIGINT and
    # SIGQUIT (a worker started so, or a run forked by the launcher without
    # job control); an ignored signal is inherited through exec. None of them
    # may reach the command ignored. (The whole suite ran in the background
    # once: this test caught that.)
    outcome, out = await run(spec(tmp_path, "grep SigIgn /proc/self/status; yes | head -1"))
    ignored = int(out.split()[1], 16)
    watched = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE)
    assert [sig for sig in watched if ignored & 1 << (sig - 1)] == []
    assert out.split()[2:] == ["y"] and outcome.status == "succeeded", "yes ends on the broken pipe"


async def test_the_checkpoint_file_is_not_in_the_runs_folder(tmp_path: Path) -> None:
    """It is in a folder of its own in the runtime's private folder (memory-backed
    where /dev/shm is), removed with what the command made beside it."""
    s = spec(
        tmp_path,
        'echo "$CRONFLEET_CHECKPOINT"; ls -A; echo kept > "$CRONFLEET_CHECKPOINT.new"; '
        'mv "$CRONFLEET_CHECKPOINT.new" "$CRONFLEET_CHECKPOINT"; : > "$CRONFLEET_CHECKPOINT.lock"',
    )
    outcome, out = await run(s)
    checkpoint, *listed = out.splitlines()
    assert outcome.checkpoint == b"kept\n" and listed == ["out.log"]
    assert not checkpoint.startswith(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        os.stat(os.path.dirname(checkpoint))  # removed, with the lock file beside it


async def test_an_emptied_folder_is_handed_to_the_next_run_unless_the_run_left_a_process(
    tmp_path: Path,
) -> None:
    runtime = process_runtime(1.0)
    first = spec(tmp_path, "true")
    await run(first, runtime)
    first.spool_path.unlink()  # moved into the log store, as the worker does
    remove_run_dir(first.run_dir)
    handed = kept_folder_for(tmp_path, "")
    assert handed == first.run_dir, "kept, under its own name"
    second = dataclasses.replace(spec(tmp_path, "sleep 30 & echo $!"), spool=handed / "out.log")
    _, out = await run(second, runtime)
    try:
        second.spool_path.unlink()
        remove_run_dir(second.run_dir)  # its sleep lives on there: removed, not handed on
    finally:
        os.kill(int(out), signal.SIGKILL)
    assert not second.run_dir.exists() and kept_folder_for(tmp_path, "") is None
