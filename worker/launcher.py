"""The process runtime's launcher: one resident ``/bin/sh`` per worker that
forks each run, instead of a shell exec'd per run.

An exec is the floor of a spawned run: ~0.6 ms of CPU here before anything
runs, half of what a trivial run cost the machine in all. A fork of a shell
that is already running costs a fraction of it, so the launcher reads one
short line per run and forks the run as a background job, with job control
on: each run is still a process group of its own (killed as one), and keeps
SIGINT and SIGQUIT as they were (without job control a background job
ignores them, for good). dash turns job control on only with a terminal, so
the launcher starts with a pty that is hung up at once (below).

Lines the worker writes (stdin), each answered by one line (fd 3), in order:
``p NAME`` forks a run and answers its pid; ``w PID NAME`` answers the
exit status of a run that has ended (the worker sees the end on a pidfd;
the launcher has reaped it, and keeps its status in its job table until
asked, then frees the job).

A run's environment and where its output goes are in ``NAME.env`` in the
launcher's private folder (memory-backed where /dev/shm is: it may hold
secrets; mode 0700), sourced by the run, not sent on the line: a shell reads
a pipe a byte per syscall. A run armed ahead of its instant then waits on
the FIFO ``NAME.go``, which the worker holds open and writes "go" into at
the instant; one armed after it runs as it is forked (no FIFO, no release:
in a backlog of late `true` runs the FIFO's making, opening, writing and
removing were a seventh of the worker's time a run).

With a watchdog (worker.watchdog), the launcher tells it each run's group
(``+PID`` on the watchdog's pipe, its fd 4) before it answers the worker:
a run forked running is known to the watchdog whatever the worker's loop
is doing meanwhile (frozen, it could not have said it).

What differs from a gate exec'd per run (README, "The process runtime"):
its session is the launcher's (still a process group of its own, and no
terminal); a run killed by a signal reads 128+N, as ``$?`` says, without
"killed by signal N" (the shell's wait does not tell); ``$$`` in a forked
shell is the launcher's pid, so a command that says ``$$`` (or a step of it)
is exec'd in a shell of its own, at the old cost. ``process_launch = "exec"``
gives the exec'd gate back. A command that is one program with its
arguments is exec'd by the forked shell (worker.command_text).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import shutil
import signal
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from worker.command_text import needs_own_shell
from worker.process_host import groups_in_session, private_folder
from worker.release_fifos import held_fifo
from worker.runtime import REPORT_FILE, RunSpec

if TYPE_CHECKING:
    from worker.watchdog import Watchdog

# The launcher has job control (set -m) only while it has a terminal when
# it turns it on: it gets a pty, says it is ready, and the worker closes the
# pty's master. That hangs the terminal up (the launcher ignores the SIGHUP),
# and nobody in its session has a terminal from then on (/dev/tty fails, as
# for a run exec'd in a session of its own), while job control stays on.
# The run's part (_run, forked as a background job): the hangup's and broken
# pipe's ignores undone, the launcher's answer pipe and stdin closed, the
# run's file sourced, its claim on beginning taken if it is forked running
# (``NAME.began`` made new, noclobber: an exclusive create in dash; a run
# the worker stopped meanwhile finds it made, by worker.process_run's
# withhold, and exits having run nothing; a file the command is not told
# of, so it cannot undo the claim), the output pointed at the spool file
# (and fd 3 at the steps' report), the checkpoint seeded, then it waits for
# "go" (if held) and runs. Everything but the wait is done when armed. A function, not an inline
# { ... } &: the shell keeps each job's command text in its job table, and
# 700 bytes a job grew the launcher's heap, which each later fork copied and
# each exit tore down (3,000 `true` runs: 1,100 -> 1,700 runs/s).
# dash's ``wait PID`` says a job's status but keeps the job: only ``jobs``
# frees a job that is done, and a plain ``jobs`` frees every done job,
# those whose status the worker has not asked for yet too. So each job is
# forked as ``_run NAME.`` (its command text names it; the run drops the
# argument, so the command's $1 is as empty as with sh -c) and freed by
# ``jobs %_run NAME.`` once its status is said. Kept, the table grew by a
# job a run and each fork walked it: 30,000 `true` runs went 1,760 -> 710
# runs/s, the runs' CPU 370 -> 2,160 us each, the launcher 1.7 -> 3.8 MB.
# On end of file (the worker died) the launcher kills its runs' groups, so
# runs die with their worker even without a watchdog. The watchdog's pipe
# (fd 4, when $2 says there is one) is closed in each run: a run holding
# it would hide its worker's death from the watchdog (which sees it once the
# launcher, its runs killed, has exited). The launcher ignores SIGPIPE: a
# watchdog that died must not take it with it (its runs go on unfenced, as
# the worker's own word to a dead watchdog is dropped).
LAUNCHER_SCRIPT = r"""
_dir=$1 _wd=$2; shift 2
trap '' HUP PIPE
set -m
_run() {
  set +m --
  trap - HUP PIPE
  exec 3>&- 4>&- </dev/null
  unset _c _m _wd
  . "$_dir/$_n.env" || exit 125
  if [ -z "$_hold" ]; then
    set -C
    true >"$_dir/$_n.began" || exit 125
    set +C
  fi
  cd -- "$_run_dir" || exit 125
  exec >"$_out" 2>&1 || exit 125
  if [ -n "$_report" ]; then exec 3>"$_report"; fi
  @SEED_CHECKPOINT@
  if [ -n "$_hold" ]; then
    read -r _go <"$_dir/$_n.go" || exit 125
    [ "$_go" = go ] || exit 125
  fi
  unset _go _hold _n _dir _run_dir _out _report _cp
  unset -f _run
  case $_how in
  own) unset _how; exec /bin/sh -c "$CRONFLEET_SCRIPT" ;;
  program) unset _how; eval "exec $CRONFLEET_SCRIPT" ;;
  esac
  unset _how
  eval "$CRONFLEET_SCRIPT"
}
echo ready >&3
while read -r _c _n _m; do
  case $_c in
  p) eval "_run $_n. &"; [ -z "$_wd" ] || echo "+$!" >&4; echo "$!" >&3 ;;
  w) wait "$_n"; echo "$?" >&3; jobs "%_run $_m." ;;
  esac
