"""Issue 14's failover figure: after SIGKILL of a scheduler, then of the leading
coordinator, how soon firing resumes on the survivors, and whether any second
of the every-second jobs was missed or doubled.

The supervisor (``launch up``) would start a killed role again 0.2 s after its
death, so it is paused (SIGSTOP) for a while after each kill: what is measured
is the survivors taking over, not the restart. It is let go after, and the
killed role comes back before the next kill.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from bench.record import Figures
from bench.roles import kill, role_pids, supervisor_paused

TARGET_S = 3.0
WINDOW_S = 10.0  # the fires due this long after a kill are the ones judged
HOLD_S = 15.0  # the supervisor is paused this long after a kill
BEFORE_S = 3.0  # and the seconds before it, for missed and doubled (and the baseline)


@dataclass(frozen=True)
class Run:
    """One execution row of the every-second jobs (times in epoch seconds)."""

    job: str
    shard: int
    scheduled: float
    claimed: float  # the row's created_at: when a scheduler claimed the fire
    started: float | None


@dataclass(frozen=True)
class Failover:
    resumed_s: float | None  # the longest stretch without a claim on the shards, from the kill on
    cadence_s: float | None  # the same before the kill (every-second jobs: up to 1 s is the cadence)
    worst_late_s: float | None  # the worst lateness of the fires due in the window after the kill
    worst_late_before_s: float | None  # the same of those due in the ``before`` s before it
    due: int  # fires due in the window after the kill
    missed: int  # (job, second) that started no run, from ``before`` s before the kill
    doubled: int  # runs beyond the first of a (job, second)
    late_ms: list[float]  # lateness of every fire due in the window that started


def longest_pause(moments: Iterable[float], since: float, until: float) -> float | None:
    """The longest stretch in [since, until] without any of ``moments``: from
    ``since`` to the first, between two, or from the last to ``until``."""
    points = sorted(m for m in moments if since <= m <= until)
    if not points:
        return None
    edges = [since, *points]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


def failover_figures(
    runs: Iterable[Run],
    jobs: Iterable[str],
    kill_at: float,
    window: float = WINDOW_S,
    before: float = BEFORE_S,
) -> Failover:
    """The figures of one kill, over the runs of ``jobs`` (those of the shards it
    touched). Every job fires every whole second, so each (job, second) from
    ``before`` seconds before the kill to ``window`` after should start exactly
    one run, and some fire of theirs is claimed every second: a longer stretch
    without a claim after the kill is the time the survivors took to resume."""
    wanted = set(jobs)
    seconds = range(math.ceil(kill_at - before), math.ceil(kill_at + window))
    starts: dict[tuple[str, int], int] = {}
    late_after: list[float] = []
    late_before: list[float] = []
    claims: list[float] = []
    for r in runs:
        if r.job not in wanted:
            continue
        claims.append(r.claimed)
        if r.started is None:
            continue
        second = round(r.scheduled)
        if second in seconds:
            starts[(r.job, second)] = starts.get((r.job, second), 0) + 1
        if kill_at <= r.scheduled < kill_at + window:
            late_after.append(r.started - r.scheduled)
        elif kill_at - before <= r.scheduled < kill_at:
            late_before.append(r.started - r.scheduled)
    return Failover(
        resumed_s=longest_pause(claims, kill_at, kill_at + window),
        cadence_s=longest_pause(claims, kill_at - before, kill_at),
        worst_late_s=max(late_after) if late_after else None,
        worst_late_before_s=max(late_before) if late_before else None,
        due=sum(1 for s in seconds if s >= kill_at) * len(wanted),
        missed=sum(1 for j in wanted for s in seconds if (j, s) not in starts),
        doubled=sum(n - 1 for n in starts.values() if n > 1),
        late_ms=[v * 1000 for v in late_after],
    )


def _cluster_view(api: httpx.Client) -> dict[str, Any] | None:
    try:
        answer = api.get("/cluster")
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def _wait_whole(
    api: httpx.Client, schedulers: int, leader_not: str | None = None, timeout: float = 60
) -> None:
    """Until the leader (another than ``leader_not``) shows ``schedulers`` schedulers owning every shard."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        view = _cluster_view(api)
        if (
            view
            and view.get("leader") not in (None, "", leader_not)
            and len(view["schedulers"]) == schedulers
            and all(s["shards"] for s in view["schedulers"])
            and sum(len(s["shards"]) for s in view["schedulers"]) == 256
        ):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the cluster did not come back whole in {timeout:.0f} s: {_cluster_view(api)}")


