"""schemathesis against a running gateway, from its own OpenAPI document:
no 5xx, every reply as documented (status, content type, headers, body
schema), and the documented examples get jobs accepted. Bounded in time
(``--max-time``); the runtime is ``noop``, so no fuzzed command is run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch.devservices import LocalEtcd, LocalPostgres
from tests.e2e.conftest import Cluster, start_cluster

pytestmark = pytest.mark.e2e
FUZZ_SECONDS = 45
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


@pytest.fixture(scope="module")
def noop_cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    yield from start_cluster(
        pg_server,
        etcd_server,
        tmp_path_factory.mktemp("fuzz"),
        # Fuzzed logins would spend the per-account budget and leave login untested.
        {"CRONFLEET_RUNTIME": "noop", "CRONFLEET_AUTH_ACCOUNT_FAILURES": "100000"},
        ["--schedulers", "1", "--workers", "1"],
    )


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    noop_cluster: Cluster, tmp_path: Path
) -> None:
    token = noop_cluster.new_user()
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    run = subprocess.run(
        [
            st,
            "run",
            f"{noop_cluster.http}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--exclude-path",
            "/api/v1/auth/logout",  # it would revoke the token the run uses
            "--max-examples",
            "10",
            "--max-time",
            str(FUZZ_SECONDS),
            "--request-timeout",
            "15",
            "--seed",
            "13",
            "--generation-database",
            "none",
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 60,
    )
    report = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(report)
    assert run.returncode == 0, report[-20_000:]
    counts = re.search(r"(\d+) generated, (\d+) passed$", report, re.MULTILINE)
    assert counts and counts[1] == counts[2] and int(counts[1]) >= 100, report[-5_000:]
    with noop_cluster.api(token) as api:  # schemathesis reuses the ids it is given: it deletes some
        jobs = [api.get("/jobs", params={"status": s}).json()["jobs"] for s in ("", "deleted")]
    assert jobs[0] + jobs[1], "the documented examples got jobs accepted"
