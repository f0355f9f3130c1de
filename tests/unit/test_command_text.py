"""Which commands the process runtime's shell may exec rather than fork."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.command_text import one_program

PATH = "/usr/local/bin:/usr/bin:/bin"


@pytest.mark.parametrize(
    "command",
    [
        "date +%s.%N",
        "  date  ",
        "cat /etc/hostname",
        "env $SCRIPT --flag=1",
        "env A=1 date",
        "ls *.txt # all",
    ],
)
def test_one_program_with_plain_arguments(command: str) -> None:
    assert one_program(command, PATH, "/")


@pytest.mark.parametrize(
    "command",
    [
        "",
        "date; date",
        "date && true",
        "date | cat",
        "date &",
        "date > out",
        "date\ndate",
        "(date)",
        "{ date; }",
        "echo $(date)",
        "echo `date`",
        "A=1 date",  # an assignment, not a program
        "echo hi",  # builtins: /bin/echo reads backslashes otherwise
        "cd /tmp",
        "exit 3",
        "true",
        "if true; then date; fi",
        "'date' +%s",  # quoted: left to the shell
        "$PROGRAM x",
        "kill $$",
        "no-such-program-here",  # the shell's own message for it
        "date \\\n+%s",
        "date\x0b+%s",  # dash splits words on spaces and tabs only
        "date\xa0+%s",
        "setsid sleep 9",  # a group leader's setsid forks and returns at once
    ],
)
def test_anything_else_keeps_its_shell(command: str) -> None:
    assert not one_program(command, PATH, "/")


def test_a_program_at_a_path_is_found_from_the_runs_folder(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    assert not one_program("./job.sh", PATH, str(tmp_path)), "not executable"
    os.chmod(script, 0o755)
    assert one_program("./job.sh arg", PATH, str(tmp_path))
    assert not one_program("./job.sh", PATH, "/"), "relative to the run's folder, not ours"


def test_a_path_with_relative_entries_is_left_to_the_shell() -> None:
    assert not one_program("date", "bin:/usr/bin", "/") and not one_program("date", "/usr/bin::/bin", "/")
