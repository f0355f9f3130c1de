"""The process runtime's exec'd gate (``process_launch = "exec"``, and runs
past FORKED_PER_INSTANT): ``/bin/sh`` spawned per run, with what it runs."""

from __future__ import annotations

import os
import shutil

from worker.gate_scripts import SEED_CHECKPOINT

# The process runtime's gate: gate_scripts.GATE_SCRIPT less what only a container
# needs. It changes to the run's folder (its $1, shifted away: the command sees
# no arguments), seeds the checkpoint, blocks reading a line, evals the command.
# No traps: the worker reads the checkpoint file itself, and the spawn points
# stderr at the output (fd 3, for steps, at the report): nothing waits in the shell.
PROCESS_GATE_SCRIPT = (
    'cd -- "$1" || exit 125\nshift\n'
    + SEED_CHECKPOINT
    + """\
unset _cp
read -r _cronfleet_go || exit 125
unset _cronfleet_go
exec </dev/null
eval "$CRONFLEET_SCRIPT"
"""
)
# For a command that is one program with its arguments: exec'd, not forked.
PROGRAM_GATE_SCRIPT = PROCESS_GATE_SCRIPT.replace('eval "$CRONFLEET_SCRIPT"', 'eval "exec $CRONFLEET_SCRIPT"')
WRITE_NEW = os.O_WRONLY | os.O_CREAT | os.O_TRUNC  # opened in the child, for the gate

# setpriv (util-linux) sets the parent-death signal and execs the gate, so a
# run dies with its worker instead of outliving it; Python's preexec_fn would
# do the same but is unsafe in a process with threads (gRPC has some).
SETPRIV = shutil.which("setpriv")
DIE_WITH_WORKER = [SETPRIV, "--pdeathsig", "KILL", "--"] if SETPRIV else []
