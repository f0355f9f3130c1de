"""The worker's watchdog: kills the worker's runs when the worker dies or
stops answering, so that a run is never live twice.

A run's process group outlives its worker (a SIGKILLed worker takes only its
direct children with it, by the parent-death signal) and goes on while the
worker is frozen (SIGSTOP, a VM pause): meanwhile the coordinator declares
the run lost and runs it again elsewhere. So each worker starts this small
process in a session of its own (stdlib only, run by path), tells it on a
pipe each run's process group as it starts and ends (the process runtime's
launcher, worker.launcher, says the start of each run it forks, before the
worker knows its pid), and writes to it every ``BEAT`` seconds. Silent for
``limit`` seconds (frozen), or the pipe closed (dead; the launcher, which
holds it too, exits on its worker's death once it has killed its runs):
the watchdog writes a fence mark for each group, then SIGKILLs it,
and keeps watching (a frozen worker may wake up; its killed runs then end
as ``lost``, from the mark). The limit is below the time the coordinator
waits before it declares a silent worker's runs lost (see coordinator.node).

The Docker runtime's runs live in containers, which outlive their worker
the same way: it tells the watchdog each run's container (``c<id>``, or
``c<id>.<nonce>`` for a run in a per_job container), and the watchdog kills
those through the engine's API (``POST /containers/<id>/kill`` on its Unix
socket, ``$DOCKER_HOST`` or the default one: stdlib HTTP, no SDK).

Lines on the pipe: ``+RUN``, ``-RUN`` (RUN: a process group id, or a
container as above), ``.`` (a beat), ``stop`` (a clean shutdown: the worker
has dealt with its runs itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time

BEAT = 0.5


class _EngineConnection(http.client.HTTPConnection):
    """HTTP to the Docker engine over its Unix socket."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


def engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return host.removeprefix("unix://") if host.startswith("unix://") else ""


def kill_container(container_id: str) -> str:
    """SIGKILL a container through the engine; what went wrong, or ""."""
    path = engine_socket()
    if not path:
        return "DOCKER_HOST is not a Unix socket"
    conn = _EngineConnection(path)
    try:
        conn.request("POST", f"/containers/{container_id}/kill?signal=KILL")
        status = conn.getresponse().status
    except OSError as exc:
        return str(exc)
    finally:
        conn.close()
    # 409: not running (ended, or never released); 404: removed meanwhile.
    return "" if status in (204, 404, 409) else f"engine answered {status}"


def kill(run: str) -> str:
    if run.startswith("c"):
        return kill_container(run[1:].split(".")[0])
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(int(run), signal.SIGKILL)
    return ""


def fence(runs: set[str], fence_dir: str, why: str, told: int = -1) -> None:
    """Mark and kill each run; first tell the worker (a byte on ``told``)
    that it has marks to take from now on."""
    if runs and told >= 0:
        with contextlib.suppress(OSError):  # full: told already; closed: the worker is gone
            os.write(told, b"!")
    for run in sorted(runs):
        with open(os.path.join(fence_dir, run), "w") as mark:
            mark.write(why)
        failed = kill(run)
        what = f"container {run[1:]}" if run.startswith("c") else f"run group {run}"
        said = f"could not kill {what}: {failed}" if failed else f"killed {what}"
        print(f"{time.strftime('%H:%M:%S')} watchdog: {said} ({why})", file=sys.stderr)
    runs.clear()


# After each read the watchdog naps this long before it waits on the pipe
# again: lines written meanwhile wait in the pipe, and their write wakes
# nobody. Waiting at once, it was woken for each run's start and end, and
# each waking write cost the worker's loop 40 us (a tenth of a short run's
# worker time). Nothing is missed: the pipe's end of file comes after every
# line in it, and the silence it allows is counted from the last read.
NAP = 0.02


def watch(limit: float, fence_dir: str, fd: int = 0, told: int = -1) -> None:
    groups: set[str] = set()
    pending = b""
    napped = 0.0
    while True:
        ready, _, _ = select.select([fd], [], [], max(limit - napped, 0.0))
        if not ready:
            fence(groups, fence_dir, f"the worker did not answer for {limit:g} s", told)
            napped = 0.0
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            fence(groups, fence_dir, "the worker died", told)
            return
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.startswith(b"+"):
                groups.add(line[1:].decode())
            elif line.startswith(b"-"):
                groups.discard(line[1:].decode())
            elif line == b"stop":
                return
        time.sleep(NAP)
        napped = NAP