def _runs(db_url: str, since: float) -> list[Run]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT job_id, shard_id, scheduled_at, created_at, started_at FROM executions"
            " WHERE scheduled_at >= %s",
            (datetime.fromtimestamp(since, UTC),),
        ).fetchall()
    return [
        Run(
            str(j),
            shard,
            at.timestamp(),
            claimed.timestamp(),
            None if started is None else started.timestamp(),
        )
        for j, shard, at, claimed, started in rows
    ]


def _report(figures: Figures, what: str, f: Failover, detail: str) -> None:
    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f} s"

    print(
        f"  failover after SIGKILL of {what}: firing resumed in {secs(f.resumed_s)} (target <= "
        f"{TARGET_S:.0f} s), missed {f.missed}, doubled {f.doubled}",
        flush=True,
    )
    print(
        f"    ({detail}; resumed = the longest stretch without a fire claimed on those shards in the "
        f"{WINDOW_S:.0f} s from the kill, {secs(f.cadence_s)} in the {BEFORE_S:.0f} s before it; "
        f"the {f.due} fires due in the {WINDOW_S:.0f} s after it ran at worst {secs(f.worst_late_s)} late, "
        f"those due in the {BEFORE_S:.0f} s before it {secs(f.worst_late_before_s)}; "
        f"the supervisor held the restart off for {HOLD_S:.0f} s)",
        flush=True,
    )
    figures.lateness(f"failover: fires due {WINDOW_S:.0f} s after SIGKILL of {what}", f.late_ms)
    figures.figure(
        f"failover, SIGKILL of {what}",
        {k: v for k, v in f.__dict__.items() if k != "late_ms"},
    )


def scenario_failover(
    services: Any,
    cluster: Callable[..., AbstractContextManager[dict[str, Any]]],
    insert_due_jobs: Callable[..., None],
    figures: Figures,
    quick: bool,
) -> None:
    n = 100 if quick else 200  # the process runtime does ~220-310 runs/s on this 2-core machine
    env = {"CRONFLEET_RUNTIME": "process", "CRONFLEET_CAPACITY": "256"}
    with cluster(services, env, schedulers=2, workers=2, coordinators=2) as c:
        api: httpx.Client = c["api"]
        launch_pid: int = c["launch"].pid
        owner = api.get("/me").json()["id"]
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        insert_due_jobs(c["db"], owner, n, first, schedule="* * * * * *")
        with psycopg.connect(c["db"]) as conn:
            shard_of = {str(j): s for j, s in conn.execute("SELECT id, shard_id FROM jobs").fetchall()}
        time.sleep(10)  # steady: every job has fired a few times

        view = _cluster_view(api)
        assert view is not None
        # the scheduler with the most jobs (a few hundred jobs do not cover every shard)
        victim = max(view["schedulers"], key=lambda s: sum(1 for v in shard_of.values() if v in s["shards"]))
        shards = set(victim["shards"])
        with supervisor_paused(launch_pid):
            scheduler_kill = kill(role_pids(c["state"])[victim["id"]])
            time.sleep(HOLD_S)
        _wait_whole(api, 2)  # it is back, with its share of the shards
        time.sleep(5)

        view = _cluster_view(api)
        assert view is not None
        leader = view["leader"]
        with supervisor_paused(launch_pid):
            leader_kill = kill(role_pids(c["state"])[leader])
            time.sleep(HOLD_S)
        _wait_whole(api, 2, leader_not=leader)
        with psycopg.connect(c["db"]) as conn:  # no more fires; the last ones finish
            conn.execute("DELETE FROM schedule")
        time.sleep(3)
        runs = _runs(c["db"], scheduler_kill - 2 * BEFORE_S)

    mine = [j for j, s in shard_of.items() if s in shards]
    f = failover_figures(runs, mine, scheduler_kill)
    _report(figures, "a scheduler", f, f"{victim['id']} owned {len(shards)} shards, {len(mine)} of {n} jobs")
    f = failover_figures(runs, list(shard_of), leader_kill)
    _report(figures, "the leader", f, f"{leader} led; all {n} jobs")
