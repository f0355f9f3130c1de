"""pgqueuer on Postgres: a consumer subprocess (``PgQueuer.run``) and jobs enqueued in batches.

Chosen over procrastinate because it installs here, runs on Postgres 15, and
is built for throughput: a worker takes ``batch_size`` jobs per dequeue
statement (``FOR UPDATE SKIP LOCKED``), is woken by ``LISTEN/NOTIFY`` and,
for deferred jobs, by the next ``execute_after``; finished jobs are logged in
batches. It also has cron schedules (``@pgq.schedule``), at minute
resolution, so N jobs due in the same second are one-off jobs with
``execute_after``, as cronfleet's are one-offs with ``run_at``.

Its documented knob for throughput is the dequeue batch: 100 here (the
default is 10). Tables stay logged (durable), as cronfleet's are; the
Postgres is the same kind the cronfleet bench starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
from pgqueuer import AsyncpgDriver
from pgqueuer.queries import Queries

from bench.peers import witness
from launch.devservices import LocalPostgres, free_port

ROOT_DIR = Path(__file__).resolve().parents[2]
BATCH_SIZE = 100


class PgqueuerPeer:
    name = "pgqueuer"

    def __init__(
        self, new_database: Callable[[str], str] | None = None, batch_size: int = BATCH_SIZE
    ) -> None:
        """``new_database(name) -> url`` creates a database on a running Postgres; without it
        the peer starts a Postgres of its own."""
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pgqueuer-"))
        self.batch_size = batch_size
        self._own: LocalPostgres | None = None
        self._new_database = new_database
        self._seq = 0
        self.url = ""
        self.config = (
            f"pgqueuer {_version()} consumer process (`PgQueuer.run`, batch size {batch_size}, async "
            "entrypoints, asyncpg driver) on Postgres 15 (logged tables); one-offs with execute_after, "
            "sustained jobs enqueued before the consumer starts"
        )

    def __enter__(self) -> PgqueuerPeer:
        if self._new_database is None:
            self._own = LocalPostgres(self.dir / "pg", free_port())
            self._own.start()
            self._new_database = self._own.create_database
        try:
            self.url = self._new_database(f"peer_pgqueuer_{uuid.uuid4().hex[:8]}")
            asyncio.run(self._install())
        except BaseException:
            self.__exit__()  # no stray Postgres when the set-up fails
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _install(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await Queries(AsyncpgDriver(conn)).install()
        finally:
            await conn.close()

    async def _enqueue(self, entrypoint: str, payload: bytes, count: int, after: timedelta | None) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            queries = Queries(AsyncpgDriver(conn))
            step = 10_000  # a statement per 10k jobs
            for first in range(0, count, step):
                k = min(step, count - first)
                await queries.enqueue([entrypoint] * k, [payload] * k, [0] * k, [after] * k)
        finally:
            await conn.close()

    def _witness(self) -> Path:
        self._seq += 1
        return self.dir / f"w{self._seq}.txt"

    def _consumer(self) -> subprocess.Popen[bytes]:
        log = open(self.dir / "consumer.log", "ab")  # noqa: SIM115
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.peers._pgqueuer_worker",
                str(self.batch_size),
            ],
            env=os.environ | {"BENCH_PG_URL": self.url},
            cwd=ROOT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _stop(self, consumer: subprocess.Popen[bytes]) -> None:
        if consumer.poll() is None:
            consumer.send_signal(signal.SIGTERM)
            try:
                consumer.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(consumer.pid, signal.SIGKILL)
                consumer.wait()

    def run_same_second(self, n: int) -> list[float]:
        path = self._witness()
        consumer = self._consumer()
        try:
            ready = self._witness()
            asyncio.run(self._enqueue("noop", f"{ready} 0".encode(), 1, None))
            witness.wait_for(ready, 1, 60, log=self.dir / "consumer.log")  # the consumer is up and listening
            due = witness.due_second(witness.NOTICE)
            # execute_after is relative to the database's now(): computed the moment before the insert
            asyncio.run(
                self._enqueue("clock", f"{path} {due}".encode(), n, timedelta(seconds=due - time.time()))
            )
            return witness.lateness_ms(witness.wait_for(path, n, 120 + n / 20, log=self.dir / "consumer.log"))
        finally:
            self._stop(consumer)

    def _sustained(self, entrypoint: str, count: int) -> float:
        path = self._witness()
        asyncio.run(self._enqueue(entrypoint, f"{path} 0".encode(), count, None))
        consumer = self._consumer()
        try:
            return witness.rate(witness.wait_for(path, count, 300, log=self.dir / "consumer.log"))
        finally:
            self._stop(consumer)

    def run_sustained_noop(self, count: int) -> float:
        return self._sustained("noop", count)

    def run_sustained_process(self, count: int) -> float:
        return self._sustained("true", count)


def _version() -> str:
    from importlib.metadata import version

    return version("pgqueuer")
