"""`cronfleet up` with its embedded Postgres and etcd (what `make run` does),
and what happens when either goes away: requests fail with 503, no process
crashes, and firing resumes when the service returns."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from launch.devservices import LocalEtcd, LocalPostgres, free_port
from tests.e2e.conftest import Cluster
from tests.e2e.test_cluster import executions, t
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, subprocess.Popen[bytes]]]:
    state = tmp_path_factory.mktemp("embedded")
    http_addr, grpc_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONFLEET_")} | {
        "CRONFLEET_STATE_DIR": str(state),
        "CRONFLEET_HTTP_ADDR": http_addr,
        "CRONFLEET_GRPC_ADDR": grpc_addr,
        "CRONFLEET_MEMBER_TTL": "2",
        "CRONFLEET_RUNTIME": "process",
    }
    log = state / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "launch", "up", "--schedulers", "1", "--workers", "1"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        wait_until(lambda: "cronfleet is up" in log.read_text() or proc.poll() is not None, timeout=90)
        assert proc.poll() is None, log.read_text()
        db_url = re.search(r"Postgres\s+(\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
        yield Cluster(f"http://{http_addr}", grpc_addr, db_url, state, env), proc
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert "cronfleet stopped." in log.read_text()
    assert not (state / "pg" / "postmaster.pid").exists(), "Ctrl-C must stop the embedded Postgres"


def _port(url: str) -> int:
    return int(re.search(r":(\d+)/", url).group(1))  # type: ignore[union-attr]


def _fires_after(c: httpx.Client, job_id: str, moment: datetime, n: int) -> bool:
    return (
        len([e for e in executions(c, job_id) if e.get("started_at") and t(e["scheduled_at"]) > moment]) >= n
    )


def test_postgres_outage_gives_503_and_recovers(embedded: tuple[Cluster, subprocess.Popen[bytes]]) -> None:
    cluster, proc = embedded
    token = cluster.new_user()
    pg = LocalPostgres(cluster.state_dir / "pg", _port(cluster.database_url))
    with cluster.api(token) as c:
        job = c.post("/jobs", json={"name": "tick", "command": "true", "schedule": "* * * * * *"}).json()
        wait_until(lambda: _fires_after(c, job["id"], datetime.min.replace(tzinfo=UTC), 2), timeout=15)
        pg.stop()
        try:
            wait_until(
                lambda: c.get("/jobs").status_code == 503, timeout=15, what="503 while Postgres is down"
            )
            body = c.get("/jobs").json()
            assert body["error"]["code"] == "unavailable"
            assert c.get(f"{cluster.http}/readyz").status_code == 503
            assert c.get(f"{cluster.http}/healthz").status_code == 200
        finally:
            pg.start()
        back = datetime.now(UTC)
        wait_until(lambda: c.get("/jobs").status_code == 200, timeout=30, what="API back")
        wait_until(lambda: _fires_after(c, job["id"], back, 2), timeout=30, what="firing resumes")
    assert proc.poll() is None
    assert "exited" not in (cluster.state_dir / "up.log").read_text()


def test_etcd_outage_and_recovery(embedded: tuple[Cluster, subprocess.Popen[bytes]]) -> None:
    cluster, proc = embedded
    token = cluster.new_user()
    etcd_pid = int(
        subprocess.run(
            ["pgrep", "-f", "--", f"--data-dir {cluster.state_dir}/etcd/data"], capture_output=True, text=True
        ).stdout.split()[0]
    )
    with cluster.api(token) as c:
        job = c.post("/jobs", json={"name": "tick", "command": "true", "schedule": "* * * * * *"}).json()
        wait_until(lambda: _fires_after(c, job["id"], datetime.min.replace(tzinfo=UTC), 1), timeout=15)
        wait_until(lambda: c.get("/cluster").json().get("leader"), timeout=30, what="a leader")
        os.kill(etcd_pid, signal.SIGKILL)
        wait_until(lambda: c.get("/cluster").status_code == 503, timeout=15, what="503 without etcd")
        assert c.get("/jobs").status_code == 200  # the job API does not need etcd
        restarted = LocalEtcd(cluster.state_dir / "etcd", _etcd_port(cluster), free_port())
        restarted.start()
        try:
            back = datetime.now(UTC)
            wait_until(
                lambda: (
                    c.get("/cluster").status_code == 200
                    and c.get("/cluster").json()["schedulers"]
                    and c.get("/cluster").json()["schedulers"][0]["shards"]
                ),
                timeout=30,
                what="cluster back",
            )
            wait_until(lambda: _fires_after(c, job["id"], back, 2), timeout=30, what="firing resumes")
        finally:
            c.delete(f"/jobs/{job['id']}")
            restarted.stop()
    assert "exited" not in (cluster.state_dir / "up.log").read_text()
    assert proc.poll() is None


def _etcd_port(cluster: Cluster) -> int:
    text = (cluster.state_dir / "up.log").read_text()
    return int(re.search(r"etcd\s+127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
