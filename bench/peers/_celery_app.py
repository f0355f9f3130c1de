"""The Celery app the peer bench's worker runs (``celery -A bench.peers._celery_app worker``).

Configured from the environment, as a worker subprocess must be: the broker
is ``BENCH_REDIS_URL``. Tuned as Celery's optimizing guide says for many
short tasks: results ignored (no backend round trip per task), a large
prefetch multiplier (a worker holds many messages instead of asking for each),
rate limits off, acks on receipt (the default, not ``acks_late``).
"""

from __future__ import annotations

import os

from celery import Celery

from bench.peers import witness

PREFETCH_MULTIPLIER = 128

app = Celery("cronfleet_bench_peers", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
    worker_disable_rate_limits=True,
    task_acks_late=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    timezone="UTC",
    enable_utc=True,
)


@app.task(name="bench.clock")
def clock(path: str, scheduled: float) -> None:
    witness.run_clock(path, scheduled)


@app.task(name="bench.noop")
def noop(path: str) -> None:
    witness.run_noop(path)


@app.task(name="bench.true")
def true(path: str) -> None:
    witness.run_true(path)
