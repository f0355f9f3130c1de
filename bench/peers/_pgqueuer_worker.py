"""The pgqueuer consumer the peer bench runs (``python -m bench.peers._pgqueuer_worker BATCH``).

Configured from the environment: ``BENCH_PG_URL`` and ``BENCH_WITNESS_DIR``.
Entrypoints are async, on asyncpg, as pgqueuer's documentation writes them; the process
runs go through asyncio's subprocess, so no thread is held per run.
"""

from __future__ import annotations

import asyncio
import os
import time

import asyncpg
from pgqueuer import AsyncpgDriver, PgQueuer
from pgqueuer.models import Job

from bench.peers import witness


def _payload(job: Job) -> tuple[str, float]:
    path, scheduled = (job.payload or b"").decode().split(" ")
    return path, float(scheduled)


async def _sh(command: str, capture: bool) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", command, stdout=asyncio.subprocess.PIPE if capture else None
    )
    out, _ = await proc.communicate()
    return out or b""


async def create() -> PgQueuer:
    # asyncpg, the driver pgqueuer's documentation uses: with its psycopg driver every query
    # here waited up to a second behind the connection's LISTEN loop.
    conn = await asyncpg.connect(os.environ["BENCH_PG_URL"])
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint("clock")
    async def clock(job: Job) -> None:
        path, scheduled = _payload(job)
        out = await _sh(witness.CLOCK, capture=True)
        witness.write(path, scheduled, float(out.strip()), time.time())

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        path, _ = _payload(job)
        witness.run_noop(path)

    @pgq.entrypoint("true")
    async def true(job: Job) -> None:
        path, _ = _payload(job)
        start = time.time()
        await _sh(witness.TRUE, capture=False)
        witness.write(path, 0.0, start, time.time())

    return pgq


async def serve(batch_size: int) -> None:
    """What ``pgqueuer run`` does (its CLI fails here on setting up its logger, pgqueuer 1.6.0):
    build the consumer, stop on SIGTERM, run it."""
    import signal

    pgq = await create()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, pgq.shutdown.set)
    loop.add_signal_handler(signal.SIGINT, pgq.shutdown.set)
    await pgq.run(batch_size=batch_size)


if __name__ == "__main__":
    import sys

    asyncio.run(serve(int(sys.argv[1])))
