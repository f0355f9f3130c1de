"""Forward-only migrations: each file in migrations/ runs once, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import psycopg

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# Postgres serialises concurrent migrators (several processes starting at once).
MIGRATE_LOCK = 7_300_001


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("cronfleet.db").joinpath("migrations")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(n.removesuffix(".sql"), folder.joinpath(n).read_text()) for n in names]


def migrate(url: str, partition_days: int = 7) -> list[str]:
    """Apply pending migrations; return the versions applied."""
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
        try:
            conn.execute(MIGRATIONS_TABLE)
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, text in migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(text)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
            ensure_partitions(conn, partition_days)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
    return applied


def ensure_partitions(conn: psycopg.Connection, days_ahead: int) -> int:
    """Day partitions for yesterday through ``days_ahead`` days from now."""
    today = datetime.now(UTC).date()
    created = 0
    for table in ("schedule", "executions"):
        for offset in range(-1, days_ahead + 1):
            day = today + timedelta(days=offset)
            row = conn.execute("SELECT cronfleet_ensure_day_partition(%s, %s)", (table, day)).fetchone()
            created += bool(row and row[0])
    return created
