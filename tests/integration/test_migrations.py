"""All migrations applied give exactly schema.sql."""

from __future__ import annotations

import subprocess
from importlib import resources

import psycopg

from cronfleet.db.migrate import migrate, migration_files
from launch.devservices import LocalPostgres, _pg_bin


def _dump(url: str) -> str:
    out = subprocess.run(
        [
            _pg_bin("pg_dump"),
            "--schema-only",
            "--no-owner",
            "-T",
            "schedule_2*",
            "-T",
            "executions_2*",
            "-T",
            "schema_migrations",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return "\n".join(
        line for line in out.splitlines() if not line.startswith(("--", "\\restrict", "\\unrestrict"))
    )


def test_migrations_equal_schema(pg_server: LocalPostgres) -> None:
    migrated = pg_server.create_database("mig_applied")
    assert migrate(migrated) == [version for version, _ in migration_files()]
    assert migrate(migrated) == []  # idempotent
    fresh = pg_server.create_database("mig_schema")
    schema = resources.files("cronfleet.db").joinpath("schema.sql").read_text()
    with psycopg.connect(fresh, autocommit=True) as conn:
        conn.execute(schema)
    assert _dump(migrated) == _dump(fresh)
