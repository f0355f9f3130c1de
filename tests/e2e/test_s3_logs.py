"""A cluster that keeps run output in S3: the user gets a presigned link."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from launch.devservices import LocalEtcd, LocalPostgres
from tests.e2e.conftest import Cluster, start_cluster
from tests.e2e.test_cluster import assert_logs_follow_live, finished_run

pytestmark = pytest.mark.e2e


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