done
jobs -p >"$_dir/.left"
while read -r _p; do kill -KILL "-$_p" 2>/dev/null; done <"$_dir/.left"
"""


def env_file(env: dict[str, str], shell_vars: dict[str, str]) -> bytes:
    """The run's file: ``export NAME='value'`` for each variable, then the
    launcher's own (unexported) variables. Single quotes take any byte but
    the quote itself, which is closed, escaped and reopened."""
    lines = [f"export {name}={_quoted(value)}" for name, value in env.items()]
    lines += [f"{name}={_quoted(value)}" for name, value in shell_vars.items()]
    return ("\n".join(lines) + "\n").encode()


def _run_vars(spec: RunSpec, one_program: bool, hold: bool) -> dict[str, str]:
    """What the run part reads besides the environment: where to go, what
    to write there (the output and report, by name: the run opens them once
    in its folder), whether it waits for its release, and how it runs the
    command: in a shell of its own ("own"), exec'd ("program",
    ``one_program``: worker.command_text), or evaluated."""
    how = "program" if one_program else ""
    if needs_own_shell([spec.command, *(s.run for s in spec.steps)]):
        how = "own"
    return {
        "_run_dir": str(spec.run_dir.absolute()),
        "_out": spec.spool_path.name,
        "_report": REPORT_FILE if spec.steps else "",
        "_how": how,
        "_hold": "1" if hold else "",
    }


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


# A run starts with these at their defaults, whatever the worker had: Python
# ignores SIGPIPE and SIGXFSZ, a worker started in the background by a shell
# ignores SIGINT and SIGQUIT (by nohup, SIGHUP), and an ignored signal stays
# ignored through exec (a shell cannot undo it): a run would never die of a
# broken pipe, or of a ^C its own script sends a child.
DEFAULT_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ)


class Launcher:
    """The resident shell, started on first use and again after it dies."""

    def __init__(self, seed_checkpoint: str, env: dict[str, str], watchdog: Watchdog | None = None) -> None:
        """``env``: the launcher's own environment (each run's file adds its
        own); ``watchdog``: told the group of each run it forks."""
        self.dir = private_folder()
        self._env = env
        self._watchdog = watchdog
        self._names = itertools.count()
        self._script = LAUNCHER_SCRIPT.replace("@SEED_CHECKPOINT@", seed_checkpoint.replace("\n", "\n  "))
        self.pid = 0
        self._lines = -1  # the write end of its stdin
        self._answers = -1  # the read end of its fd 3
        self._pending: deque[Callable[[int | None], None]] = deque()
        self._partial = b""
        self._unsaid: list[bytes] = []
        # By name, not pid: a pid of a launcher that died may be reused by a
        # run of the next one. A run not here when asked about was its: gone.
        self._live: dict[str, int] = {}  # runs forked and not yet asked about: name -> pid

    def _start(self) -> None:
        lines_r, lines_w = os.pipe()
        answers_r, answers_w = os.pipe()
        master, terminal = os.openpty()
        # The watchdog's pipe, copied above the descriptors the actions below
        # write over (its own number could be 3 or 4), closed after.
        told = fcntl.fcntl(self._watchdog.pipe, fcntl.F_DUPFD_CLOEXEC, 10) if self._watchdog else -1
        ready = b""
        try:
            self.pid = os.posix_spawn(
                "/bin/sh",
                ["/bin/sh", "-c", self._script, "/bin/sh", self.dir, "1" if told >= 0 else ""],
                self._env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, lines_r, 0),
                    (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, 1, 2),  # the shell's notes on killed jobs: nobody's
                    (os.POSIX_SPAWN_DUP2, answers_w, 3),
                    # Opened by a session leader: its controlling terminal.
                    (os.POSIX_SPAWN_OPEN, 4, os.ttyname(terminal), os.O_RDWR, 0),
                    (os.POSIX_SPAWN_CLOSE, 4),
                    *([(os.POSIX_SPAWN_DUP2, told, 4)] if told >= 0 else []),
                ],
                setsid=True,
                setsigdef=DEFAULT_SIGNALS,
            )
            ready = os.read(answers_r, 6)  # noqa: ASYNC230 - a few ms, once per launcher
        finally:
            for fd in (lines_r, answers_w, terminal, master, told):  # master: the hangup
                if fd >= 0:
                    os.close(fd)
            if ready != b"ready\n":
                os.close(lines_w)
                os.close(answers_r)
        if ready != b"ready\n":
            raise OSError(f"the process runtime's launcher did not start: {ready!r}")
        self._lines, self._answers = lines_w, answers_r
        os.set_blocking(answers_r, False)
        asyncio.get_running_loop().add_reader(answers_r, self._read_answers)

    def _ask(self, line: bytes, then: Callable[[int | None], None]) -> None:
        """Said with the others of this turn of the loop, in one write: a
        burst of runs ending woke the launcher once per run."""
        if self._lines < 0:
            self._start()
        self._pending.append(then)
        self._unsaid.append(line)
        if len(self._unsaid) == 1:
            asyncio.get_running_loop().call_soon(self._say)

    def _say(self) -> None:
        data, self._unsaid = b"".join(self._unsaid), []
        if self._lines < 0:
            return  # it died meanwhile: what was asked has failed already
        with contextlib.suppress(OSError):  # it died: its answers' end of file fails what is asked
            _write_all(self._lines, data)

    def prepare(
        self, spec: RunSpec, env: dict[str, str], one_program: bool = False, hold: bool = True
    ) -> tuple[str, int, tuple[str, ...]]:
        """The run's files: ``NAME.env`` (``env``, and where it goes and
        writes) and, if it is to ``hold`` for its release, the FIFO
        ``NAME.go``, held open (read and write: never blocks, never EOF)
        until the run ends, so "go" waits in it however late the run opens
        it. Its name, the FIFO's descriptor (-1: none), the files."""
        name = f"r{next(self._names)}"
        env_path, go_path = f"{self.dir}/{name}.env", f"{self.dir}/{name}.go"
        fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, env_file(env, _run_vars(spec, one_program, hold)))
        finally:
            os.close(fd)
        if not hold:
            return name, -1, (env_path, self.claim_of(name))
        return name, held_fifo(go_path), (env_path, go_path)

    def claim_of(self, name: str) -> str:
        """Where a run forked running takes its claim on beginning (above)."""
        return f"{self.dir}/{name}.began"

    async def launch(self, name: str) -> int:
        """Fork the run whose file is ``NAME.env``; its pid (and group)."""
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        def answered(pid: int | None) -> None:
            if not answer.cancelled():
                answer.set_result(pid)
            elif pid is not None:  # its arming was given up: the run goes
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                if self._watchdog is not None:
                    self._watchdog.ended(pid)  # nobody else will say it
                self._live[name] = pid
                self.status(name, lambda _: None)  # and the launcher forgets it

        self._ask(f"p {name}\n".encode(), answered)
        pid = await answer
        if pid is None:
            raise OSError("the process runtime's launcher died")
        self._live[name] = pid
        return pid

    def status(self, name: str, then: Callable[[int | None], None]) -> None:
        """``then`` gets the exit status of the ended run ``name`` (None: its
        launcher died, and the status with it)."""
        pid = self._live.pop(name, None)
        if pid is None:  # a run of a launcher that died
            then(None)
            return
        self._ask(f"w {pid} {name}\n".encode(), then)

    def _read_answers(self) -> None:
        try:
            chunk = os.read(self._answers, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self._gone()
            return
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            self._pending.popleft()(int(line))

    def _gone(self) -> None:
        """Its answers ended: the launcher exited (or was killed). Reap it,
        fail what was asked; the next run starts a new one."""
        asyncio.get_running_loop().remove_reader(self._answers)
        os.close(self._answers)
        os.close(self._lines)
        self._answers = self._lines = -1
        self._partial = b""
        self._unsaid = []
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        pending, self._pending = self._pending, deque()
        for then in pending:
            then(None)
        # Its runs live on, but nobody can tell how they end: they go (lost:
        # run again by the scheduler's rules for a run lost with its worker),
        # with any it forked and had not said yet (forked running: not held).
        unsaid = groups_in_session(self.pid) - set(self._live.values())
        for group in {*self._live.values(), *unsaid}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        if self._watchdog is not None:
            for group in unsaid:  # the others' ends say it
                self._watchdog.ended(group)
        self._live = {}

    async def close(self) -> None:
        """End of file: the launcher kills the runs still in it and exits
        (waited for in a thread: the loop goes on meanwhile)."""
        if self._lines >= 0:
            asyncio.get_running_loop().remove_reader(self._answers)
            os.close(self._lines)
            os.close(self._answers)
            self._lines = self._answers = -1
            with contextlib.suppress(ChildProcessError):
                await asyncio.to_thread(os.waitpid, self.pid, 0)
        await asyncio.to_thread(shutil.rmtree, self.dir, ignore_errors=True)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]
