"""The commands that run cronfleet itself: ``up`` (a local cluster),
``migrate``, and one role per process. They call into ``launch``, the
composition root; imported only when one of them runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cronfleet.config import Settings


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


def certs(
    directory: Annotated[Path, typer.Option("--dir", help="where to keep them")] = Path(".cronfleet/tls"),
    host: Annotated[
        list[str] | None, typer.Option("--host", help="a name or address members dial (repeatable)")
    ] = None,
) -> None:
    """Make a CA and a certificate per role for internal mutual TLS (kept while valid).

    Every certificate names localhost, 127.0.0.1 and ::1, and each --host.
    Give each process its role's three files (the variables printed).

    Example: cronfleet certs --dir ./tls --host scheduler-1 --host coordinator-1
    """
    from cronfleet.tls import ensure_local_pki

    for role, files in ensure_local_pki(directory, host or ()).items():
        print(f"{role}: " + " ".join(f"{k}={v}" for k, v in files.env().items()))


def secret_key() -> None:
    """Print a new key for sealing secret env values (give it to gateways and schedulers).

    Example: cronfleet secret-key > secret.key; export CRONFLEET_SECRET_KEY_FILE=$PWD/secret.key
    """
    from cronfleet.sealing import SecretKey

    print(SecretKey.generate().encoded())


def role_command(role: str) -> Callable[[], None]:
    def run_role() -> None:
        from launch.roles import main

        main(role)

    run_role.__doc__ = (
        f"Run a {role} in this process (settings from CRONFLEET_* variables).\n\nExample: cronfleet {role}"
    )
    return run_role
