"""The narrow database interface: a pool, named queries, listen/notify.

SQL lives in ``queries.sql`` as named blocks (``-- name --``); code refers to
``queries["claim_due"]``. psycopg errors are translated here into the
project's own errors, so callers never import psycopg.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from importlib import resources
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from cronfleet.db.adapters import ADAPTERS
from cronfleet.errors import Conflict, CronfleetError, Unavailable

Row = dict[str, Any]
Params = Mapping[str, Any] | None
# libpq's TCP keepalives for a LISTEN connection (idle 10 s, then 5 probes 3 s apart).
LISTEN_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 5}


def _load_queries() -> dict[str, str]:
    text = resources.files("cronfleet.db").joinpath("queries.sql").read_text()
    blocks = re.split(r"^-- ([a-z_]+) --$", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(blocks[1::2], blocks[2::2], strict=True)}


queries: dict[str, str] = _load_queries()


def _translate(exc: Exception) -> CronfleetError:
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return Conflict(exc.diag.message_detail or "already exists")
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout):
        return Unavailable(f"database unavailable: {exc}")
    return CronfleetError(f"database error: {exc}")


@contextlib.contextmanager
def _translated() -> Any:
    try:
        yield
    except CronfleetError:
        raise
    except (psycopg.Error, psycopg_pool.PoolTimeout, OSError) as exc:
        raise _translate(exc) from exc


class Session:
    """Runs named queries on one connection (inside a transaction or not)."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self._conn = conn

    async def execute(self, name: str, params: Params = None) -> int:
        with _translated():
            cur = await self._conn.execute(queries[name], params)
            return cur.rowcount

    async def fetch_one(self, name: str, params: Params = None) -> Row | None:
        with _translated():
            cur = await self._conn.execute(queries[name], params)
            return await cur.fetchone()

    async def fetch_all(self, name: str, params: Params = None) -> list[Row]:
        with _translated():
            cur = await self._conn.execute(queries[name], params)
            return await cur.fetchall()

    async def notify(self, channel: str, payload: str) -> None:
        with _translated():
            await self._conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def session_options(url: str) -> str:
    """The URL's own server options, with JIT compilation off: the claim's
    batch statements are estimated costly enough to be compiled, and
    compiling them took 60 ms of a 136 ms statement for 2,000 fires (these
    are short statements run thousands of times, never long analytics)."""
    given = conninfo_to_dict(url).get("options") or ""
    return f"{given} -c jit=off".strip()


class Database:
    """A connection pool plus the session helpers above."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        self._pool = psycopg_pool.AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=5.0,
            # Give up a failing reconnect quickly: the next request tries
            # afresh, instead of waiting out an ever longer backoff after
            # Postgres is back.
            reconnect_timeout=5.0,
            kwargs={
                "row_factory": dict_row,
                "autocommit": True,
                "options": session_options(url),
                "context": ADAPTERS,  # protobuf Timestamps as parameters (cronfleet.db.adapters)
            },
            check=psycopg_pool.AsyncConnectionPool.check_connection,
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def connected(cls, url: str, *, max_size: int = 8) -> AsyncIterator[Database]:
        """A pool for the life of a role. It opens without waiting for Postgres,
        so a role starts (and serves 503s) while the database is away."""
        database = cls(url, max_size=max_size)
        await database.open(wait=False)
        try:
            yield database
        finally:
            await database.close()

    async def open(self, wait: bool = True) -> None:
        with _translated():
            await self._pool.open(wait=wait, timeout=10.0)

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        with _translated():
            async with self._pool.connection() as conn:
                yield Session(conn)  # type: ignore[arg-type]  # dict_row set on the pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """One transaction: committed when the block ends, rolled back on error."""
        with _translated():
            async with self._pool.connection() as conn, conn.transaction():
                yield Session(conn)  # type: ignore[arg-type]  # dict_row set on the pool

    async def execute(self, name: str, params: Params = None) -> int:
        async with self.session() as s:
            return await s.execute(name, params)

    async def fetch_one(self, name: str, params: Params = None) -> Row | None:
        async with self.session() as s:
            return await s.fetch_one(name, params)

    async def fetch_all(self, name: str, params: Params = None) -> list[Row]:
        async with self.session() as s:
            return await s.fetch_all(name, params)

    @contextlib.asynccontextmanager
    async def listen(self, *channels: str) -> AsyncIterator[AsyncIterator[tuple[str, str]]]:
        """A dedicated connection LISTENing on ``channels``; yields (channel, payload)."""
        with _translated():
            # Keepalives: a connection that died without a word (a partition,
            # a failover behind an address) is found out in about 25 s, not
            # hours; meanwhile only the claim loop's own pace finds new work.
            conninfo = make_conninfo(self.url, **LISTEN_KEEPALIVES)
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        try:
            for channel in channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

            async def payloads() -> AsyncIterator[tuple[str, str]]:
                with _translated():
                    async for note in conn.notifies():
                        yield note.channel, note.payload

            yield payloads()
        finally:
            await conn.close()
