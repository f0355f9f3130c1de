"""The commands that run cronfleet itself: ``up`` (a local cluster),
``migrate``, and one role per process. They call into ``launch``, the
composition root; imported only when one of them runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from cronfleet.config import Settings

ROLE_NAMES = ("coordinator", "scheduler", "worker", "gateway")


def up(
    schedulers: Annotated[int, typer.Option(help="how many schedulers")] = 2,
    workers: Annotated[int, typer.Option(help="how many workers")] = 2,
    coordinators: Annotated[int, typer.Option(help="how many coordinators")] = 1,
    etcd_members: Annotated[int, typer.Option(help="etcd members to start (3: a quorum)")] = 1,
) -> None:
    """Start a local cluster in the foreground (Ctrl-C stops it): Postgres, etcd and every role.

    Example: cronfleet up --workers 4
    """
    from launch.localcluster import run_local_cluster

    raise typer.Exit(
        run_local_cluster(Settings.from_env(), coordinators, schedulers, workers, etcd_members=etcd_members)
    )


def migrate() -> None:
    """Apply the database migrations (CRONFLEET_DATABASE_URL).

    Example: cronfleet migrate   # the database CRONFLEET_DATABASE_URL names
    """
    from cronfleet.db.migrate import migrate as apply_migrations

    applied = apply_migrations(Settings.from_env().database_url)
    print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


def role_command(role: str) -> Callable[[], None]:
    def run_role() -> None:
        from launch.roles import run_role as run

        run(role, Settings.from_env().with_defaults_for(role))

    run_role.__doc__ = (
        f"Run a {role} in this process (settings from CRONFLEET_* variables).\n\nExample: cronfleet {role}"
    )
    return run_role
