"""What every scenario of the bench shares: Postgres and etcd (``Services``),
a local cluster, the clocks the commands print, the lateness read back from
each run's output, and the line each figure is printed on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import pgstats
from bench.record import Figures
from cronfleet.db.migrate import migrate
from launch.devservices import LocalEtcd, LocalPostgres, free_port

# The command prints its own clock as epoch seconds, reading it first thing:
# GNU date on the host (process runtime); busybox adjtimex in the runner image
# (busybox date has no %N). adjtimex's "tv_usec" holds nanoseconds when the
# kernel's STA_NANO status bit (8192) is set, so the status decides the scale.
CLOCK_PROCESS = "date +%s.%N"


CLOCK_BUSYBOX = (
    "adjtimex | awk '/status:/{st=$2} /tv_sec/{s=$2} /tv_usec/{u=$2} "
    'END{if (int(st/8192)%2) printf "%d.%09d\\n", s, u; else printf "%d.%06d\\n", s, u}\''
)


ROOT = Path(tempfile.mkdtemp(prefix="cronfleet-bench-"))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


FIGURES = Figures()  # what this run writes to bench/results/


COLD = [0]  # runs that started cold since the last report


RELEASE: list[float] = []  # the worker's own release lateness (ms), since the last report


def report(name: str, values: list[float], target: str) -> None:
    early = sum(1 for v in values if v < 0)
    cold, COLD[0] = COLD[0], 0
    released = f"  (worker released at p99 {pct(RELEASE, 99):.1f} ms)" if RELEASE else ""
    RELEASE.clear()
    FIGURES.lateness(name, values)
    print(
        f"  {name:<44} n={len(values):<5} p50={pct(values, 50):7.1f} ms  p99={pct(values, 99):7.1f} ms  "
        f"max={max(values):7.1f} ms  early={early}  cold={cold}   target: {target}{released}",
        flush=True,
    )


class Services:
    def __init__(self, pg_statements: bool = False) -> None:
        """``pg_statements``: load pg_stat_statements and print each throughput run's top statements."""
        self.pg_statements = pg_statements
        self.pg = LocalPostgres(
            ROOT / "pg", free_port(), options=pgstats.SERVER_OPTIONS if pg_statements else ""
        )
        self.etcd = LocalEtcd(ROOT / "etcd", free_port(), free_port())

    def __enter__(self) -> Services:
        self.pg.start()
        self.etcd.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.etcd.stop()
        self.pg.stop()

    def fresh_db(self) -> str:
        url = self.pg.create_database(f"bench_{uuid.uuid4().hex[:8]}")
        migrate(url)
        if self.pg_statements:
            pgstats.enable(url)
        return url


