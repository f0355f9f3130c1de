"""Job semantics end to end, over HTTP on the local cluster: retries and dead
letters, idempotency, preview, backfill, chains, cancel, HTTP jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cronfleet import Client
from tests.e2e.conftest import Cluster
from tests.e2e.test_cluster import executions, finished_run
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


def test_a_failing_job_retries_by_its_policy_then_lands_in_dead_letters(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post(
            "/jobs",
            json={
                "name": "flaky",
                "command": "exit 1",
                "max_retries": 2,
                "retry": {"backoff_seconds": 0.5, "multiplier": 2, "jitter": 0.1},
            },
        ).json()

        def dead() -> list[dict[str, Any]] | None:
            found = c.get("/dead-letters").json()["dead_letters"]
            return found or None

        (letter,) = wait_until(dead, timeout=45, what="a dead letter")
        runs = sorted(executions(c, job["id"]), key=lambda e: e["attempt"])
        assert [(e["attempt"], e["trigger"], e["status"]) for e in runs] == [
            (1, "schedule", "failed"),
            (2, "retry", "failed"),
            (3, "retry", "failed"),
        ]
        assert letter["attempts"] == 3 and letter["job_id"] == job["id"]
        replay = c.post(f"/dead-letters/{letter['id']}/replay")
        assert replay.status_code == 202 and replay.json()["trigger"] == "replay"
        assert c.get("/dead-letters").json()["dead_letters"] == []
        assert c.delete(f"/dead-letters/{letter['id']}").status_code == 404


def test_an_idempotency_key_creates_once(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        body = {"name": "once", "command": "true", "schedule": "@yearly"}
        first = c.post("/jobs", json=body, headers={"Idempotency-Key": "abc"})
        again = c.post("/jobs", json=body, headers={"Idempotency-Key": "abc"})
        assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
        other = c.post("/jobs", json=body | {"name": "twice"}, headers={"Idempotency-Key": "abc"})
        assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
        assert len(c.get("/jobs").json()["jobs"]) == 1


def test_preview_and_warnings(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        r = c.post(
            "/schedules/preview", json={"schedule": "0 0 12 * * ?", "timezone": "Asia/Tokyo", "count": 3}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["description"] == "At 12:00" and len(body["next"]) == 3
        assert all(t.endswith("T03:00:00Z") for t in body["next"])
        assert all(t.endswith("T12:00:00+09:00") for t in body["next_local"])
        bad = c.post("/schedules/preview", json={"schedule": "61 * * * * *"})
        assert bad.status_code == 422 and "second must be 0-59" in bad.json()["error"]["message"]
        job = c.post("/jobs", json={"name": "both", "command": "true", "schedule": "0 0 12 13 * FRI"}).json()
        assert any("either" in w for w in job["warnings"]), "warned, not refused"


def test_backfill_runs_past_fires(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post("/jobs", json={"name": "bf", "command": "true", "schedule": "*/10 * * * * *"}).json()
        start = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0)
        span = {"from": start.isoformat(), "to": (start + timedelta(seconds=30)).isoformat()}
        r = c.post(f"/jobs/{job['id']}/backfill", json=span)
        assert r.status_code == 202, r.text
        assert [e["trigger"] for e in r.json()["executions"]] == ["backfill"] * 4
        wait_until(
            lambda: (
                sum(
                    1
                    for e in executions(c, job["id"])
                    if e["trigger"] == "backfill" and e["status"] == "succeeded"
                )
                == 4
            ),
            timeout=45,
            what="backfilled runs succeeded",
        )
        reversed_range = {"from": span["to"], "to": span["from"]}
        bad = c.post(f"/jobs/{job['id']}/backfill", json=reversed_range)
        assert bad.status_code == 422 and "to:" in bad.json()["error"]["message"]
        c.delete(f"/jobs/{job['id']}")


def test_a_downstream_job_runs_after_its_upstream(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        build = c.post("/jobs", json={"name": "build", "command": "echo built", "schedule": "@yearly"}).json()
        deploy = c.post(
            "/jobs", json={"name": "deploy", "command": "echo deployed", "after": [{"job_id": build["id"]}]}
        ).json()
        assert deploy["status"] == "active" and "next_run_at" not in deploy
        run = c.post(f"/jobs/{build['id']}/run").json()
        child = finished_run(c, deploy["id"], timeout=45)
        assert child["trigger"] == "upstream" and child["upstream_execution_id"] == int(run["id"])
        assert child["status"] == "succeeded"
        cycle = c.patch(f"/jobs/{build['id']}", json={"after": [{"job_id": deploy["id"]}]})
        assert cycle.status_code == 422 and "cycle" in cycle.json()["error"]["message"]


def test_cancel_stops_a_running_container(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post("/jobs", json={"name": "long", "command": "sleep 120"}).json()
        run = wait_until(
            lambda: next((e for e in executions(c, job["id"]) if e["status"] == "running"), None),
            timeout=45,
            what="running",
        )
        assert c.post(f"/executions/{run['id']}/cancel").status_code == 202
        ended = wait_until(
            lambda: (lambda e: e if e["status"] != "running" else None)(
                c.get(f"/executions/{run['id']}").json()
            ),
            timeout=20,
            what="cancelled within the grace",
        )
        assert ended["status"] == "cancelled"


def test_an_http_job_calls_an_api(cluster: Cluster) -> None:
    with cluster.api(cluster.new_user()) as c:
        job = c.post(
            "/jobs", json={"name": "ping", "http": {"url": f"{cluster.http}/healthz", "expect_status": [200]}}
        ).json()
        run = finished_run(c, job["id"], timeout=30)
        assert run["status"] == "succeeded"
        log = c.get(f"/executions/{run['id']}/logs").text
        assert log.startswith(f"> GET {cluster.http}/healthz\n< 200 OK in ") and log.endswith(
            '{"status":"ok"}'
        )
        assert httpx.get(f"{cluster.http}/healthz").status_code == 200


def test_the_sdk_and_the_cli_reach_the_new_routes(cluster: Cluster, tmp_path: Path) -> None:
    email = f"semantics-{uuid.uuid4().hex[:6]}@example.com"
    with Client(cluster.grpc) as sdk:
        sdk.signup("SDK", email, "password123")
        sdk.login(email, "password123")
        preview = sdk.preview_schedule("0 30 2 * * *", "America/New_York", 2)
        assert preview["description"] == "At 02:30" and len(preview["next"]) == 2
        assert "does not exist" in preview["warnings"][0]
        job = sdk.create_job(name="tick", command="true", schedule="*/10 * * * * *", idempotency_key="k1")
        assert (
            sdk.create_job(name="tick", command="true", schedule="*/10 * * * * *", idempotency_key="k1")["id"]
            == job["id"]
        )
        start = (datetime.now(UTC) - timedelta(minutes=3)).replace(second=0, microsecond=0)
        filled = sdk.backfill_job(job["id"], start, start + timedelta(seconds=20))
        assert len(filled["executions"]) == 3
        assert sdk.list_dead_letters()["dead_letters"] == []
        sdk.delete_job(job["id"], cancel_running=True)
        token = sdk.token
    env = cluster.env | {"CRONFLEET_TOKEN": str(token), "CRONFLEET_CREDENTIALS": str(tmp_path / "none.json")}

    def cli(*args: str) -> Any:
        r = subprocess.run(
            [sys.executable, "-m", "launch", *args, "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"name": "filed", "command": "exit 3", "retry": {"never_exit_codes": [3]}}))
    created = cli("jobs", "create", "--file", str(spec), "--idempotency-key", "file-1")
    assert cli("jobs", "create", "--file", str(spec), "--idempotency-key", "file-1")["id"] == created["id"]
    letters = wait_until(lambda: cli("dead-letters", "list") or None, timeout=45, what="a dead letter")
    assert letters[0]["job_id"] == created["id"] and "never retried for exit code 3" in letters[0]["reason"]
    assert cli("preview", "@daily", "--tz", "Europe/Berlin", "-n", "1")["next"][0].endswith("T23:00:00Z")
