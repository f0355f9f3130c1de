"""The gate of a resident (``per_job``) container: the shell script it runs,
and :class:`Resident`, one container's stream of the lines it says, routed
to its runs.

Prepared ahead, like the pool: arming a run sends ``prep NONCE EXPORTS`` (one
line of shell, ``gate_scripts.shell_exports``), and
the gate forks the run's own session (environment sourced, folder made,
checkpoint seeded) blocked on a FIFO; releasing it writes ``go`` into that
FIFO (in the container's release folder, worker.release_fifos; without one,
``go NONCE`` on stdin has the gate write it), which the blocked shell reads
before it evals the command, so nothing is forked at the fire instant.
``drop`` ends a prepared run unstarted.

The gate speaks on the container's stderr, one line per fact (each a single
write under PIPE_BUF, so concurrent runs' lines never interleave), each
starting with the run's nonce: ``NONCE pid P``, ``NONCE report LINE``,
``NONCE checkpoint BASE64``, ``NONCE out BASE64`` (the output, once it ended),
``NONCE dirty``, ``NONCE end EXIT_CODE``. Nothing but live logs and kills
goes through the engine while a run lives.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from worker.pool import Profile

# The gate reads commands on stdin. Each run's supervisor is a background
# subshell (so nothing of one run's environment reaches another); it starts
# the run under setsid (its own process group, stdin closed, output into a
# file, the steps' report on fd 3), blocked reading fd 9, the run's FIFO
# (/gate/NONCE, the worker's; else one the gate makes in /tmp), which the
# gate opened for it and which stays open in the run, so "go" written by
# name is kept until read. A run is dirty when a live (not zombie:
# the gate reaps orphans only between commands) process is left in its group.
# The /proc scan that tells (~2 ms of shell a run, as fifty runs of the same
# second exit among the last of them starting) runs only when a signal 0 to
# the group finds someone, zombies included; an empty group ends it at once.
# Nothing but the gate's lines may reach stderr: the shell's own complaint
# about a /proc entry gone mid-scan ("can't open ...", written before a
# trailing 2>/dev/null applies) once split another run's "end" line, and that
# run waited out its timeout.
# dash keeps every background job, done or not, until ``jobs`` shows it; the
# gate wants no job's status (each run says its own end), so ``jobs`` after
# each fork frees the ones done. Kept, a job a run grew the gate for the
# container's life, and each fork walked them (20,000 forks: 2.1 -> 2.7 MB,
# 5.0 s; with ``jobs``: 1.8 MB flat, 2.4 s).
# When the run exits the gate looks for what it left (at once: a pid freed
# now may be reused later) and says it exited, then waits 0.3 s (a read with
# a timeout: no process) before reporting its output (a few forks): runs due
# together end together, and that work at the fire instant made the last of
# fifty start 30-60 ms later. What it found is looked for again after the
# wait: when a timeout's TERM reaches the group, the shell can be reaped
# before its child has died of the same signal, and a loaded machine showed
# that child as "left running" (the container was replaced for nothing).
RESIDENT_GATE_SCRIPT = """\
_until_go='read -r _g <&9; exec 9<&-; [ "$_g" = go ] || exit 125'
_then_run='exec 3>"$1.report"; eval "$CRONFLEET_SCRIPT"'
_say() { while IFS= read -r _l; do echo "$1 $2 $_l" >&2; done; }
_left() {
  kill -0 -"$1" 2>/dev/null || return 1
  for _s in /proc/[0-9]*/stat; do
    { read -r _l < "$_s"; } 2>/dev/null || continue
    set -- "$1" ${_l##*) }
    [ "$4" = "$1" ] && [ "$2" != Z ] && return 0
  done
  return 1
}
_run() {
  _n=$1; _f=/tmp/.cronfleet-$_n
  eval "$2"
  _cp=$CRONFLEET_CHECKPOINT
  if [ -n "$CRONFLEET_CHECKPOINT_SEED" ]; then
    printf %s "$CRONFLEET_CHECKPOINT_SEED" | base64 -d > "$_cp" 2>/dev/null || : > "$_cp"
  else
    : > "$_cp"
  fi
  unset CRONFLEET_CHECKPOINT_SEED
  mkdir -p "/work/run-$_n" && cd "/work/run-$_n" || { echo "$_n end 1" >&2; exit 1; }
  setsid sh -c "$_until_go; $_then_run" sh "$_f" </dev/null >"$_f.out" 2>&1 &
  _pid=$!
  exec 9<&-
  echo "$_n pid $_pid" >&2
  wait "$_pid"; _rc=$?
  _left "$_pid" && _dirty=1 || _dirty=
  echo "$_n exited $_rc" >&2
  read -t 0.3 _z <>"$_door" 2>/dev/null
  [ -n "$_dirty" ] && { _left "$_pid" || _dirty=; }
  [ -s "$_cp" ] && head -c 65537 "$_cp" | base64 | _say "$_n" checkpoint
  [ -f "$_f.report" ] && _say "$_n" report < "$_f.report"
  [ -s "$_f.out" ] && head -c 16777216 "$_f.out" | base64 | _say "$_n" out
  [ -n "$_dirty" ] && echo "$_n dirty" >&2
  cd /work && rm -rf "/work/run-$_n" "$_cp" "$_f.report" "$_f.out" "$_f.go"
  echo "$_n end $_rc" >&2
}
while read -r _cmd _n _data; do
  case $_cmd in
    prep) _door=/gate/$_n; [ -p "$_door" ] || { _door=/tmp/.cronfleet-$_n.go; mkfifo "$_door"; } &&
          exec 9<>"$_door" && { (_run "$_n" "$_data") & }
          exec 9<&-; jobs >/dev/null ;;
    go|drop) [ -p "/tmp/.cronfleet-$_n.go" ] && echo "$_cmd" 1<>"/tmp/.cronfleet-$_n.go" ;;
  esac
