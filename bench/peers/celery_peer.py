"""Celery 5 on Redis: a worker subprocess (threads pool) and tasks sent from the bench.

N jobs due in the same second are one-off tasks sent with ``eta`` (cronfleet's
scenario is one-off jobs with ``run_at``, and ETA is Celery's one-off at a
time): the worker receives them ahead and holds them until their second.
Celery beat is the way to run a *recurring* schedule, and its crontab has a
resolution of one minute; a beat process publishes each due entry in turn,
so for one-offs at a second it would only add a sender in front of the same
worker. The sustained workloads put every task in Redis first (as cronfleet's
fires are stored first) and then start the worker.

The worker: the threads pool, 8 threads. Celery's docs give prefork (its
default) to CPU-bound work and threads, eventlet or gevent to I/O-bound work;
every run here does nothing or waits on a child process. An A/B here against
prefork with one child per core gave threads the same or better figures
(300 jobs in the same second: p50 0.34-0.41 s against 0.71-2.3 s; no-op and
process runs/s within the noise of a loaded machine). With the short-task
settings of ``_celery_app``, and ``--without-gossip --without-mingle
--without-heartbeat`` (no cluster chatter in a one-worker bench).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from celery import Celery

from bench.peers import witness
from bench.peers._celery_app import PREFETCH_MULTIPLIER
from bench.peers.redis_server import LocalRedis

ROOT_DIR = Path(__file__).resolve().parents[2]
THREADS = 8


class CeleryPeer:
    name = "celery"

    def __init__(self, concurrency: int = THREADS, pool: str = "threads") -> None:
        self.concurrency = concurrency
        self.pool = pool
        self.redis = LocalRedis()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-celery-"))
        self._seq = 0
        self.config = (
            f"Celery {_version()} worker ({pool}, concurrency {self.concurrency}, prefetch multiplier "
            f"{PREFETCH_MULTIPLIER}, results ignored, rate limits off) on redis-server; "
            "one-offs sent with eta, sustained tasks queued before the worker starts"
        )

    def __enter__(self) -> CeleryPeer:
        self.redis.start()
        # A sender of its own on this peer's Redis (tasks are sent by name): the worker's app
        # module would keep the broker of the first peer made in this process.
        self.client = Celery("cronfleet_bench_sender", broker=self.redis.url)
        self.client.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _witness(self) -> Path:
        self._seq += 1
        return self.dir / f"w{self._seq}.txt"

    def _worker(self) -> subprocess.Popen[bytes]:
        log = open(self.dir / "worker.log", "ab")  # noqa: SIM115
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.peers._celery_app",
                "worker",
                f"--pool={self.pool}",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=WARNING",
            ],
            env=os.environ | {"BENCH_REDIS_URL": self.redis.url},
            cwd=ROOT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its pool children are in its group, stopped with it
        )

    def _stop(self, worker: subprocess.Popen[bytes]) -> None:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        self.redis.flush()

    def run_same_second(self, n: int) -> list[float]:
        path = self._witness()
        worker = self._worker()
        try:
            ready = self._witness()
            self.client.send_task("bench.noop", args=(str(ready),))
            witness.wait_for(ready, 1, 60, log=self.dir / "worker.log")  # the worker is up and consuming
            due = witness.due_second(witness.NOTICE + n / 500)  # time to send them, even on a loaded machine
            eta = datetime.fromtimestamp(due, UTC)
            with self.client.producer_or_acquire() as producer:  # one connection for the batch
                for _ in range(n):
                    self.client.send_task("bench.clock", args=(str(path), due), eta=eta, producer=producer)
            if time.time() > due - 0.5:
                print(f"    (celery: sending ended {time.time() - due:+.2f} s from the due second)")
            return witness.lateness_ms(witness.wait_for(path, n, 120 + n / 20, log=self.dir / "worker.log"))
        finally:
            self._stop(worker)

    def _sustained(self, task: str, count: int) -> float:
        path = self._witness()
        with self.client.producer_or_acquire() as producer:
            for _ in range(count):
                self.client.send_task(task, args=(str(path),), producer=producer)
        worker = self._worker()
        try:
            return witness.rate(witness.wait_for(path, count, 300, log=self.dir / "worker.log"))
        finally:
            self._stop(worker)

    def run_sustained_noop(self, count: int) -> float:
        return self._sustained("bench.noop", count)

    def run_sustained_process(self, count: int) -> float:
        return self._sustained("bench.true", count)


def _version() -> str:
    import celery

    return str(celery.__version__)
