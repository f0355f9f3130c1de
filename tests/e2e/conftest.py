"""A whole local cluster (`cronfleet up`) as real processes, per test module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cronfleet.tls import TlsFiles
from launch.devservices import LocalEtcd, LocalPostgres, free_port
from tests.conftest import TEMPLATE_DB
from tests.helpers import wait_until


@dataclass
class Cluster:
    http: str
    grpc: str
    database_url: str
    state_dir: Path
    env: dict[str, str]
    pid: int | None = None  # of the `cronfleet up` process

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.http}/api/v1", headers=headers, timeout=10)

    def role_env(self, role: str) -> dict[str, str]:
        """What `cronfleet up` gives its processes of ``role`` beyond ``env``
        (its internal TLS files, the secret key's file), for one a test starts."""
        tls = self.state_dir / "tls"
        files = TlsFiles(tls / "ca.pem", tls / f"{role}.pem", tls / f"{role}.key")
        return files.env() | {"CRONFLEET_SECRET_KEY_FILE": str(self.state_dir / "secret.key")}

    def new_user(self) -> str:
        """Sign up a fresh user; return a bearer token."""
        email = f"u{uuid.uuid4().hex[:8]}@example.com"
        with self.api() as c:
            assert (
                c.post(
                    "/auth/signup", json={"name": "Test", "email": email, "password": "password123"}
                ).status_code
                == 201
            )
            return str(
                c.post("/auth/login", json={"email": email, "password": "password123"}).json()["token"]
            )


def start_cluster(
    pg: LocalPostgres,
    etcd_server: LocalEtcd,
    tmp: Path,
    extra_env: dict[str, str],
    args: list[str],
    need_workers: bool = True,
) -> Iterator[Cluster]:
    db_url = pg.create_database(f"e2e_{uuid.uuid4().hex[:8]}", TEMPLATE_DB)
    http_addr, grpc_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = (
        os.environ
        | {
            "CRONFLEET_DATABASE_URL": db_url,
            "CRONFLEET_ETCD_ENDPOINTS": etcd_server.endpoint,
            "CRONFLEET_ETCD_PREFIX": f"/e2e-{uuid.uuid4().hex[:8]}",
            "CRONFLEET_HTTP_ADDR": http_addr,
            "CRONFLEET_GRPC_ADDR": grpc_addr,
            "CRONFLEET_STATE_DIR": str(tmp),
            "CRONFLEET_MEMBER_TTL": "2",
            # The tests sign up and log in many users from this one address.
            "CRONFLEET_AUTH_ADDRESS_REQUESTS": "100000",
        }
        | extra_env
    )
    out = open(tmp / "up.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "launch", "up", *args], env=env, stdout=out, stderr=out)
    cluster = Cluster(f"http://{http_addr}", grpc_addr, db_url, tmp, env, proc.pid)

    def ready() -> bool:
        assert proc.poll() is None, (tmp / "up.log").read_text()
        if "cronfleet is up" not in (tmp / "up.log").read_text():
            return False
        token = cluster.new_user()
        with cluster.api(token) as c:
            r = c.get("/cluster")
            if r.status_code != 200:
                return False
            body = r.json()
            return all(s["shards"] for s in body["schedulers"]) and (
                len(body["workers"]) >= 1 or not need_workers
            )
        return False

    try:
        wait_until(ready, timeout=60, interval=0.2, what="local cluster up")
        yield cluster
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(45)  # a worker has 30 s (launch.localcluster.GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


@pytest.fixture(scope="session")
def cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    yield from start_cluster(pg_server, etcd_server, tmp_path_factory.mktemp("cluster"), {}, [])
