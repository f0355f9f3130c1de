"""The ``cronfleet`` command's entry. A role process (``cronfleet worker``,
as ``cronfleet up``, the image and the manifests start them) goes straight to
its role; every other command loads the command line first (Typer, Rich and
the client: half a second of every process's start, six at once on ``up``)."""

from __future__ import annotations

import sys

ROLE_NAMES = ("coordinator", "scheduler", "worker", "gateway")


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 1 and args[0] in ROLE_NAMES:
        try:
            from launch.roles import main as run_role
            from launch.roles import role_run

            role_run(args[0])  # imported here, so that a missing library is caught
        except ModuleNotFoundError:
            pass  # the SDK's install: the command line says what is missing
        else:
            run_role(args[0])
            return
    from cli.app import main as run_command

    run_command()
