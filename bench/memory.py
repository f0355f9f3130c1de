"""Issue 14's memory figure: the resident size of each role with 1M stored
schedules and a steady load of fires, and whether any role grows over a soak.

Every few seconds each role process's VmRSS is read from /proc (the member
named by ``launch up``'s pid files); printed per role: at the start and the
end, the peak, and the slope over the second half (MB per minute, a least
squares line), beside the fires/s the cluster kept up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.record import Figures
from bench.roles import role_pids, rss_mb

SAMPLE_S = 2.0


@dataclass(frozen=True)
class Resident:
    start_mb: float
    end_mb: float
    peak_mb: float
    slope_mb_per_min: float  # over the second half of the samples

    def text(self) -> str:
        return (
            f"{self.start_mb:6.1f} -> {self.end_mb:6.1f} MB, peak {self.peak_mb:6.1f} MB, "
            f"second half {self.slope_mb_per_min:+6.2f} MB/min"
        )


def slope_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    """The least squares slope of (seconds, MB) samples, in MB per minute (0 with fewer than two)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread * 60


def resident(samples: Sequence[tuple[float, float]]) -> Resident:
    """A role's figures from its (seconds, MB) samples, in time order."""
    if not samples:
        raise ValueError("no samples")
    return Resident(
        start_mb=samples[0][1],
        end_mb=samples[-1][1],
        peak_mb=max(v for _, v in samples),
        slope_mb_per_min=slope_per_minute(samples[len(samples) // 2 :]),
    )


class Sampler:
    """Samples every role's RSS in a thread: member name -> [(seconds since start, MB)].
    A member that was restarted (another pid) is said so: its samples then mix two processes."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self.pids: dict[str, set[int]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.time()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            now = time.time() - self.t0
            for name, pid in role_pids(self.state).items():
                mb = rss_mb(pid)
                if mb is not None:
                    self.samples.setdefault(name, []).append((now, mb))
                    self.pids.setdefault(name, set()).add(pid)
            if self._done.wait(SAMPLE_S):
                return


def scenario_memory(
    services: Any,
    cluster: Callable[..., AbstractContextManager[dict[str, Any]]],
    insert_due_jobs: Callable[..., None],
    figures: Figures,
    quick: bool,
    soak_minutes: float | None,
    rate: int | None = None,
) -> None:
    stored = 200_000 if quick else 1_000_000
    # Fires/s asked. Where the cluster carries less, fires wait and, past the
    # misfire grace, are missed: the roles must stay bounded then too.
    every_second = rate if rate is not None else (1_000 if quick else 10_000)
    minutes = soak_minutes if soak_minutes is not None else (0.5 if quick else 1.0)
    env = {
        "CRONFLEET_RUNTIME": "noop",
        "CRONFLEET_CAPACITY": "100000",
        "CRONFLEET_CLAIM_BATCH": "2000",
    }
    with cluster(services, env, schedulers=2, workers=2) as c:
        owner = c["api"].get("/me").json()["id"]
        with Sampler(c["state"]) as sampler:
            t = time.time()
            insert_due_jobs(c["db"], owner, stored, datetime.now(UTC) + timedelta(days=3))
            print(
                f"    ({stored:,} schedules not due for days stored in {time.time() - t:.0f} s)", flush=True
            )
            first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            insert_due_jobs(c["db"], owner, every_second, first, schedule="* * * * * *")
            with psycopg.connect(c["db"], autocommit=True) as conn:
                conn.execute("ANALYZE")
            time.sleep(max(0.0, first.timestamp() - time.time()) + 10)  # the load settles
            begin = datetime.now(UTC)
            soak_from = time.time() - sampler.t0
            time.sleep(minutes * 60)
            end = datetime.now(UTC)
        time.sleep(2)  # the window's last fires finish
        with psycopg.connect(c["db"]) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE finished_at IS NOT NULL),"
                " count(*) FILTER (WHERE finished_at IS NULL AND status <> 'skipped')"
                " FROM executions WHERE scheduled_at >= %s AND scheduled_at < %s",
                (begin, end),
            ).fetchone()
            conn.execute("DELETE FROM schedule")  # quiet for the stop
    assert row is not None
    span = (end - begin).total_seconds()
    print(
        f"  memory: {stored:,} stored schedules, {every_second:,} every-second jobs: "
        f"{row[0] / span:,.0f} fires/s finished over {span:.0f} s ({row[1]:,} of its fires not finished "
        f"2 s after)   target: 10,000 fires/s",
        flush=True,
    )
    for name in sorted(sampler.samples):
        soak = [(t, mb) for t, mb in sampler.samples[name] if t >= soak_from]
        if not soak:
            continue
        r = resident(soak)
        idle = sampler.samples[name][0][1]  # before the schedules were stored
        restarted = "  (restarted: more than one process)" if len(sampler.pids[name]) > 1 else ""
        print(f"    {name:<14} idle {idle:6.1f} MB; under load {r.text()}{restarted}", flush=True)
        figures.figure(
            f"memory, {name}",
            {
                **r.__dict__,
                "idle_mb": idle,
                "fires_per_s": row[0] / span,
                "stored_schedules": stored,
                "samples": [(round(t - soak_from, 1), round(mb, 1)) for t, mb in soak],
            },
        )
    print(
        "    target: RSS of each role printed; none grows without bound over a 10-minute soak "
        "(--soak-minutes 10)",
        flush=True,
    )