class Watchdog:
    """The worker's end: starts the watchdog and talks to it."""

    def __init__(self, limit: float, fence_dir: str) -> None:
        self.limit = limit
        self.fence_dir = fence_dir
        os.makedirs(fence_dir, exist_ok=True)
        # A previous life's marks of process groups are no run of this life's
        # (those groups are gone; a pid now may be a new run's): removed.
        # Its containers' marks stay, for the runs it recovers (worker.docker_claims).
        for name in os.listdir(fence_dir):
            if name.isdigit():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(fence_dir, name))
        read_end, self._fd = os.pipe()
        # Its word that it has fenced: until then no run of this life has a
        # mark, and a run's end looks for none (an open that failed, a path
        # walk on the disk, was a twentieth of a short run's worker time).
        self._told, told = os.pipe()
        os.set_blocking(self._told, False)
        os.set_blocking(told, False)
        self._fenced = False
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(limit), fence_dir, str(told)],
            stdin=read_end,
            pass_fds=(told,),
            start_new_session=True,  # a signal meant for the worker does not reach it
        )
        os.close(read_end)
        os.close(told)
        self._beating: asyncio.Task[None] | None = None
        self._later: list[bytes] = []  # lines for the next write

    async def keep_alive(self, stop: asyncio.Event) -> None:
        """Beat every BEAT until ``stop`` (the runtime's keep-warm loop), then
        from a task of its own until :meth:`stop`: stopping the runs on a
        graceful stop (SIGTERM, a grace, SIGKILL) may take longer than the
        limit, and silent meanwhile the watchdog would kill them as lost."""
        while not stop.is_set():
            self.beat()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BEAT):  # stdlib only: see cronfleet.aio.within
                    await stop.wait()
        if self._beating is None:
            self._beating = asyncio.get_running_loop().create_task(self._beat_until_stopped())

    async def _beat_until_stopped(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(BEAT)

    def _say(self, line: bytes) -> None:
        self._later.append(line)
        self.flush()

    def _say_soon(self, line: bytes) -> None:
        """Said with the others of this turn of the loop, in one write: a
        write per run start and end was 8% of a short run's worker time."""
        self._later.append(line)
        if len(self._later) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running: said at once
                self.flush()

    def flush(self) -> None:
        if not self._later:
            return
        data, self._later = b"\n".join(self._later) + b"\n", []
        with contextlib.suppress(OSError):  # a watchdog that died: nothing left to tell
            # In writes of whole lines of at most PIPE_BUF bytes, each written
            # whole: the launcher writes its runs' groups into the same pipe.
            while len(data) > select.PIPE_BUF:
                cut = data.rindex(b"\n", 0, select.PIPE_BUF) + 1
                os.write(self._fd, data[:cut])
                data = data[cut:]
            os.write(self._fd, data)  # a few lines into a pipe it drains: never blocks long

    def started(self, pgid: int) -> None:
        """A gate spawned, not yet released: told before its release (its
        runtime calls :meth:`flush` then). Until then, a worker's death
        closes the gate's pipe and it runs nothing."""
        self._say_soon(b"+%d" % pgid)

    def ended(self, pgid: int) -> str | None:
        """Forget the group; why the watchdog killed it, if it did."""
        return self._forget(str(pgid))

    def watch_container(self, container_id: str, nonce: str = "") -> None:
        """A run in a container (a per_job one: with the run's nonce)."""
        self._say(b"+" + container_run(container_id, nonce).encode())

    def unwatch_container(self, container_id: str, nonce: str = "") -> str | None:
        """Forget the container's run; why the watchdog killed it, if it did."""
        return self._forget(container_run(container_id, nonce))

    def _forget(self, run: str) -> str | None:
        self._say_soon(b"-" + run.encode())
        return take_mark(self.fence_dir, run) if self._has_fenced() else None

    def _has_fenced(self) -> bool:
        """Whether this life's watchdog has fenced (marked runs) yet. (A mark
        a previous life's left is not this life's runs': their groups are
        gone, and a pid now reused by a run of this life is not that run.)"""
        if not self._fenced and self._told >= 0:
            with contextlib.suppress(BlockingIOError):
                self._fenced = bool(os.read(self._told, 64))
        return self._fenced

    @property
    def pipe(self) -> int:
        """The write end of its pipe: the launcher (worker.launcher) writes the
        groups of the runs it forks into it too, each line in one write."""
        return self._fd

    def beat(self) -> None:
        self._say(b".")

    def stop(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
        self._say(b"stop")
        os.close(self._fd)
        os.close(self._told)
        self._told, self._fenced = -1, True  # stopped: an end after this looks for its mark
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2)


def container_run(container_id: str, nonce: str = "") -> str:
    """How the pipe and the marks name a run in a container."""
    return f"c{container_id}.{nonce}" if nonce else f"c{container_id}"


def take_mark(fence_dir: str, run: str) -> str | None:
    """Why a watchdog (this worker's, or a previous life's) killed the run, if
    it did; the mark is consumed."""
    mark = os.path.join(fence_dir, run)
    try:
        with open(mark) as f:
            why = f.read()
        os.unlink(mark)
        return why
    except FileNotFoundError:
        return None


if __name__ == "__main__":
    watch(float(sys.argv[1]), sys.argv[2], 0, int(sys.argv[3]))
