"""Where Postgres spends a scenario's time: ``pg_stat_statements``'s top
statements (``python -m bench --pg-statements``)."""

from __future__ import annotations

import re

import psycopg

# Loaded at server start; its view then counts every database's statements.
SERVER_OPTIONS = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top"


def enable(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def reset(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def print_top(db_url: str, fires: int, limit: int = 8) -> None:
    """The statements of this database that took the most time, with their
    cost per fire (``fires``: how many the scenario ran)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            """
            SELECT calls, total_exec_time, rows, shared_blks_hit + shared_blks_read AS blocks,
                   wal_records, query
            FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY total_exec_time DESC
            LIMIT %(limit)s
            """,
            {"limit": limit},
        ).fetchall()
        total = conn.execute(
            "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    assert total is not None
    spent = total[0]
    print(
        f"    Postgres: {spent:,.0f} ms in statements, {spent * 1000 / max(fires, 1):.0f} us per fire; top:"
    )
    for calls, ms, n, blocks, wal, query in rows:
        print(
            f"    {ms:8,.0f} ms {ms * 1000 / max(fires, 1):6.1f} us/fire {calls:7,} calls {n:8,} rows "
            f"{blocks / max(fires, 1):5.1f} blocks/fire {wal / max(fires, 1):5.1f} wal/fire  {_short(query)}"
        )


def _short(query: str, width: int = 70) -> str:
    one = re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", query)).strip()
    return one if len(one) <= width else one[: width - 1] + "…"
