"""A cluster that keeps run output in S3: the user gets a presigned link;
past the log-bytes-kept quota the oldest logs are removed from the bucket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cronfleet.errors import NotFound
from cronfleet.logstore import S3LogStore
from launch.devservices import LocalEtcd, LocalPostgres
from tests.e2e.conftest import Cluster, start_cluster
from tests.e2e.test_cluster import assert_logs_follow_live, executions, finished_run
from tests.helpers import s3_settings, wait_until

pytestmark = pytest.mark.e2e
LOG_QUOTA = 5000


@pytest.fixture(scope="module")
def s3_cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, s3_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    env = {
        "CRONFLEET_LOG_STORE": "s3",
        "CRONFLEET_S3_ENDPOINT_URL": s3_server,
        "CRONFLEET_S3_BUCKET": "e2e-logs",
        "CRONFLEET_S3_ACCESS_KEY_ID": "test",
        "CRONFLEET_S3_SECRET_ACCESS_KEY": "test",
        # This cluster also covers the process runtime (machines without Docker).
        "CRONFLEET_RUNTIME": "process",
        # Small, and checked often: the quota test below fills it in seconds
        # (each other test's user stays far under it).
        "CRONFLEET_QUOTA_LOG_BYTES_KEPT": str(LOG_QUOTA),
        "CRONFLEET_LOG_QUOTA_INTERVAL": "0.5",
    }
    yield from start_cluster(
        pg_server, etcd_server, tmp_path_factory.mktemp("s3"), env, ["--schedulers", "1", "--workers", "1"]
    )


def test_log_url_is_a_presigned_s3_link(s3_cluster: Cluster) -> None:
    with s3_cluster.api(s3_cluster.new_user()) as c:
        job = c.post("/jobs", json={"name": "s3", "command": "echo to-s3; echo err >&2"}).json()
        run = finished_run(c, job["id"])
        assert run["status"] == "succeeded"
        assert "X-Amz-Signature" in run["log_url"] and "e2e-logs" in run["log_url"]
        assert httpx.get(run["log_url"]).text == "to-s3\nerr\n"  # no bearer needed: the link is signed
        assert c.get(f"/executions/{run['id']}/logs").text == "to-s3\nerr\n"


def test_a_run_that_printed_nothing_stores_no_object(s3_cluster: Cluster, s3_server: str) -> None:
    """Most cron jobs are silent: no PUT for them. The run says 0 bytes, and
    its presigned link opens the bucket's one empty object (its own key
    names nothing); the logs route answers empty."""
    with s3_cluster.api(s3_cluster.new_user()) as c:
        owner = c.get("/me").json()["id"]
        job = c.post("/jobs", json={"name": "silent", "command": "true"}).json()
        run = finished_run(c, job["id"])
        assert (run["status"], run["log_bytes"]) == ("succeeded", 0), run
        assert "X-Amz-Signature" in run["log_url"] and "e2e-logs" in run["log_url"]
        assert httpx.get(run["log_url"]).text == ""  # no bearer needed: the link is signed
        logs = c.get(f"/executions/{run['id']}/logs")
        assert (logs.status_code, logs.text) == (200, "")
        store = S3LogStore(s3_settings(s3_server, "e2e-logs"))

        async def read() -> bytes | None:
            try:
                return await store.read(store.key_for(owner, job["id"], run["id"], run["attempt"]))
            except NotFound:
                return None
            finally:
                await store.close()

        assert asyncio.run(read()) is None


def test_process_runtime_runs_steps_and_reports_exit_codes(s3_cluster: Cluster) -> None:
    with s3_cluster.api(s3_cluster.new_user()) as c:
        job = c.post(
            "/jobs",
            json={"name": "p", "steps": [{"name": "a", "run": "echo A"}, {"name": "b", "run": "exit 4"}]},
        ).json()
        run = finished_run(c, job["id"])
        assert (run["status"], run["exit_code"], run["error"]) == ("failed", 4, "step b exited 4")
        assert [s["name"] for s in run["steps"]] == ["a", "b"]


def test_logs_follow_a_live_process_run_through_s3(s3_cluster: Cluster) -> None:
    assert_logs_follow_live(s3_cluster)


def test_logs_past_the_quota_are_removed_oldest_first(s3_cluster: Cluster, s3_server: str) -> None:
    """2,000 bytes a second against a 5,000-byte quota: the leader removes the
    oldest logs from the bucket, the newest two stay readable, and a removed
    one answers 410 naming the quota."""
    with s3_cluster.api(s3_cluster.new_user()) as c:
        owner = c.get("/me").json()["id"]
        spec = {"name": "chatty", "command": "head -c 2000 /dev/zero | tr '\\0' x", "schedule": "* * * * * *"}
        job = c.post("/jobs", json=spec).json()

        def some_removed() -> list[dict[str, Any]] | None:
            done = [e for e in executions(c, job["id"]) if e.get("finished_at")]
            removed = [e for e in done if e.get("log_removed_at")]
            return done if len(done) >= 5 and len(removed) >= 2 else None

        wait_until(some_removed, timeout=30, what="five runs of 2,000 bytes, two logs removed")
        assert c.post(f"/jobs/{job['id']}/pause").status_code == 200

        def settled() -> list[dict[str, Any]] | None:
            runs = [e for e in executions(c, job["id"]) if e["status"] != "cancelled"]
            kept = sum(e["log_bytes"] or 0 for e in runs if not e.get("log_removed_at"))
            return runs if all(e.get("finished_at") for e in runs) and kept <= LOG_QUOTA else None

        runs = wait_until(
            settled, timeout=15, what="the paused job's runs ended and its logs within the quota"
        )
        assert all(e["status"] == "succeeded" and e["log_bytes"] == 2000 for e in runs), runs
        kept = [e for e in runs if not e.get("log_removed_at")]
        removed = [e for e in runs if e.get("log_removed_at")]
        assert sum(e["log_bytes"] for e in kept) <= LOG_QUOTA
        # Oldest first: every removed run finished before every kept one.
        assert max(e["finished_at"] for e in removed) <= min(e["finished_at"] for e in kept)
        assert all(e.get("log_url") is None for e in removed) and all(e.get("log_url") for e in kept)

        gone = c.get(f"/executions/{removed[0]['id']}/logs")
        assert gone.status_code == 410, gone.text
        assert (gone.json()["error"]["code"], gone.json()["error"]["field"]) == (
            "log_removed",
            "log_bytes_kept",
        )
        assert "log-bytes-kept quota" in gone.json()["error"]["message"]
        assert c.get(f"/executions/{kept[0]['id']}/logs").text == "x" * 2000

        # And the objects are gone from the bucket, not just hidden.
        store = S3LogStore(s3_settings(s3_server, "e2e-logs"))

        async def read(e: dict[str, Any]) -> bytes | None:
            try:
                return await store.read(store.key_for(owner, job["id"], e["id"], e["attempt"]))
            except NotFound:
                return None

        async def read_all() -> list[bytes | None]:
            try:
                return [await read(e) for e in removed + kept[:1]]
            finally:
                await store.close()

        *removed_objects, kept_object = asyncio.run(read_all())
        assert removed_objects == [None] * len(removed) and kept_object == b"x" * 2000
