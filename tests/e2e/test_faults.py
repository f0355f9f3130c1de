"""kill -9 of a scheduler, then of the leading coordinator, while every-second
jobs fire: the survivors take over, no fire is lost, none is doubled."""

from __future__ import annotations

import base64
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cronfleet.shards import shard_for
from launch.devservices import LocalEtcd, LocalPostgres
from tests.e2e.conftest import Cluster, start_cluster
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ha_cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    env = {"CRONFLEET_RUNTIME": "process"}
    yield from start_cluster(
        pg_server,
        etcd_server,
        tmp_path_factory.mktemp("ha"),
        env,
        ["--coordinators", "2", "--schedulers", "2", "--workers", "2"],
    )


def role_pid(cluster: Cluster, role_id: str) -> int:
    """The pid of this cluster's process started with CRONFLEET_*_ID=role_id."""
    assert cluster.pid is not None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid != cluster.pid:
            continue
        if any(e.endswith(b"_ID=" + role_id.encode()) and e.startswith(b"CRONFLEET_") for e in environ):
            return int(pid)
    raise LookupError(role_id)


def pid_of(cluster: Cluster, role_id: str) -> int | None:
    try:
        return role_pid(cluster, role_id)
    except LookupError:
        return None


def fires(cluster: Cluster, job_ids: list[str]) -> dict[str, list[tuple[datetime, int, str]]]:
    with psycopg.connect(cluster.database_url) as conn:
        rows = conn.execute(
            "SELECT job_id::text, scheduled_at, attempt, status FROM executions"
            " WHERE job_id = ANY(%s::uuid[])",
            (job_ids,),
        ).fetchall()
    out: dict[str, list[tuple[datetime, int, str]]] = {j: [] for j in job_ids}
    for job_id, at, attempt, status in rows:
        out[job_id].append((at, attempt, status))
    return out


def assert_every_second_fired_once(
    cluster: Cluster, job_ids: list[str], start: datetime, end: datetime
) -> None:
    for job_id, runs in fires(cluster, job_ids).items():
        seconds = sorted(at for at, attempt, _ in runs if attempt == 1 and start <= at <= end)
        expected = [start + timedelta(seconds=i) for i in range(int((end - start).total_seconds()) + 1)]
        assert seconds == expected, f"job {job_id}: missing {sorted(set(expected) - set(seconds))}"
        # Each fire's last attempt succeeded; an earlier one can only have been
        # lost (an assignment that died with the killed scheduler is run again).
        for second in expected:
            tries = sorted((attempt, status) for at, attempt, status in runs if at == second)
            assert tries[-1][1] == "succeeded", f"job {job_id} at {second}: {tries}"
            assert all(status == "lost" for _, status in tries[:-1]), f"job {job_id} at {second}: {tries}"


def test_kill_scheduler_then_leader(ha_cluster: Cluster) -> None:
    c = ha_cluster.api(ha_cluster.new_user())
    owners = {s["id"]: set(s["shards"]) for s in c.get("/cluster").json()["schedulers"]}
    jobs: list[str] = []
    covered: set[str] = set()
    while covered != set(owners):  # at least one job on each scheduler's shards
        job = c.post("/jobs", json={"name": "tick", "command": "true", "schedule": "* * * * * *"}).json()
        jobs.append(job["id"])
        covered |= {s for s, shards in owners.items() if shard_for(job["id"], 256) in shards}
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    wait_until(lambda: datetime.now(UTC) > start + timedelta(seconds=2), timeout=10)

    killed = role_pid(ha_cluster, "scheduler-1")
    os.kill(killed, signal.SIGKILL)
    killed_at = datetime.now(UTC)

    def restarted_and_every_shard_owned() -> bool:
        schedulers = c.get("/cluster").json()["schedulers"]
        owned = sum(len(s["shards"]) for s in schedulers)
        return pid_of(ha_cluster, "scheduler-1") not in (None, killed) and owned == 256

    # cronfleet up starts it again (the same id, so its lease's key may never
    # lapse and its shards stay with the id); meanwhile every shard is owned.
    wait_until(restarted_and_every_shard_owned, timeout=15, what="scheduler-1 back, every shard owned")
    assert datetime.now(UTC) - killed_at < timedelta(seconds=10)
    assert "scheduler-1 started again" in (ha_cluster.state_dir / "up.log").read_text()

    before = c.get("/cluster").json()
    os.kill(role_pid(ha_cluster, before["leader"]), signal.SIGKILL)

    def new_term() -> bool:
        reply = c.get("/cluster")
        # The other coordinator, or the killed one started again: a newer epoch either way.
        return (
            reply.status_code == 200
            and bool(reply.json()["leader"])
            and reply.json()["epoch"] > before["epoch"]
        )

    wait_until(new_term, timeout=20, what="a leader of a newer term")

    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    wait_until(
        lambda: all(
            any(at >= end and status == "succeeded" for at, _, status in runs)
            for runs in fires(ha_cluster, jobs).values()
        ),
        timeout=30,
        what="firing continues",
    )
    assert_every_second_fired_once(ha_cluster, jobs, start, end)
    for job_id in jobs:
        c.delete(f"/jobs/{job_id}")
    c.close()


def test_a_run_lost_with_its_killed_worker_resumes_from_its_checkpoint(ha_cluster: Cluster) -> None:
    """kill -9 of the worker (process runtime): its run dies with it; the
    checkpoint it reported while alive starts the next attempt."""
    with ha_cluster.api(ha_cluster.new_user()) as c:
        resumable = (
            'echo "from=$(cat "$CRONFLEET_CHECKPOINT")"; echo saved > "$CRONFLEET_CHECKPOINT"; sleep 120'
        )
        job = c.post("/jobs", json={"name": "resumable", "command": resumable}).json()

        def first() -> dict[str, Any] | None:
            runs = c.get(f"/jobs/{job['id']}/executions").json()["executions"]
            run = next((e for e in runs if e["attempt"] == 1), None)
            return run if run and run["status"] == "running" and run.get("checkpoint") else None

        run = wait_until(first, timeout=30, what="running, with its checkpoint reported")
        os.kill(role_pid(ha_cluster, run["worker_id"]), signal.SIGKILL)

        def retried() -> dict[str, Any] | None:
            runs = c.get(f"/jobs/{job['id']}/executions").json()["executions"]
            again = next((e for e in runs if e["attempt"] == 2 and e["status"] == "running"), None)
            return again if again and c.get(f"/executions/{again['id']}/logs").text else None

        # On the other worker, or on the killed one started again by cronfleet up.
        again = wait_until(retried, timeout=45, what="retried")
        assert c.get(f"/executions/{again['id']}/logs").text.startswith("from=saved")
        lost = c.get(f"/executions/{run['id']}").json()
        assert lost["status"] == "lost" and base64.b64decode(lost["checkpoint"]) == b"saved\n"
        c.delete(f"/jobs/{job['id']}", params={"cancel_running": "true"})
