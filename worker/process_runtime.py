"""The process runtime: a command run by ``/bin/sh`` on the worker host, no
isolation; forked by the resident launcher (worker.launcher), or from a gate
exec'd per run."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from cronfleet.v1 import dispatch_pb2
from worker.command_text import one_program
from worker.launcher import DEFAULT_SIGNALS, Launcher, can_launch, close_inherited_on_exec, private_folder
from worker.process_gate import DIE_WITH_WORKER, PROCESS_GATE_SCRIPT, PROGRAM_GATE_SCRIPT, WRITE_NEW
from worker.run_folders import (
    make_checkpoint_folder,
    make_run_dir,
    make_spares,
    may_reuse,
    remove_checkpoint_folder,
    remove_kept,
)
from worker.runtime import (
    CHECKPOINT_FILE,
    REPORT_FILE,
    SEED_CHECKPOINT,
    ArmedRun,
    RunOutcome,
    RunSpec,
    cut_checkpoint,
    script_env,
    step_results,
)
from worker.watchdog import Watchdog

log = structlog.get_logger()
BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass
class _ProcessRun:
    """A run forked by the launcher (worker.launcher), or a gate spawned with
    ``os.posix_spawn``: it waits to read "go" from a pipe (a FIFO for the
    launcher's) whose write end we hold (release: write "go"), and its exit
    is seen through a pidfd on the event loop. asyncio's subprocess transport
    and child watcher, and even ``subprocess.Popen``, cost more per run than
    the spawn itself."""

    pid: int  # the run's, and its process group's
    gate: int  # the write end of what it waits on; -1 once released or gone
    pidfd: int
    spec: RunSpec
    grace_seconds: float
    launcher: Launcher | None = None  # None: a spawned gate, our child
    name: str = ""  # the launcher's name for it
    files: tuple[str, ...] = ()  # the launcher's files of this run
    checkpoint: str = ""  # its $CRONFLEET_CHECKPOINT, in the runtime's private folder
    returncode: int | None = None
    launcher_died: bool = False
    killed_for: str = ""
    cold: bool | None = None
    container_id: str = ""
    released: bool = False
    watchdog: Watchdog | None = None
    on_release: Callable[[], None] | None = None  # told once: released, or gone before
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        asyncio.get_running_loop().add_reader(self.pidfd, self._exited)

    @property
    def output_ended(self) -> bool:
        return self._done.is_set()

    def _exited(self) -> None:
        """The pidfd is readable: the run has exited. A spawned gate is our
        child: reaped now. A launched run's status is the launcher's, asked
        for in :meth:`wait` (after the release windows, for a run released
        at its instant: asked at once, a burst's ends kept the launcher
        busy while the runs behind were starting)."""
        asyncio.get_running_loop().remove_reader(self.pidfd)
        os.close(self.pidfd)
        self._no_longer_waiting()
        self._close_gate()  # killed before its release: nobody will write to it
        for path in self.files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if self.launcher is None:
            _, status = os.waitpid(self.pid, 0)  # noqa: ASYNC222 - it has exited: never blocks
            self.returncode = os.waitstatus_to_exitcode(status)
        self._done.set()

    async def _status(self, launcher: Launcher) -> int:
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        launcher.status(self.name, answer.set_result)
        status = await answer
        # None: the launcher died before it said (it killed the run).
        self.launcher_died = status is None
        return 128 + signal.SIGKILL if status is None else status

    def _close_gate(self) -> None:
        if self.gate >= 0:
            os.close(self.gate)
            self.gate = -1

    def _no_longer_waiting(self) -> None:
        if self.on_release is not None:
            self.on_release()
            self.on_release = None

    async def release(self) -> None:
        self.released = True
        self._no_longer_waiting()
        if self.gate < 0:
            return  # the gate is gone (killed, or exited) before its release
        if self.watchdog is not None:
            self.watchdog.flush()  # it knows the group before the command can run
        with contextlib.suppress(BrokenPipeError):  # it died meanwhile: wait() tells how
            os.write(self.gate, b"go\n")  # 3 bytes into an empty pipe: never blocks
        if self.launcher is None:
            self._close_gate()  # a FIFO stays open until the run has read it: at its end

    async def wait(self) -> RunOutcome:
        try:
            async with asyncio.timeout(self.spec.timeout_seconds):
                await self._done.wait()
        except TimeoutError:
            await self.kill("timed_out")
            await self._done.wait()
        if self.returncode is None and self.launcher is not None:
            self.returncode = await self._status(self.launcher)
        rc = self.returncode
        assert rc is not None
        may_reuse(self.spec.run_dir, self.pid, self.spec.owner_id)
        fenced = self.watchdog.ended(self.pid) if self.watchdog else None
        if fenced:
            outcome = RunOutcome("lost", None, f"killed by the worker's watchdog: {fenced}")
        elif self.launcher_died:
            outcome = RunOutcome("lost", None, "killed: the launcher it was forked from died")
        else:
            outcome = self._outcome(rc)
        if self.spec.steps and (report := self.spec.run_dir / REPORT_FILE).exists():
            outcome.steps = step_results(report.read_text(errors="replace"), self.spec.steps)
        left = await self.read_checkpoint()
        remove_checkpoint_folder(self.checkpoint)
        if left is not None:
            outcome.checkpoint, outcome.checkpoint_truncated = cut_checkpoint(left)
        return outcome

    async def read_checkpoint(self) -> bytes | None:
        """The file is the worker's own, mostly empty: a stat, and a read if not."""
        try:
            return (os.stat(self.checkpoint).st_size and _read(self.checkpoint)) or None
        except FileNotFoundError:
            return None

    def _outcome(self, rc: int) -> RunOutcome:
        signalled = -rc if rc < 0 else 0
        code = 128 + signalled if signalled else rc  # as a shell says $?
        if self.killed_for == "timed_out":
            return RunOutcome("timed_out", code, f"exceeded timeout of {self.spec.timeout_seconds}s")
        if self.killed_for:
            return RunOutcome(self.killed_for, code, f"stopped: {self.killed_for}")
        if code == 0:
            return RunOutcome("succeeded", 0)
        if signalled:
            return RunOutcome("failed", code, f"killed by signal {signalled}")
        return RunOutcome("failed", code)

    async def snapshot(self) -> None:
        return None  # the process writes straight into the spool file

    async def kill(self, reason: str) -> None:
        """SIGTERM the run's process group, then SIGKILL after the grace."""
        if self._done.is_set():
            return
        self.killed_for = self.killed_for or reason
        # Not reaped before the pidfd says it exited (a launched run's pid is
        # freed then by the launcher, but not reused before pids wrap around).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(self.grace_seconds):
                await self._done.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)


