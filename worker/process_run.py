"""One process run: forked by the launcher (worker.launcher), or a gate
spawned per run (worker.process_gate); released, watched through a pidfd,
killed by its group, and read for its outcome."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from worker.launcher import Launcher
from worker.run_folders import may_reuse, remove_checkpoint_folder
from worker.runtime import REPORT_FILE, RunOutcome, RunSpec, cut_checkpoint, step_results
from worker.watchdog import Watchdog

log = structlog.get_logger()


@dataclass
class ProcessRun:
    """A run forked by the launcher (worker.launcher), or a gate spawned with
    ``os.posix_spawn``: it waits to read "go" from a pipe (a FIFO for the
    launcher's) whose write end we hold (release: write "go"), unless the
    launcher forked it running (armed after its instant: ``started_at``),
    and its exit is seen through a pidfd on the event loop. asyncio's subprocess transport
    and child watcher, and even ``subprocess.Popen``, cost more per run than
    the spawn itself."""

    pid: int  # the run's, and its process group's
    gate: int  # the write end of what it waits on; -1 once released or gone, or if forked running
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
    started_at: float | None = None  # forked running (armed after its instant): no release
    claim: str = ""  # then: where it claims its beginning (worker.launcher)
    watchdog: Watchdog | None = None
    on_release: Callable[[], None] | None = None  # told once: released, or gone before
    exits: Exits | None = None  # where its pidfd is watched (the runtime's)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.pidfd < 0:  # it has ended already (started at its fork, and reaped)
            self._exited()
        else:
            assert self.exits is not None
            self.exits.watch(self.pidfd, self._exited)

    @property
    def output_ended(self) -> bool:
        return self._done.is_set()

    def _exited(self) -> None:
        """The pidfd is readable (or there is none: it had ended when its pid
        was said): the run has exited. A spawned gate is our
        child: reaped now. A launched run's status is the launcher's, asked
        for in :meth:`wait` (after the release windows, for a run released
        at its instant: asked at once, a burst's ends kept the launcher
        busy while the runs behind were starting)."""
        if self.pidfd >= 0:
            os.close(self.pidfd)  # and out of the exits' set
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
        if self.watchdog is not None and self.launcher is None:
            # It knows the group before the command can run (a launched
            # run's, the launcher told it before it said the pid).
            self.watchdog.flush()
        with contextlib.suppress(BrokenPipeError):  # it died meanwhile: wait() tells how
            os.write(self.gate, b"go\n")  # 3 bytes into an empty pipe: never blocks
        if self.launcher is None:
            self._close_gate()  # a FIFO stays open until the run has read it: at its end

    def withhold(self) -> bool:
        """A run forked running that has not begun is kept from it: its claim
        on beginning (worker.launcher) taken first, with an exclusive create;
        it then exits 125 having run nothing (or is killed first). False: it
        has begun (or was never forked running). A run that has ended began
        (its claim, one of its files, is removed at its end)."""
        if not self.claim or self._done.is_set():
            return False
        try:
            os.close(os.open(self.claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:
            return False  # made by the run (or unknown: taken as begun)
        self.started_at = None
        return True

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


class Exits:
    """The pidfds of a runtime's runs in one epoll set, which the loop
    watches: a run's end is one epoll_ctl to watch and none to forget
    (closing its pidfd takes it out of the set, as nothing else holds it:
    the worker's only forks are posix_spawn's, on the loop's thread, which
    waits for their exec), where a reader of the loop's own each cost a
    handle, a selector key and two epoll_ctl calls (a tenth of a `true`
    run's worker time). A pidfd is readable from its process's exit on, so
    nothing is missed between two looks. Runs still watched when it closes
    (the runtime's close, after its runs have ended) are followed no more."""

    def __init__(self) -> None:
        self._set: select.epoll | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ended: dict[int, Callable[[], None]] = {}  # pidfd -> what to call when it is readable

    def watch(self, pidfd: int, ended: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new loop (a runtime's tests)
            self.close()
            self._set, self._loop = select.epoll(), loop
            loop.add_reader(self._set.fileno(), self._ready)
        assert self._set is not None
        self._set.register(pidfd, select.EPOLLIN)
        self._ended[pidfd] = ended

    def _ready(self) -> None:
        assert self._set is not None
        for pidfd, _ in self._set.poll(0):
            ended = self._ended.pop(pidfd, None)
            if ended is not None:
                try:
                    ended()  # closes the pidfd
                except Exception:  # its own run's failure; the others' ends go on
                    log.exception("run_end_not_followed", pidfd=pidfd)

    def close(self) -> None:
        self._ended.clear()
        if self._set is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed already
                self._loop.remove_reader(self._set.fileno())
            self._set.close()
        self._set = self._loop = None


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
