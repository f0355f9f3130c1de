"""What a run's shell is given: the gate scripts (seed the checkpoint, wait
for the release, run the command), the steps script, and the variables that
carry the command, the steps and the checkpoint into them."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.runtime import RunSpec

# The gate (SEED_CHECKPOINT, then the rest): the shell seeds $CRONFLEET_CHECKPOINT with what the previous
# attempt left (base64 in CRONFLEET_CHECKPOINT_SEED; with none, it only creates
# the file: the decoder's fork and exec were a third of a short run's CPU),
# blocks reading one line (from its release FIFO, worker.release_fifos, or
# else stdin), then runs the command itself (eval: no
# second shell to start at the fire time) with stdin closed and stderr merged
# into stdout, in order.
# The command travels in an environment variable, so no quoting of user text
# is ever needed. The original stderr stays open as fd 3, the report channel:
# the steps script writes each step's result there, and on exit (also on
# SIGTERM) the gate writes the checkpoint there as "checkpoint BASE64".
SEED_CHECKPOINT = """\
_cp=${CRONFLEET_CHECKPOINT:-}
if [ -n "$_cp" ] && [ -n "${CRONFLEET_CHECKPOINT_SEED:-}" ]; then
  printf %s "$CRONFLEET_CHECKPOINT_SEED" | base64 -d > "$_cp" 2>/dev/null || : > "$_cp"
elif [ -n "$_cp" ]; then
  : > "$_cp"
fi
unset CRONFLEET_CHECKPOINT_SEED
"""
GATE_SCRIPT = (
    SEED_CHECKPOINT
    + """\
if [ -p /gate/go ]; then read -r _cronfleet_go </gate/go; else read -r _cronfleet_go; fi || exit 125
exec </dev/null 3>&2 2>&1
trap '_rc=$?; if [ -n "$_cp" ] && [ -s "$_cp" ]; then
  { printf "checkpoint "; head -c 65537 "$_cp" | base64 | tr -d "\\n"; echo; } >&3; fi; exit $_rc' EXIT
trap 'exit 143' TERM
eval "$CRONFLEET_SCRIPT"
"""
)

# A pooled container is created before anyone knows what it will run: its
# gate first reads the run itself, one base64 line of "export NAME='value'"
# lines (the job's environment, the script, the checkpoint), sources it from
# its own tmpfs and deletes it, then goes on as the gate above. The line
# arrives when the run is armed, a few seconds (or milliseconds) ahead.
POOL_GATE_SCRIPT = (
    """\
read -r _cronfleet_run || exit 125
printf %s "$_cronfleet_run" | base64 -d > /tmp/.cronfleet-run && . /tmp/.cronfleet-run
rm -f /tmp/.cronfleet-run; unset _cronfleet_run
"""
    + GATE_SCRIPT
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def run_payload(env: dict[str, str]) -> bytes:
    """The line a pooled gate reads: ``env`` as shell exports, base64, newline."""
    lines = []
    for name, value in env.items():
        if not _NAME.match(name):
            raise ValueError(f"not a variable name: {name!r}")  # names are checked at submission
        quoted = "'" + value.replace("'", "'\\''") + "'"
        lines.append(f"export {name}={quoted}\n")
    return base64.b64encode("".join(lines).encode()) + b"\n"


def shell_exports(env: dict[str, str]) -> str:
    """``env`` as one line of shell (``export A=$'...' B=$'...'``) that ash
    evaluates without forking a decoder: quotes, backslashes, control and
    non-ASCII bytes are escaped, so a value cannot end its quote."""
    parts = []
    for name, value in env.items():
        if not _NAME.match(name):
            raise ValueError(f"not a variable name: {name!r}")
        quoted = "".join(
            f"\\x{b:02x}" if b < 0x20 or b >= 0x7F or b in (0x27, 0x5C) else chr(b) for b in value.encode()
        )
        parts.append(f"{name}=$'{quoted}'")
    return "export " + " ".join(parts) if parts else ":"


# Steps run in order in one shell; the first failure stops the run. The log
# frames each step's output for people (`==> step NAME` ... `==> step NAME
# exited 0 in 0.01s`); the result goes to fd 3 as data, one line per step:
# "INDEX EXIT_CODE CENTISECONDS" (from /proc/uptime: plain sh has no
# sub-second clock).
STEPS_SCRIPT = """\
_cs() { read -r _up _rest < /proc/uptime; echo "${_up%.*}${_up#*.}"; }
i=0
while [ "$i" -lt "$CRONFLEET_STEP_COUNT" ]; do
  eval "name=\\$CRONFLEET_STEP_NAME_$i; run=\\$CRONFLEET_STEP_RUN_$i"
  echo "==> step $name"
  t0=$(_cs)
  /bin/sh -c "$run" 3>&-
  rc=$?
  d=$(( $(_cs) - t0 ))
  printf '==> step %s exited %d in %d.%02ds\\n' "$name" "$rc" $((d / 100)) $((d % 100))
  printf '%d %d %d\\n' "$i" "$rc" "$d" >&3
  [ "$rc" -eq 0 ] || exit "$rc"
  i=$((i + 1))
done
"""


def script_env(spec: RunSpec, checkpoint_path: str) -> dict[str, str]:
    """The variables that carry the command (or steps) and the checkpoint into the gate."""
    env = {
        "CRONFLEET_JOB_ID": spec.job_id,
        "CRONFLEET_EXECUTION_ID": str(spec.execution_id),
        "CRONFLEET_ATTEMPT": str(spec.attempt),
        "CRONFLEET_SCHEDULED_AT": spec.scheduled_at,
        "CRONFLEET_CHECKPOINT": checkpoint_path,
        "CRONFLEET_CHECKPOINT_SEED": base64.b64encode(spec.checkpoint).decode(),
    }
    if spec.steps:
        env["CRONFLEET_SCRIPT"] = STEPS_SCRIPT
        env["CRONFLEET_STEP_COUNT"] = str(len(spec.steps))
        for i, step in enumerate(spec.steps):
            env[f"CRONFLEET_STEP_NAME_{i}"] = step.name
            env[f"CRONFLEET_STEP_RUN_{i}"] = step.run
    else:
        env["CRONFLEET_SCRIPT"] = spec.command
    return env
