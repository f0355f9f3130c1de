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
from pathlib import Path

import structlog

from cronfleet.v1 import dispatch_pb2
from worker.command_text import one_program
from worker.gate_scripts import SEED_CHECKPOINT, script_env
from worker.launcher import DEFAULT_SIGNALS, Launcher
from worker.process_gate import DIE_WITH_WORKER, PROCESS_GATE_SCRIPT, PROGRAM_GATE_SCRIPT, WRITE_NEW
from worker.process_host import can_launch, close_inherited_on_exec, private_folder
from worker.process_run import Exits, ProcessRun
from worker.run_folders import (
    make_checkpoint_folder,
    make_run_dir,
    make_spares,
    remove_checkpoint_folder,
    remove_kept,
)
from worker.runtime import CHECKPOINT_FILE, REPORT_FILE, ArmedRun, RunSpec
from worker.watchdog import Watchdog

log = structlog.get_logger()
BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ")


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
        self.watchdog = Watchdog(watchdog_seconds, fence_dir) if watchdog_seconds > 0 else None
        self.launcher = Launcher(SEED_CHECKPOINT, self._base_env, self.watchdog) if launch == "fork" else None
        # Checkpoint files in memory where /dev/shm is, not in the runs' folders: a
        # file freed per run made every later inode dearer (worker.run_folders).
        self._private = self.launcher.dir if self.launcher is not None else private_folder()
        self._parents: set[str] = set()  # where its runs' folders are (kept ones too)
        # Arming a forked run is a line to the launcher, answered in order. At 4
        # at a time (a round trip each, on a busy machine) arming lagged and slots
        # came back spread out: 3,000 runs 870 -> 1,229 runs/s with 256 at once.
        self.arm_slots: int | None = 256 if self.launcher else None
        self._waiting_for: collections.Counter[float] = collections.Counter()
        self.exits = Exits()  # its runs' pidfds
        # With a watchdog, it kills the runs' groups the moment the worker's
        # pipe closes (and the launcher's, which exits once it has killed
        # its runs), so the gate needs no parent-death signal of its own:
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
        self.exits.close()
        if self.watchdog is not None:
            self.watchdog.stop()

    async def arm(self, spec: RunSpec) -> ArmedRun:
        home = str(spec.run_dir)
        env = {**self._base_env, "HOME": home}
        env.update(spec.env)
        checkpoint = f"{self._private}/{spec.execution_id}/{CHECKPOINT_FILE}"  # files beside it go too
        make_checkpoint_folder(checkpoint)
        env.update(script_env(spec, checkpoint))
        make_run_dir(spec.run_dir)
        # Its parent cut from the text, not a Path made (2% of a `true` run's worker time).
        self._parents.add(os.path.dirname(home))
        instant = _ahead_of(spec)
        if instant is not None:  # counted until it is released, or gone
            self._waiting_for[instant] += 1
        crowded = instant is not None and self._waiting_for[instant] > FORKED_PER_INSTANT
        program = not spec.steps and one_program(spec.command, env.get("PATH", ""), home)
        try:
            if self.launcher is not None and not crowded:
                # One armed after its instant is forked running (worker.launcher).
                hold = instant is not None or spec.fire_at is None
                run = await self._launch(spec, env, self.launcher, program, hold)
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

    def _spawn(self, spec: RunSpec, env: dict[str, str], program: bool) -> ProcessRun:
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
        return ProcessRun(
            pid, gate, pidfd, spec, self.grace_seconds, watchdog=self.watchdog, exits=self.exits
        )

    async def _launch(
        self, spec: RunSpec, env: dict[str, str], launcher: Launcher, program: bool, hold: bool
    ) -> ProcessRun:
        """Have the launcher fork the run: blocked on its FIFO until released
        if it is to ``hold``, else running (its start is then the fork's)."""
        name, gate, files = launcher.prepare(spec, env, program, hold)
        try:
            pid = await launcher.launch(name)
            started_at = None if hold else time.time()
            try:
                pidfd = os.pidfd_open(pid)
            except OSError as exc:
                if hold or not isinstance(exc, ProcessLookupError):
                    # Not to be watched (held: it died at once, and was reaped): it goes.
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    if self.watchdog is not None:
                        self.watchdog.ended(pid)  # the launcher told it the group
                    launcher.status(name, lambda _: None)  # its job is freed all the same
                    raise
                pidfd = -1  # forked running and over already: its status is asked as any run's
        except BaseException:
            if gate >= 0:
                os.close(gate)
            for path in files:
                os.unlink(path)
            raise
        # The watchdog knows its group already: the launcher told it (worker.launcher).
        return ProcessRun(
            pid,
            gate,
            pidfd,
            spec,
            self.grace_seconds,
            launcher,
            name,
            files,
            watchdog=self.watchdog,
            started_at=started_at,
            claim="" if hold else launcher.claim_of(name),
            exits=self.exits,
        )


# A forked run costs less CPU before its instant (no exec) but more at it:
# its exit tears down memory it shares with the launcher and every other
# run forked from it. Alone at its instant (a late run, forked running; a
# sparse schedule), the fork wins; released among a thousand at one instant, the burst's tail
# waited for that work (1,000 due in one second: p99 median ~610 ms with
# gates exec'd ahead, ~690 forked). So past this many runs armed ahead for
# one instant, the rest get a gate exec'd for them.
FORKED_PER_INSTANT = 64


def _ahead_of(spec: RunSpec) -> float | None:
    """The run's instant, if it is still ahead (the run waits for it)."""
    return spec.fire_at if spec.fire_at is not None and spec.fire_at > time.time() else None
