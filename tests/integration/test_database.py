"""The pool's sessions: settings every role's connections run with."""

from __future__ import annotations

from cronfleet.db import Database, session_options


async def _setting(db: Database, name: str) -> str:
    async with db.session() as s:
        cur = await s._conn.execute(f"SHOW {name}")  # noqa: SLF001 - a setting, not a named query
        row = await cur.fetchone()
    assert row is not None
    return str(row[name])


async def test_sessions_run_without_jit(db: Database) -> None:
    # Compiling the claim's batch statement took 60 of its 136 ms.
    assert await _setting(db, "jit") == "off"


async def test_the_urls_own_options_are_kept(database_url: str) -> None:
    url = f"{database_url}?options=-c%20statement_timeout%3D4321"
    assert session_options(url) == "-c statement_timeout=4321 -c jit=off"
    db = Database(url, max_size=1)
    await db.open()
    try:
        assert await _setting(db, "statement_timeout") == "4321ms"
        assert await _setting(db, "jit") == "off"
    finally:
        await db.close()