@contextmanager
def cluster(
    services: Services,
    env: dict[str, str],
    schedulers: int = 1,
    workers: int = 1,
    coordinators: int = 1,
) -> Iterator[dict[str, Any]]:
    db_url = services.fresh_db()
    state = Path(tempfile.mkdtemp(dir=ROOT, prefix="cluster-"))
    http = f"127.0.0.1:{free_port()}"
    full_env = (
        os.environ
        | {
            "CRONFLEET_DATABASE_URL": db_url,
            "CRONFLEET_ETCD_ENDPOINTS": services.etcd.endpoint,
            "CRONFLEET_ETCD_PREFIX": f"/bench-{uuid.uuid4().hex[:6]}",
            "CRONFLEET_STATE_DIR": str(state),
            "CRONFLEET_HTTP_ADDR": http,
            "CRONFLEET_GRPC_ADDR": f"127.0.0.1:{free_port()}",
            "CRONFLEET_LOG_LEVEL": "warning",
        }
        | env
    )
    with open(state / "up.log", "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "launch",
                "up",
                "--schedulers",
                str(schedulers),
                "--workers",
                str(workers),
                "--coordinators",
                str(coordinators),
            ],
            env=full_env,
            stdout=out,
            stderr=out,
        )
    try:
        api = httpx.Client(base_url=f"http://{http}/api/v1", timeout=30)
        deadline = time.time() + 60
        while "cronfleet is up" not in (state / "up.log").read_text():
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError((state / "up.log").read_text())
            time.sleep(0.1)
        email = f"bench{uuid.uuid4().hex[:6]}@example.com"
        api.post("/auth/signup", json={"name": "bench", "email": email, "password": "password123"})
        token = api.post("/auth/login", json={"email": email, "password": "password123"}).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        while True:  # shards assigned and workers connected
            c = api.get("/cluster")
            if (
                c.status_code == 200
                and all(s["shards"] for s in c.json()["schedulers"])
                and c.json()["workers"]
            ):
                break
            time.sleep(0.2)
        time.sleep(1.0)  # let every worker stream connect to every scheduler
        yield {
            "api": api,
            "db": db_url,
            "state": state,
            "prefix": full_env["CRONFLEET_ETCD_PREFIX"],
            "http": http,
            "launch": proc,
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def next_second(ahead: float) -> datetime:
    t = datetime.now(UTC) + timedelta(seconds=ahead)
    return t.replace(microsecond=0) + timedelta(seconds=1)


def lateness_of_runs(
    c: dict[str, Any], job_ids: list[str], timeout: float, due: datetime | None = None
) -> list[float]:
    """Wait for every job's run; return (command clock - scheduled) in ms.

    With ``due``, polling starts a second after it: a benchmark polling the
    API hard during the fire would measure its own load on the two cores.
    """
    api: httpx.Client = c["api"]
    deadline = time.time() + timeout
    if due is not None:
        time.sleep(max(0.0, due.timestamp() + 1 - time.time()))
    out: dict[str, float] = {}
    while len(out) < len(job_ids) and time.time() < deadline:
        for job_id in job_ids:
            if job_id in out:
                continue
            runs = api.get(f"/jobs/{job_id}/executions").json()["executions"]
            done = [r for r in runs if r.get("finished_at")]
            if done:
                log = api.get(f"/executions/{done[0]['id']}/logs").text.strip()
                if not re.fullmatch(r"\d+\.\d+", log) or done[0]["status"] != "succeeded":
                    raise RuntimeError(f"run failed: {done[0]} {log!r}")
                COLD[0] += bool(done[0].get("cold_start"))
                RELEASE.append(float(done[0].get("lateness_ms") or 0.0))
                scheduled = datetime.fromisoformat(done[0]["scheduled_at"].replace("Z", "+00:00"))
                out[job_id] = (float(log) - scheduled.timestamp()) * 1000
        time.sleep(0.2)
    if len(out) < len(job_ids):
        raise RuntimeError(f"only {len(out)}/{len(job_ids)} runs finished")
    return list(out.values())


def lateness_of_all(
    c: dict[str, Any], clients: list[httpx.Client], job_ids: list[str], timeout: float, due: datetime
) -> list[float]:
    """Like lateness_of_runs, for jobs of several users: waits in Postgres, reads logs by API."""
    time.sleep(max(0.0, due.timestamp() + 1 - time.time()))
    deadline = time.time() + timeout
    with psycopg.connect(c["db"], autocommit=True) as conn:
        while time.time() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM executions WHERE job_id = ANY(%s::uuid[]) AND finished_at IS NOT NULL",
                (job_ids,),
            ).fetchone()
            if row is not None and row[0] >= len(job_ids):
                break
            time.sleep(0.2)
    runs = runs_of(c, job_ids, clients)
    if len(runs) < len(job_ids) or any(r["late"] is None or r["status"] != "succeeded" for r in runs):
        raise RuntimeError(f"runs failed or missing: {runs}")
    COLD[0] += sum(1 for r in runs if r["cold"])
    RELEASE.extend(float(r["released"] or 0.0) for r in runs)
    return [r["late"] for r in runs]


