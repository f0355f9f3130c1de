"""The Go example client (examples/go/quickstart), built with Debian's Go
toolchain and Go libraries against the committed stubs in gen/go, run against
a local cluster: it signs up, logs in, creates a job and lists its runs."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.test_cluster import executions

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("go") / "quickstart"
    build = subprocess.run(
        [str(ROOT / "examples/go/build.sh"), str(out)], capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stderr
    return out


def fields(line: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in line.split(": ", 1)[1].split())


def test_the_go_client_creates_a_job_and_lists_its_run(cluster: Cluster, quickstart: Path) -> None:
    email = f"go{uuid.uuid4().hex[:8]}@example.com"
    args = [str(quickstart), "-addr", cluster.grpc, "-email", email, "-password", "password123"]
    ran = subprocess.run([*args, "-job", "from-go"], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("signed up: user_id="), ran.stdout
    assert lines[1].startswith("logged in: expires_at="), ran.stdout
    created = re.fullmatch(rf"job created: id=({UUID}) name=from-go status=\w+", lines[2])
    assert created, ran.stdout
    runs = [fields(line) for line in lines[3:] if line.startswith("execution: ")]
    outcomes = [(r["attempt"], r["status"], r["exit_code"]) for r in runs]
    assert outcomes == [("1", "succeeded", "0")], ran.stdout

    # The same job and run, seen by its owner through the HTTP API.
    job_id = created.group(1)
    with cluster.api() as c:
        token = c.post("/auth/login", json={"email": email, "password": "password123"}).json()["token"]
    with cluster.api(token) as c:
        assert c.get(f"/jobs/{job_id}").json()["name"] == "from-go"
        assert [e["id"] for e in executions(c, job_id)] == [runs[0]["id"]]
        assert c.get(f"/executions/{runs[0]['id']}/logs").text == "hello from go\n"

    # Again with the same account: signup finds it, login still works.
    again = subprocess.run([*args, "-job", "from-go-2"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith(f"signed up: already email={email}\n"), again.stdout
    assert "status=succeeded" in again.stdout


def test_a_wrong_password_fails_with_the_servers_answer(cluster: Cluster, quickstart: Path) -> None:
    email = f"go{uuid.uuid4().hex[:8]}@example.com"
    base = [str(quickstart), "-addr", cluster.grpc, "-email", email]
    first = subprocess.run([*base, "-password", "password123"], capture_output=True, timeout=60)
    assert first.returncode == 0
    wrong = subprocess.run([*base, "-password", "wrong-password"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("quickstart: log in: Unauthenticated:"), wrong.stderr
