"""End to end: the local cluster as processes, driven over HTTP, the SDK and
the CLI, as a user would."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cronfleet import AsyncClient, Client
from tests.e2e.conftest import Cluster
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


def t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def executions(c: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    r = c.get(f"/jobs/{job_id}/executions", params={"limit": 500})
    assert r.status_code == 200, r.text
    return list(r.json()["executions"])


def finished_run(c: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        runs = [e for e in executions(c, job_id) if e.get("finished_at")]
        return runs[0] if runs else None

    return wait_until(done, timeout=timeout, what=f"job {job_id} finished")


def test_hello_runs_at_once_with_logs(cluster: Cluster) -> None:
    token = cluster.new_user()
    with cluster.api(token) as c:
        r = c.post("/jobs", json={"name": "hello", "command": "echo hello"})
        assert r.status_code == 201, r.text
        job = r.json()
        run = finished_run(c, job["id"])
        assert run["status"] == "succeeded" and run["exit_code"] == 0
        assert t(run["started_at"]) >= t(run["scheduled_at"])
        # Typically ~0.3 s (a cold container) or ~25 ms (process); the bound
        # only guards "at once", timings are the benchmark's job.
        assert t(run["started_at"]) - t(job["created_at"]) < timedelta(seconds=3)
        assert c.get(f"/executions/{run['id']}/logs").text == "hello\n"
        assert httpx.get(run["log_url"], headers=c.headers).text == "hello\n"
        assert c.get(f"/jobs/{job['id']}").json()["status"] == "completed"


def test_a_run_that_printed_nothing_stores_no_file(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post("/jobs", json={"name": "silent", "command": "true"}).json()
        run = finished_run(c, job["id"])
        assert (run["status"], run["log_bytes"]) == ("succeeded", 0), run
        assert httpx.get(run["log_url"], headers=c.headers).text == ""
        assert c.get(f"/executions/{run['id']}/logs").status_code == 200
        assert list(cluster.state_dir.rglob(f"{run['id']}-{run['attempt']}.log")) == []


def test_every_two_seconds_on_the_second_then_delete(cluster: Cluster) -> None:
    token = cluster.new_user()
    with cluster.api(token) as c:
        job = c.post("/jobs", json={"name": "tick", "command": "date", "schedule": "*/2 * * * * *"}).json()
        runs = wait_until(
            lambda: (lambda done: done if len(done) >= 3 else None)(
                [e for e in executions(c, job["id"]) if e["status"] == "succeeded"]
            ),
            timeout=15,
            what="three ticks",
        )
        times = sorted(t(e["scheduled_at"]) for e in runs)
        for a, b in zip(times, times[1:], strict=False):
            assert b - a == timedelta(seconds=2)
        for e in runs:
            assert t(e["scheduled_at"]).second % 2 == 0 and t(e["scheduled_at"]).microsecond == 0
            assert t(e["started_at"]) >= t(e["scheduled_at"])
            assert e["finished_at"] and e["worker_id"]
        assert c.delete(f"/jobs/{job['id']}").status_code == 204
        deleted_at = datetime.now().astimezone()
        # Prove time passed with the cluster firing: another job ticks 3 times.
        witness = c.post("/jobs", json={"name": "w", "command": "true", "schedule": "* * * * * *"}).json()
        wait_until(lambda: len(executions(c, witness["id"])) >= 3, timeout=15, what="witness ticks")
        # Fires claimed ahead of time are cancelled, never started.
        late = [
            e
            for e in executions(c, job["id"])
            if e.get("started_at") and t(e["scheduled_at"]) > deleted_at + timedelta(seconds=1)
        ]
        assert late == []
        wait_until(
            lambda: all(e["status"] not in ("scheduled", "running") for e in executions(c, job["id"])),
            timeout=15,
            what="armed fires of the deleted job cancelled",
        )
        c.delete(f"/jobs/{witness['id']}")


def test_noon_job_next_run_in_its_timezone(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post(
            "/jobs",
            json={
                "name": "noon",
                "command": "true",
                "schedule": "0 0 12 * * ?",
                "timezone": "America/New_York",
            },
        ).json()
        nxt = t(job["next_run_at"])
        local = nxt.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        assert (local.hour, local.minute, local.second) == (12, 0, 0)
        assert nxt - datetime.now().astimezone() <= timedelta(days=1)


def test_failures_are_reported_with_exit_codes(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        bad = c.post("/jobs", json={"name": "exit3", "command": "exit 3"}).json()
        missing = c.post("/jobs", json={"name": "nope", "command": "no-such-command-here"}).json()
        run = finished_run(c, bad["id"])
        assert (run["status"], run["exit_code"]) == ("failed", 3)
        run = finished_run(c, missing["id"])
        assert (run["status"], run["exit_code"]) == ("failed", 127)


def test_retries_until_budget_spent(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post("/jobs", json={"name": "flaky", "command": "exit 1", "max_retries": 1}).json()
        runs = wait_until(
            lambda: (lambda rs: rs if len(rs) == 2 and all(r.get("finished_at") for r in rs) else None)(
                executions(c, job["id"])
            ),
            timeout=20,
            what="two attempts",
        )
        assert sorted(r["attempt"] for r in runs) == [1, 2]
        assert {r["status"] for r in runs} == {"failed"}


def test_bad_input_is_rejected_and_nothing_written(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        cases = [
            (b"{not json", 400, None),
            (json.dumps({"name": "x", "command": "true", "unknown": 1}).encode(), 400, "unknown"),
            (json.dumps({"name": "x"}).encode(), 422, "command"),
            (
                json.dumps({"name": "x", "command": "a", "schedule": "61 * * * * *"}).encode(),
                422,
                "second must be 0-59",
            ),
            (json.dumps({"name": "x", "command": "a", "timezone": "Mars/Olympus"}).encode(), 422, "timezone"),
        ]
        for body, status, words in cases:
            r = c.post("/jobs", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == status, (body, r.text)
            assert "error" in r.json() and (words is None or words in r.json()["error"]["message"])
        assert c.get("/jobs").json()["jobs"] == []
        assert httpx.get(f"{cluster.http}/api/v1/jobs").status_code == 401


def test_pause_resume_trigger_and_isolation(cluster: Cluster) -> None:
    owner, other = cluster.new_user(), cluster.new_user()
    with cluster.api(owner) as c, cluster.api(other) as o:
        job = c.post("/jobs", json={"name": "p", "command": "echo manual", "schedule": "@yearly"}).json()
        assert c.post(f"/jobs/{job['id']}/pause").json()["status"] == "paused"
        r = c.post(f"/jobs/{job['id']}/run")
        assert r.status_code == 202
        run = wait_until(
            lambda: (lambda e: e if e.get("finished_at") else None)(
                c.get(f"/executions/{r.json()['id']}").json()
            ),
            what="manual run",
        )
        assert run["status"] == "succeeded"
        assert c.post(f"/jobs/{job['id']}/resume").json()["status"] == "active"
        assert o.get(f"/jobs/{job['id']}").status_code == 404
        assert o.get(f"/executions/{run['id']}").status_code == 404
        assert o.get(f"/executions/{run['id']}/logs").status_code == 404
        patched = c.patch(f"/jobs/{job['id']}", json={"priority": 9}).json()
        assert patched["priority"] == 9 and patched["schedule"] == "@yearly"


def test_cluster_shows_leader_schedulers_and_workers(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        body = c.get("/cluster").json()
    assert body["leader"] == "coordinator-1"
    assert sorted(s["id"] for s in body["schedulers"]) == ["scheduler-1", "scheduler-2"]
    shards = sorted(x for s in body["schedulers"] for x in s["shards"])
    assert shards == list(range(256)) and all(len(s["shards"]) == 128 for s in body["schedulers"])
    assert sorted(w["id"] for w in body["workers"]) == ["worker-1", "worker-2"]
    assert all(w["capacity"] > 0 and "running" in w for w in body["workers"])
    assert {w["runtime"] for w in body["workers"]} <= {"docker", "process"}
    assert set(body["health"]) == set(body["metrics"]) and set(body["health"].values()) == {"ok"}


def test_sdk_sync_and_async(cluster: Cluster) -> None:
    email = "sdk@example.com"
    with Client(cluster.grpc) as sdk:
        sdk.signup("SDK", email, "password123")
        sdk.login(email, "password123")
        job = sdk.create_job(name="sdk", command="echo from-sdk")
        run = wait_until(
            lambda: next(
                (e for e in sdk.list_executions(job_id=job["id"])["executions"] if e.get("finished_at")), None
            ),
            what="sdk run",
        )
        assert run["status"] == "succeeded" and sdk.logs(run["id"]) == "from-sdk\n"
        assert sdk.get_job(job["id"])["name"] == "sdk"
        token = sdk.token

    async def use_async() -> None:
        async with AsyncClient(cluster.grpc, token=token) as client:
            job = await client.create_job(name="async", command="echo from-async", schedule="*/5 * * * * *")
            assert (await client.pause_job(job["id"]))["status"] == "paused"
            await client.delete_job(job["id"])
            assert (await client.get_job(job["id"]))["status"] == "deleted"
            with pytest.raises(Exception) as err:
                await client.create_job(name="bad", command="x", schedule="99 * * * * *")
            assert "second must be 0-59" in str(err.value)

    asyncio.run(use_async())


def test_cli_tour(cluster: Cluster, tmp_path: Path) -> None:
    env = cluster.env | {"CRONFLEET_CREDENTIALS": str(tmp_path / "creds.json")}

    def cli(*args: str) -> str:
        r = subprocess.run(
            [sys.executable, "-m", "launch", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    cli("signup", "--name", "Cli", "--email", "cli@example.com", "--password", "password123")
    cli("login", "--email", "cli@example.com", "--password", "password123")
    job = json.loads(cli("jobs", "create", "--name", "cli", "--command", "echo from-cli", "-o", "json"))
    assert any(j["id"] == job["id"] for j in json.loads(cli("jobs", "list", "-o", "json")))

    def run_done() -> dict[str, Any] | None:
        runs = json.loads(cli("executions", "list", "--job", job["id"], "-o", "json"))
        return next((r for r in runs if r.get("finished_at")), None)

    run = wait_until(run_done, what="cli run")
    assert cli("executions", "logs", run["id"]) == "from-cli\n"
    assert json.loads(cli("cluster", "-o", "json"))["leader"] == "coordinator-1"
    cli("jobs", "delete", job["id"])


def test_no_run_ever_started_early(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post("/jobs", json={"name": "s", "command": "true", "schedule": "* * * * * *"}).json()
        wait_until(lambda: len([e for e in executions(c, job["id"]) if e.get("started_at")]) >= 3, timeout=15)
        c.delete(f"/jobs/{job['id']}")
    with psycopg.connect(cluster.database_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FILTER (WHERE started_at < run_at), count(started_at) FROM executions"
        ).fetchone()
    assert rows is not None and rows[1] > 0
    assert rows[0] == 0


def assert_logs_follow_live(cluster: Cluster) -> None:
    """`logs?follow=true` shows output while the run is live, then ends with it."""
    with cluster.api(cluster.new_user()) as c:
        # Long enough that a busy engine still shows "first" before the end.
        job = c.post("/jobs", json={"name": "slow", "command": "echo first; sleep 10; echo second"}).json()
        run = wait_until(
            lambda: next((e for e in executions(c, job["id"]) if e["status"] == "running"), None),
            timeout=30,
            what="run started",
        )
        received = b""
        seen_live = False
        with c.stream("GET", f"/executions/{run['id']}/logs", params={"follow": "true"}, timeout=60) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                received += chunk
                if b"first" in received and b"second" not in received:
                    seen_live = seen_live or c.get(f"/executions/{run['id']}").json()["status"] == "running"
        assert received == b"first\nsecond\n"
        assert seen_live, "the first line arrived only after the run had finished"
        assert c.get(f"/executions/{run['id']}").json()["status"] == "succeeded"
        assert c.get("/executions/999999999/logs", params={"follow": "true"}).status_code == 404


def test_logs_follow_a_live_docker_run(cluster: Cluster) -> None:
    assert_logs_follow_live(cluster)
