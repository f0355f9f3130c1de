"""Docker-isolated jobs end to end: steps, YAML, limits, failures, and no
container left behind by a worker killed mid-run."""

from __future__ import annotations

import base64
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml

from launch.devservices import LocalEtcd, LocalPostgres
from tests.e2e.conftest import Cluster, start_cluster
from tests.e2e.test_cluster import executions, finished_run, t
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

# The container's memory limit, under cgroup v2 or v1.
MEMORY_LIMIT = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
BUILD = {
    "name": "build",
    "image": "cronfleet/runner:busybox",
    "run_once": True,
    "steps": [
        {"name": "hello", "run": "echo hi"},
        {"name": "fail", "run": "exit 3"},
        {"name": "never", "run": "echo no"},
    ],
}


def test_yaml_steps_job_runs_in_order_and_stops_at_failure(cluster: Cluster) -> None:
    nightly = {"name": "nightly", "schedule": "0 0 3 * * *", "steps": [{"name": "a", "run": "true"}]}
    body = yaml.safe_dump({"jobs": [BUILD, nightly]})
    with cluster.api(cluster.new_user()) as c:
        r = c.post("/jobs", content=body, headers={"Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text
        build, scheduled = r.json()["jobs"]
        assert scheduled["next_run_at"].endswith("T03:00:00Z")
        run = finished_run(c, build["id"], timeout=20)
        assert (run["status"], run["exit_code"], run["error"]) == ("failed", 3, "step fail exited 3")
        assert [(s["name"], s["exit_code"]) for s in run["steps"]] == [("hello", 0), ("fail", 3)]
        assert all(s["duration_ms"] >= 0 for s in run["steps"])
        log = c.get(f"/executions/{run['id']}/logs").text
        assert log.startswith("==> step hello\nhi\n==> step hello exited 0 in ")
        assert "==> step fail exited 3" in log and "never" not in log


def test_an_immediate_job_takes_a_warm_container_and_an_unusual_one_starts_cold(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:

        def warm_start() -> dict[str, Any] | None:
            job = c.post("/jobs", json={"name": "now", "command": "true"}).json()
            run = finished_run(c, job["id"], timeout=20)
            return run if not run.get("cold_start") else None

        run = wait_until(warm_start, timeout=30, what="a run from the warm pool")  # the pool fills at start
        assert run["status"] == "succeeded" and run["container_id"]
        odd = c.post("/jobs", json={"name": "odd", "command": "true", "resources": {"memory_mb": 96}}).json()
        run = finished_run(c, odd["id"], timeout=20)
        assert run["status"] == "succeeded" and run["cold_start"] is True, (
            "no pooled container of its profile"
        )


def test_yaml_with_one_bad_job_creates_none(cluster: Cluster) -> None:
    bad = {"name": "bad", "schedule": "99 * * * * *", "steps": [{"name": "a", "run": "true"}]}
    with cluster.api(cluster.new_user()) as c:
        r = c.post(
            "/jobs",
            content=yaml.safe_dump({"jobs": [BUILD, bad]}),
            headers={"Content-Type": "application/yaml"},
        )
        assert r.status_code == 422 and "jobs[1].schedule" in r.json()["error"]["message"]
        assert c.get("/jobs").json()["jobs"] == []


def test_resources_above_the_worker_maximum_are_rejected_at_submission(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        r = c.post("/jobs", json={"name": "big", "command": "true", "resources": {"memory_mb": 999999}})
        assert r.status_code == 422
        assert "resources.memory_mb" in r.json()["error"]["message"]
        ok = c.post(
            "/jobs",
            json={"name": "small", "command": MEMORY_LIMIT, "resources": {"memory_mb": 64, "pids": 32}},
        )
        assert ok.status_code == 201
        run = finished_run(c, ok.json()["id"], timeout=20)
        assert c.get(f"/executions/{run['id']}/logs").text.strip() == str(64 * 1024 * 1024)


def test_missing_image_and_timeout_are_reported(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        missing = c.post("/jobs", json={"name": "m", "command": "true", "image": "cronfleet/nope:1"}).json()
        slow = c.post("/jobs", json={"name": "s", "command": "sleep 60", "timeout_seconds": 1}).json()
        run = finished_run(c, missing["id"], timeout=20)
        # Not here, so pulled from Docker Hub: its answer (here, that it
        # cannot be reached; elsewhere, that no such repository exists) is named.
        assert run["status"] == "failed"
        assert run["error"].startswith("image_pull_failed: cronfleet/nope:1: "), run["error"]
        run = finished_run(c, slow["id"], timeout=30)
        assert run["status"] == "timed_out"


def test_a_job_due_later_runs_from_an_armed_container(cluster: Cluster) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0).isoformat()
    with cluster.api(cluster.new_user()) as c:
        job = c.post("/jobs", json={"name": "armed", "command": "echo armed", "run_at": at}).json()
        run = finished_run(c, job["id"], timeout=20)
        assert run["status"] == "succeeded" and "cold_start" not in run
        assert t(run["started_at"]) >= t(run["scheduled_at"])
        assert c.get(f"/executions/{run['id']}/logs").text == "armed\n"


# ------------------------------------------------ a worker killed mid-run
@pytest.fixture(scope="module")
def bare_cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    yield from start_cluster(
        pg_server,
        etcd_server,
        tmp_path_factory.mktemp("bare"),
        {},
        ["--schedulers", "1", "--workers", "0"],
        need_workers=False,
    )


def start_worker(cluster: Cluster, worker_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = (
        cluster.env
        | cluster.role_env("worker")
        | {
            "CRONFLEET_WORKER_ID": worker_id,
            "CRONFLEET_RUNTIME": "docker",
            "CRONFLEET_LOG_DIR": str(cluster.state_dir / "logs"),
        }
    )
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "launch", "worker"], env=env, stdout=out, stderr=out)


def containers_of(worker_id: str) -> list[object]:
    return list(
        docker.from_env().containers.list(
            all=True, filters={"label": [f"cronfleet.worker_id={worker_id}"]}, ignore_removed=True
        )
    )


def ids(containers: list[object]) -> set[str]:
    return {c.id for c in containers}  # type: ignore[attr-defined]


def test_worker_killed_mid_run_leaves_no_container(bare_cluster: Cluster, tmp_path: Path) -> None:
    worker_id = f"w-kill-{os.getpid()}"
    worker = start_worker(bare_cluster, worker_id, tmp_path / "worker.log")
    try:
        with bare_cluster.api(bare_cluster.new_user()) as c:
            resumable = (
                'echo "from=$(cat "$CRONFLEET_CHECKPOINT")"; echo saved > "$CRONFLEET_CHECKPOINT"; sleep 120'
            )
            job = c.post("/jobs", json={"name": "long", "command": resumable}).json()
            running = wait_until(
                lambda: next((e for e in executions(c, job["id"]) if e["status"] == "running"), None),
                timeout=30,
                what="run started",
            )
            assert running["container_id"] in ids(containers_of(worker_id))
            wait_until(  # reported while it runs (every few seconds), before the kill
                lambda: next(e for e in executions(c, job["id"]) if e["attempt"] == 1).get("checkpoint"),
                timeout=30,
                what="checkpoint reported",
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            before = ids(containers_of(worker_id))  # the run's, and the idle pool's
            assert running["container_id"] in before  # orphaned until the worker returns
            worker = start_worker(bare_cluster, worker_id, tmp_path / "worker.log")
            wait_until(
                lambda: not before & ids(containers_of(worker_id)),
                timeout=30,
                what="nothing left from before the kill",
            )
            run = wait_until(
                lambda: (lambda e: e if e["status"] not in ("scheduled", "running") else None)(
                    next(e for e in executions(c, job["id"]) if e["attempt"] == 1)
                ),
                timeout=30,
                what="run reported",
            )
            assert run["status"] == "lost"
            assert base64.b64decode(run["checkpoint"]) == b"saved\n", "its checkpoint outlived the worker"
            # Delivery at least once (the default): the lost run runs again,
            # from the checkpoint.
            retry = wait_until(
                lambda: next(
                    (e for e in executions(c, job["id"]) if e["attempt"] == 2 and e["status"] == "running"),
                    None,
                ),
                timeout=30,
                what="the lost run retried",
            )
            wait_until(
                lambda: c.get(f"/executions/{retry['id']}/logs").text.startswith("from=saved"),
                timeout=30,
                what="the retry started from the checkpoint",
            )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert containers_of(worker_id) == []


def ticked(c: httpx.Client, job_id: str, times: int) -> bool:
    return len(executions(c, job_id)) >= times


def test_a_paused_or_deleted_job_starts_nothing_after_the_reply(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        paused = c.post("/jobs", json={"name": "p", "command": "true", "schedule": "* * * * * *"}).json()
        deleted = c.post("/jobs", json={"name": "d", "command": "true", "schedule": "* * * * * *"}).json()
        for job_id in (paused["id"], deleted["id"]):
            wait_until(functools.partial(ticked, c, job_id, 2), timeout=30, what="ticking")
        assert c.post(f"/jobs/{paused['id']}/pause").status_code == 200
        paused_at = datetime.now(UTC)
        assert c.delete(f"/jobs/{deleted['id']}").status_code == 204
        deleted_at = datetime.now(UTC)
        # Prove time passed with the cluster firing: another job runs 3 times
        # (started, not just claimed: docker fires are claimed 3 s ahead).
        witness = c.post("/jobs", json={"name": "w", "command": "true", "schedule": "* * * * * *"}).json()
        wait_until(
            lambda: sum(1 for e in executions(c, witness["id"]) if e.get("started_at")) >= 3,
            timeout=30,
            what="witness runs",
        )
        for job, acknowledged in ((paused, paused_at), (deleted, deleted_at)):
            late = [
                e
                for e in executions(c, job["id"])
                if e.get("started_at") and t(e["started_at"]) > acknowledged
            ]
            assert late == [], f"{job['name']} started after the reply"
            withdrawn = [e for e in executions(c, job["id"]) if "withdrawn" in (e.get("error") or "")]
            assert all(e["status"] == "cancelled" for e in withdrawn)
            pending = [e for e in executions(c, job["id"]) if e["status"] == "scheduled"]
            assert pending == [], "none left pending"
        c.delete(f"/jobs/{witness['id']}")


def test_a_per_job_job_runs_every_second_in_its_own_container(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post(
            "/jobs",
            json={"name": "tick", "command": "date +%s", "schedule": "* * * * * *", "container": "per_job"},
        ).json()
        runs = wait_until(
            lambda: (lambda done: done if len(done) >= 5 else None)(
                [e for e in executions(c, job["id"]) if e["status"] == "succeeded"]
            ),
            timeout=30,
            what="five ticks",
        )
        c.delete(f"/jobs/{job['id']}")
        assert len({e["scheduled_at"] for e in runs}) == len(runs), "each fire once"
        assert all(t(e["started_at"]) >= t(e["scheduled_at"]) for e in runs), "never early"
        by_worker: dict[str, set[str]] = {}
        for e in runs:
            by_worker.setdefault(e["worker_id"], set()).add(e["container_id"])
        assert all(len(ids) == 1 for ids in by_worker.values()), "one resident container per job and worker"
        assert c.get(f"/executions/{runs[-1]['id']}/logs").text.strip().isdigit()
