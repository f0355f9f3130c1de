"""``cronfleet <role>`` (how ``cronfleet up``, the image and the manifests
start every role) goes straight to its role: no command-line libraries, no
other role's modules. Each cost a role process 0.5-1.5 s of its start; a
local cluster starts six at once on two cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# The entry as the console script calls it, with the role's run cut short
# once its package is imported (a real run would wait for Postgres and etcd).
ENTRY = """
import sys
import launch.roles
launch.roles.run_role = lambda role, settings: launch.roles.role_run(role)
sys.argv = ["cronfleet", sys.argv[1]]
from cli.entry import main
main()
"""


def start_role(role: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``cronfleet <role>``; ``-X importtime`` lists every module it imports."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, role],
        env=os.environ | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("role", ["coordinator", "scheduler", "worker", "gateway"])
def test_a_role_imports_its_own_package_and_no_other_nor_the_command_line(role: str) -> None:
    done = start_role(role)
    modules = imported(done.stderr)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{role}.node" in modules
    others = {"coordinator", "scheduler", "worker", "gateway"} - {role}
    of_others = sorted(m for m in modules if m.split(".")[0] in others)
    assert not of_others, of_others
    command_line = {"typer", "cli.app", "cronfleet.client"}  # (rich comes with structlog)
    assert not modules & command_line, sorted(modules & command_line)


def test_a_bad_setting_is_one_line_naming_it_and_exit_code_2() -> None:
    done = start_role("worker", CRONFLEET_MEMBER_TTL="soon")
    errors = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error: setting member_ttl: 'soon' is not a number" in errors