done
"""


@dataclass
class Resident:
    """One job's long-lived container, and the lines its gate has said per run."""

    container: Any
    sock: socket.socket
    job_id: str
    profile: Profile
    runs: int = 0  # runs prepared or running in it
    retiring: bool = False  # a run left something behind: no new runs, removed when empty
    dead: bool = False
    last_used: float = field(default_factory=time.monotonic)
    inbox: dict[str, asyncio.Queue[str]] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)  # by nonce, said at preparation
    reader: asyncio.Task[None] | None = None
    fifos: str | None = None  # its folder of release FIFOs (worker.release_fifos), if any
    # Told when a run's end is read (dirty or not), or the container died.
    ended: Callable[[Resident, bool], None] | None = None
    _dirty: set[str] = field(default_factory=set)

    def send(self, line: str) -> None:
        self.sock.setblocking(True)  # a line is small; the gate reads at once
        try:
            self.sock.sendall(line.encode() + b"\n")
        finally:
            self.sock.setblocking(False)

    async def read(self) -> None:
        """Demultiplex the attach stream (8-byte frame headers) and route the
        stderr lines to the run whose nonce starts them."""
        loop = asyncio.get_running_loop()
        buffer, text = b"", ""
        try:
            while True:
                chunk = await loop.sock_recv(self.sock, 65536)
                if not chunk:
                    break
                buffer += chunk
                while len(buffer) >= 8:
                    kind, size = buffer[0], struct.unpack(">I", buffer[4:8])[0]
                    if len(buffer) < 8 + size:
                        break
                    payload, buffer = buffer[8 : 8 + size], buffer[8 + size :]
                    if kind == 2:  # stderr: the gate's lines
                        text += payload.decode(errors="replace")
                        *lines, text = text.split("\n")
                        for line in lines:
                            self.route(line)
        except OSError:
            pass
        finally:
            self.dead = True
            for queue in self.inbox.values():
                queue.put_nowait("died")
            if self.ended is not None:
                self.ended(self, True)

    def route(self, line: str) -> None:
        """A gate line to the run whose nonce starts it. A line with something
        else in front (another process's stray write) is still routed by the
        nonce in it, so no run misses its end."""
        nonce, _, rest = line.partition(" ")
        if nonce not in self.inbox:
            found = next((n for n in self.inbox if f"{n} " in line), None)
            if found is None:
                return
            nonce, rest = found, line.split(f"{found} ", 1)[1]
        self.inbox[nonce].put_nowait(rest)
        self._heard(nonce, rest)

    def _heard(self, nonce: str, said: str) -> None:
        if said.startswith("pid "):
            self.pids[nonce] = int(said[4:])
        elif said == "dirty":
            self._dirty.add(nonce)
        elif said.startswith("end ") and self.ended is not None:
            self.pids.pop(nonce, None)
            self.ended(self, nonce in self._dirty)
            self._dirty.discard(nonce)