def second_user(c: dict[str, Any]) -> httpx.Client:
    """Another account on the same cluster (jobs of two users at once)."""
    api = httpx.Client(base_url=f"http://{c['http']}/api/v1", timeout=30)
    email = f"bench{uuid.uuid4().hex[:6]}@example.com"
    api.post("/auth/signup", json={"name": "bench2", "email": email, "password": "password123"})
    token = api.post("/auth/login", json={"email": email, "password": "password123"}).json()["token"]
    api.headers["Authorization"] = f"Bearer {token}"
    return api


def runs_of(
    c: dict[str, Any], job_ids: list[str], clients: list[httpx.Client] | None = None
) -> list[dict[str, Any]]:
    """Every finished run of these jobs, with its lateness by the command's own clock (ms);
    logs are read through whichever of ``clients`` owns the job."""
    with psycopg.connect(c["db"]) as conn:
        rows = conn.execute(
            "SELECT id, job_id, scheduled_at, started_at, status, cold_start, lateness_ms FROM executions"
            " WHERE job_id = ANY(%s::uuid[]) AND started_at IS NOT NULL AND finished_at IS NOT NULL",
            (job_ids,),
        ).fetchall()
    out = []
    for ex_id, job_id, scheduled, started, status, cold, released in rows:
        for client in clients or [c["api"]]:
            answer = client.get(f"/executions/{ex_id}/logs")
            if answer.status_code == 200:
                break
        log = answer.text.strip().splitlines()
        clock = float(log[0]) if log and re.fullmatch(r"\d+\.\d+", log[0]) else None
        late = (clock - scheduled.timestamp()) * 1000 if clock is not None else None
        out.append(
            {
                "job": str(job_id),
                "scheduled": scheduled,
                "started": started,
                "status": status,
                "cold": cold,
                "late": late,
                "released": released,
            }
        )
    return out


def doubled(runs: list[dict[str, Any]]) -> int:
    """Fires that started more than once."""
    seen: dict[tuple[str, datetime], int] = {}
    for r in runs:
        key = (r["job"], r["scheduled"])
        seen[key] = seen.get(key, 0) + 1
    return sum(n - 1 for n in seen.values() if n > 1)


def report_runs(name: str, runs: list[dict[str, Any]], expected: int | None, target: str) -> None:
    late = [r["late"] for r in runs if r["late"] is not None]
    COLD[0] = sum(1 for r in runs if r["cold"])
    failed = sum(1 for r in runs if r["status"] != "succeeded")
    if not late:
        print(f"  {name:<44} no run finished   target: {target}", flush=True)
        return
    report(name, late, target)
    ran = f"{len(runs)}" + (f" of {expected} fires" if expected is not None else "")
    print(f"    ran {ran}, doubled {doubled(runs)}, not succeeded {failed}", flush=True)


def insert_due_jobs(
    db_url: str,
    owner: str,
    n: int,
    at: datetime,
    command: str = "true",
    schedule: str | None = None,
    shards: int = 256,
) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            """
            WITH j AS (
                INSERT INTO jobs (id, owner_id, name, spec, schedule, shard_id, status)
                SELECT gen_random_uuid(), %(owner)s, 'bulk-' || g,
                       jsonb_build_object('command', %(cmd)s::text, 'steps', '[]'::jsonb, 'env', '{}'::jsonb),
                       %(schedule)s, (g %% %(shards)s), 'active'
                FROM generate_series(1, %(n)s) g
                RETURNING id, shard_id)
            INSERT INTO schedule (job_id, shard_id, next_run_at) SELECT id, shard_id, %(at)s FROM j
            """,
            {"owner": owner, "cmd": command, "schedule": schedule, "n": n, "at": at, "shards": shards},
        )
        conn.execute("SELECT pg_notify('cronfleet_due', s::text) FROM generate_series(0, 255) s")


def bench_user(url: str) -> str:
    with psycopg.connect(url) as conn:
        uid = uuid.uuid4()
        conn.execute(
            "INSERT INTO users (id, name, email, password_hash) VALUES (%s, 'b', %s, 'x')",
            (uid, f"{uid}@bench"),
        )
    return str(uid)
