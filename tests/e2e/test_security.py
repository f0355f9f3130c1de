"""The local cluster's security, from outside: internal gRPC refuses a
client its CA did not sign, and a secret env value reaches the run (in its
container) while no reply (HTTP, gRPC, CLI export), row or process log ever
holds it."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import psycopg
import pytest
import yaml

from cronfleet import Client
from cronfleet.tls import ensure_local_pki
from cronfleet.v1 import dispatch_pb2, dispatch_pb2_grpc
from tests.e2e.conftest import Cluster
from tests.e2e.test_cluster import executions, finished_run
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
STARS = {"value": "***", "secret": True}


def test_the_local_cluster_makes_its_ca_and_schedulers_refuse_strangers(
    cluster: Cluster, tmp_path: Path
) -> None:
    tls = cluster.state_dir / "tls"
    assert {p.name for p in tls.iterdir()} >= {"ca.pem", "ca.key", "worker.pem", "worker.key"}
    assert (cluster.state_dir / "secret.key").stat().st_mode & 0o077 == 0
    with cluster.api(cluster.new_user()) as c:
        addresses = [s["address"] for s in c.get("/cluster").json()["schedulers"]]
    assert addresses
    stranger = ensure_local_pki(tmp_path / "stranger")["worker"]
    ours = tls / "ca.pem"
    creds: dict[str, grpc.ChannelCredentials | None] = {
        "plaintext": None,
        "another CA's worker certificate": grpc.ssl_channel_credentials(
            ours.read_bytes(), stranger.key.read_bytes(), stranger.cert.read_bytes()
        ),
    }
    for address in addresses:
        for what, cred in creds.items():
            assert asyncio.run(_stream_status(address, cred)) == grpc.StatusCode.UNAVAILABLE, what


async def _stream_status(address: str, creds: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    channel = grpc.aio.insecure_channel(address) if creds is None else grpc.aio.secure_channel(address, creds)
    async with channel:
        call = dispatch_pb2_grpc.DispatchServiceStub(channel).Connect()
        try:
            await call.write(
                dispatch_pb2.WorkerMessage(hello=dispatch_pb2.Hello(worker_id="intruder", capacity=1))
            )
            await asyncio.wait_for(call.read(), 5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        finally:
            call.cancel()
    return grpc.StatusCode.OK


def test_a_secret_reaches_its_run_and_nothing_else(cluster: Cluster, tmp_path: Path) -> None:
    value = f"s3cr3t-{uuid.uuid4().hex}"
    digest = hashlib.sha256(value.encode()).hexdigest()  # the command itself must not hold it
    token = cluster.new_user()
    body = {
        "name": "deploy",
        "command": f'printf %s "$TOKEN" | sha256sum | grep -q {digest} && echo the token is right',
        "env": {"TOKEN": {"value": value, "secret": True}, "MODE": "prod"},
    }
    with cluster.api(token) as api:
        created = api.post("/jobs", json=body)
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["env"] == {"TOKEN": STARS, "MODE": "prod"}
        run = finished_run(api, job["id"])
        assert run["status"] == "succeeded", run
        assert "the token is right" in api.get(f"/executions/{run['id']}/logs").text

        # The dashboard's edit: the reply sent back whole (PUT), stars and all, keeps the
        # value; and a done one-off that is edited runs again.
        edited = {k: v for k, v in api.get(f"/jobs/{job['id']}").json().items() if k in body}
        assert api.put(f"/jobs/{job['id']}", json=edited | {"name": "deploy-2"}).status_code == 200

        def second_ran() -> bool:
            ended = [e for e in executions(api, job["id"]) if e.get("finished_at")]
            assert all(e["status"] == "succeeded" for e in ended), ended
            return len(ended) >= 2

        wait_until(second_ran, timeout=30, what="the edited job ran with its kept secret")
        replies = [api.get(f"/jobs/{job['id']}").text, api.get("/jobs").text]
        replies += [api.get(f"/executions/{e['id']}").text for e in executions(api, job["id"])]

    with Client(cluster.grpc, token=token) as sdk:
        fetched = sdk.get_job(job["id"])
        assert fetched["env"]["TOKEN"] == STARS
        replies.append(str(fetched))
    exported = subprocess.run(
        [sys.executable, "-m", "launch", "export"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
        | {"CRONFLEET_GRPC_ADDR": cluster.grpc, "CRONFLEET_TOKEN": token},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert yaml.safe_load(exported)["jobs"][0]["env"]["TOKEN"] == STARS
    replies.append(exported)

    with psycopg.connect(cluster.database_url) as conn:
        stored = conn.execute("SELECT string_agg(t::text, ' ') FROM jobs t").fetchone()
    assert stored is not None and "sealed" in str(stored[0])
    logs = [p.read_text(errors="replace") for p in (cluster.state_dir / "run").glob("*.log")]
    logs.append((cluster.state_dir / "up.log").read_text(errors="replace"))
    for where, text in [
        ("a reply", "\n".join(replies)),
        ("the database", str(stored[0])),
        ("a log", "\n".join(logs)),
    ]:
        assert value not in text, f"the secret is in {where}"