class ProcessRuntime:
    """A ``/bin/sh`` command in its own process group on the worker host. No
    isolation: for trusted commands and machines without Docker."""

    name = "process"
    # A burst of releases is a burst of commands starting on the worker's
    # own cores: reaping, uploading and reporting the first ones meanwhile
    # slowed the rest (1,000 due in one second: p99 619 -> 562 ms paced).
    paced = True
    follow_up_uses_engine = False
    writes_files = True

    def __init__(
        self,
        grace_seconds: float = 5.0,
        watchdog_seconds: float = 0.0,
        fence_dir: str = "",
        launch: str = "fork",
    ) -> None:
        """``watchdog_seconds`` > 0: a watchdog kills the runs when this worker
        is silent that long or dies (worker.watchdog); ``fence_dir`` holds its marks.
        ``launch``: "fork", each run forked by the resident launcher
        (worker.launcher), or "exec", a ``/bin/sh`` gate exec'd per run."""
        if launch not in ("fork", "exec"):
            raise ValueError(f"process_launch must be fork or exec, not {launch!r}")
        self.grace_seconds = grace_seconds
        if launch == "fork" and not can_launch():
            log.warning("process_launch_falls_back_to_exec", why="no pseudo-terminal to be had here")
            launch = "exec"
        self._base_env = {k: os.environ[k] for k in BASE_ENV_KEYS if k in os.environ}
        self._base_env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        self.launcher = Launcher(SEED_CHECKPOINT, self._base_env) if launch == "fork" else None
        # Checkpoint files in memory where /dev/shm is, not in the runs' folders: a
        # file freed per run made every later inode dearer (worker.run_folders).
        self._private = self.launcher.dir if self.launcher is not None else private_folder()
        self._parents: set[str] = set()  # where its runs' folders are (kept ones too)
        # Arming a forked run is a line to the launcher, answered in order. At 4
        # at a time (a round trip each, on a busy machine) arming lagged and slots
        # came back spread out: 3,000 runs 870 -> 1,229 runs/s with 256 at once.
        self.arm_slots: int | None = 256 if self.launcher else None
        self._waiting_for: collections.Counter[float] = collections.Counter()
        self.watchdog = Watchdog(watchdog_seconds, fence_dir) if watchdog_seconds > 0 else None
        # With a watchdog, it kills the runs' groups the moment the worker's
        # pipe closes, so the gate needs no parent-death signal of its own:
        # setpriv's exec was 0.8 ms of a gate's 2 ms of CPU. A gate spawned
        # but not yet told to the watchdog reads EOF when its worker dies, and
        # exits without running anything.
        close_inherited_on_exec()
        die_with_worker = DIE_WITH_WORKER if self.watchdog is None else []
        # $0 of the command stays /bin/sh, as with ``sh -c``.
        self._argv = [*die_with_worker, "/bin/sh", "-c", PROCESS_GATE_SCRIPT, "/bin/sh"]
        self._program_argv = [*die_with_worker, "/bin/sh", "-c", PROGRAM_GATE_SCRIPT, "/bin/sh"]

    async def keep_warm(self, stop: asyncio.Event, quiet: Callable[[], Awaitable[None]]) -> None:
        """Nothing to keep warm (a process is spawned when armed); the watchdog's beat."""
        if self.watchdog is not None:
            await self.watchdog.keep_alive(stop)

    def expect(self, source: str, profiles: list[dispatch_pb2.ProfileCount]) -> None:
        return None

    def make_spare_folders(self, parent: Path, n: int) -> None:
        """Run folders made ahead in ``parent`` (worker.run_folders), blocking:
        in a thread, at the worker's start."""
        self._parents.add(str(parent))
        try:
            make_spares(parent, n)
        except OSError as exc:  # runs make their own, as without these
            log.warning("spare_folders_not_made", folder=str(parent), error=str(exc))

    async def close(self) -> None:
        if self.launcher is not None:
            await self.launcher.close()
        else:
            await asyncio.to_thread(shutil.rmtree, self._private, ignore_errors=True)
        await asyncio.to_thread(remove_kept, self._parents)
        if self.watchdog is not None:
            self.watchdog.stop()

    async def arm(self, spec: RunSpec) -> ArmedRun:
        env = {**self._base_env, "HOME": str(spec.run_dir)}
        env.update(spec.env)
        checkpoint = f"{self._private}/{spec.execution_id}/{CHECKPOINT_FILE}"  # files beside it go too
        make_checkpoint_folder(checkpoint)
        env.update(script_env(spec, checkpoint))
        make_run_dir(spec.run_dir, spec.owner_id)
        self._parents.add(str(spec.run_dir.parent))
        instant = _ahead_of(spec)
        if instant is not None:  # counted until it is released, or gone
            self._waiting_for[instant] += 1
        crowded = instant is not None and self._waiting_for[instant] > FORKED_PER_INSTANT
        program = not spec.steps and one_program(spec.command, env.get("PATH", ""), str(spec.run_dir))
        try:
            if self.launcher is not None and not crowded:
                run = await self._launch(spec, env, self.launcher, program)
            else:
                run = self._spawn(spec, env, program)
            run.checkpoint = checkpoint
        except BaseException:
            if instant is not None:
                self._released(instant)
            remove_checkpoint_folder(checkpoint)
            raise
        if instant is not None:
            run.on_release = functools.partial(self._released, instant)
        return run

    def _released(self, instant: float) -> None:
        self._waiting_for[instant] -= 1
        if self._waiting_for[instant] <= 0:
            del self._waiting_for[instant]

    def _spawn(self, spec: RunSpec, env: dict[str, str], program: bool) -> _ProcessRun:
        """Spawn the run's own gate: ``/bin/sh`` exec'd for it; a command that
        is ``program`` (worker.command_text) is exec'd by it."""
        # stdout and stderr into the output, in order; steps report on fd 3.
        output = [
            (os.POSIX_SPAWN_OPEN, 1, str(spec.spool_path), WRITE_NEW, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        if spec.steps:
            output.append((os.POSIX_SPAWN_OPEN, 3, str(spec.run_dir / REPORT_FILE), WRITE_NEW, 0o644))
        read_end, gate = os.pipe()  # both close-on-exec: only the gate's stdin gets the read end
        try:
            # posix_spawn (vfork and exec in libc): its child opens the output
            # files itself, and no Python runs between fork and exec. It takes
            # no working directory: the gate's first line changes to its $1.
            argv = self._program_argv if program else self._argv
            pid = os.posix_spawn(  # noqa: ASYNC221 - vfork and exec: returns at the exec
                argv[0],
                [*argv, str(spec.run_dir)],
                env,
                file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0), *output],
                setsid=True,
                setsigdef=DEFAULT_SIGNALS,
            )
        except BaseException:
            os.close(gate)
            raise
        finally:
            os.close(read_end)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            os.close(gate)  # the gate reads EOF and exits 125
            os.waitpid(pid, 0)  # noqa: ASYNC222 - the gate exits at once on EOF
            raise
        if self.watchdog is not None:
            self.watchdog.started(pid)  # its own session: the group is its pid
        return _ProcessRun(pid, gate, pidfd, spec, self.grace_seconds, watchdog=self.watchdog)

    async def _launch(
        self, spec: RunSpec, env: dict[str, str], launcher: Launcher, program: bool
    ) -> _ProcessRun:
        """Have the launcher fork the run, blocked on its FIFO until released."""
        name, gate, files = launcher.prepare(spec, env, program)
        try:
            pid = await launcher.launch(name)
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:  # it died at once and was reaped: its job is freed all the same
                launcher.status(name, lambda _: None)
                raise
        except BaseException:
            os.close(gate)
            for path in files:
                os.unlink(path)
            raise
        if self.watchdog is not None:
            self.watchdog.started(pid)  # a group of its own (the launcher's job control)
        return _ProcessRun(
            pid, gate, pidfd, spec, self.grace_seconds, launcher, name, files, watchdog=self.watchdog
        )


# A forked run costs less CPU before its instant (no exec) but more at it:
# its exit tears down memory it shares with the launcher and every other
# run forked from it. Released alone (a late run, a sparse schedule), the
# fork wins; released among a thousand at one instant, the burst's tail
# waited for that work (1,000 due in one second: p99 median ~610 ms with
# gates exec'd ahead, ~690 forked). So past this many runs armed ahead for
# one instant, the rest get a gate exec'd for them.
FORKED_PER_INSTANT = 64


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _ahead_of(spec: RunSpec) -> float | None:
    """The run's fire instant, if it is still ahead (the run waits for it)."""
    if spec.fire is None:
        return None
    instant = spec.fire.seconds + spec.fire.nanos / 1e9
    return instant if instant > time.time() else None
