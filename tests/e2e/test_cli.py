"""The `cronfleet` command as a person or a script uses it, as a subprocess
against a local cluster: tables, -o json equal to the HTTP API's objects,
apply/diff/export, run --wait, logs -f, --watch, errors, credentials and
where the gateway address comes from."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cronfleet import AsyncClient, Client
from cronfleet.client import ClientError
from launch.devservices import LocalEtcd, LocalPostgres, free_port
from tests.e2e.conftest import Cluster, start_cluster
from tests.e2e.test_cluster import executions, finished_run
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
NEVER = "0 0 0 1 1 ? 2099"  # a schedule that will not fire while a test runs


@pytest.fixture(scope="module")
def cli_cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    yield from start_cluster(
        pg_server,
        etcd_server,
        tmp_path_factory.mktemp("cli"),
        {"CRONFLEET_RUNTIME": "process"},
        ["--schedulers", "1", "--workers", "1"],
    )


@dataclass
class Cli:
    """The command with a home of its own (no credentials or config leak in)."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("CRONFLEET_", "XDG_"))}
        return keep | {"HOME": str(self.home), "PYTHONPATH": str(ROOT)} | self.env

    def run(self, *args: str, ok: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "launch", *args],
            env=self.environ(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if ok:
            assert r.returncode == 0, f"{args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def out(self, *args: str) -> str:
        return self.run(*args).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.out(*args, "-o", "json"))

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "launch", *args],
            env=self.environ(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


class Lines:
    """A process's stdout, read line by line in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self._thread = threading.Thread(
            target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True
        )
        self._thread.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def user(cli_cluster: Cluster, tmp_path: Path) -> tuple[Cli, httpx.Client]:
    """A fresh user: the CLI (token in the environment) and the HTTP API."""
    token = cli_cluster.new_user()
    cli = Cli(tmp_path / "home", {"CRONFLEET_GRPC_ADDR": cli_cluster.grpc, "CRONFLEET_TOKEN": token})
    cli.home.mkdir()
    return cli, cli_cluster.api(token)


def test_jobs_list_is_a_table_and_json_is_the_apis_object(user: tuple[Cli, httpx.Client]) -> None:
    cli, api = user
    job = api.post(
        "/jobs",
        json={"name": "noon", "command": "true", "schedule": "0 0 12 * * ?", "timezone": "Asia/Tokyo"},
    ).json()
    api.post("/jobs", json={"name": "once", "command": "echo once"})
    once = api.get("/jobs", params={"q": "once"}).json()["jobs"][0]
    finished_run(api, once["id"])

    header, *rows = cli.out("jobs", "list").splitlines()
    assert header.split() == [
        "NAME",
        "SCHEDULE",
        "DESCRIPTION",
        "TIMEZONE",
        "NEXT",
        "RUN",
        "STATUS",
        "LAST",
        "RESULT",
    ]
    noon = next(r for r in rows if r.startswith("noon "))
    for shown in ("0 0 12 * * ?", "At 12:00", "Asia/Tokyo", "active", "(in "):
        assert shown in noon
    assert "succeeded" in next(r for r in rows if r.startswith("once "))

    assert cli.json("jobs", "get", "noon") == api.get(f"/jobs/{job['id']}").json()
    assert cli.json("jobs", "get", job["id"]) == api.get(f"/jobs/{job['id']}").json()
    assert (
        yaml.safe_load(cli.out("jobs", "get", "noon", "-o", "yaml")) == api.get(f"/jobs/{job['id']}").json()
    )
    assert cli.json("jobs", "list") == api.get("/jobs", params={"recent": 1}).json()["jobs"]

    runs = cli.json("executions", "list", "--job", "once")
    assert runs == executions(api, once["id"])
    header, row = cli.out("jobs", "runs", "once").splitlines()
    assert header.split() == [
        "ID",
        "STATUS",
        "ATTEMPT",
        "TRIGGER",
        "SCHEDULED",
        "LATENESS",
        "DURATION",
        "EXIT",
        "CODE",
    ]
    assert row.split()[:4] == [runs[0]["id"], "succeeded", "1", "schedule"] and row.split()[-1] == "0"
    summary = cli.out("jobs", "get", "once")
    assert "Last runs" in summary and "echo once" in summary

    cluster = cli.out("cluster")
    assert "leader coordinator-1" in cluster and "scheduler-1  256" in cluster and "worker-1" in cluster
    preview = cli.out("preview", "0 0 12 * * ?", "--tz", "Asia/Tokyo", "-n", "3")
    assert preview.startswith("At 12:00") and preview.count("12:00:00 JST") == 3


def write_jobs(path: Path, *jobs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"jobs": list(jobs)}, sort_keys=False))
    return path


def state(api: httpx.Client) -> dict[str, tuple[str, int]]:
    """Each job's (updated_at, version), by name."""
    return {j["name"]: (j["updated_at"], j["version"]) for j in api.get("/jobs").json()["jobs"]}


def test_apply_diff_prune_and_export(user: tuple[Cli, httpx.Client], tmp_path: Path) -> None:
    cli, api = user
    files = tmp_path / "jobs"
    files.mkdir()
    extract = {"name": "extract", "command": "echo extract", "schedule": NEVER}
    load = {"name": "load", "command": "echo load", "after": [{"job": "extract", "on": "success"}]}
    write_jobs(files / "a.yaml", load, {"name": "spare", "command": "true", "schedule": NEVER})
    write_jobs(files / "b.yml", extract)

    out = cli.out("apply", "-f", str(files))
    assert "+ create extract" in out and "+ create load" in out and out.index("extract") < out.index("load")
    jobs = {j["name"]: j for j in api.get("/jobs").json()["jobs"]}
    assert jobs["load"]["after"] == [{"job_id": jobs["extract"]["id"], "on": "success"}]
    before = state(api)

    out = cli.out("apply", "-f", str(files))
    assert "= unchanged extract" in out and "= unchanged load" in out and "Nothing to change." in out
    assert state(api) == before, "an apply with nothing to change writes nothing"

    write_jobs(files / "b.yml", extract | {"command": "echo extract v2"})
    assert "~ update extract: command" in cli.out("diff", "-f", str(files))
    assert state(api) == before, "diff writes nothing"
    out = cli.out("apply", "-f", str(files))
    assert "~ update extract: command" in out and "= unchanged load" in out
    after = state(api)
    assert after["extract"][1] == before["extract"][1] + 1 and after["load"] == before["load"]

    write_jobs(files / "a.yaml", load)  # spare dropped
    refused = cli.run("apply", "-f", str(files), "--prune", ok=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr and "spare" in state(api)
    out = cli.out("apply", "-f", str(files), "--prune", "--yes")
    assert "- delete spare" in out and set(state(api)) == {"extract", "load"}

    exported = tmp_path / "export.yaml"
    cli.out("export", "-f", str(exported))
    document = yaml.safe_load(exported.read_text())
    assert [j["name"] for j in document["jobs"]] == ["extract", "load"]
    assert document["jobs"][1]["after"] == [{"job": "extract", "on": "success"}]
    assert yaml.safe_load(cli.out("export")) == document
    before = state(api)
    out = cli.out("apply", "-f", str(exported), "--prune")
    assert "Nothing to change." in out and state(api) == before
    assert [c["action"] for c in cli.json("diff", "-f", str(exported))] == ["unchanged", "unchanged"]


def test_run_wait_shows_the_output_and_exits_with_the_runs_code(user: tuple[Cli, httpx.Client]) -> None:
    cli, api = user
    api.post("/jobs", json={"name": "three", "command": "echo out; echo err >&2; exit 3", "schedule": NEVER})
    r = cli.run("jobs", "run", "three", "--wait", ok=False)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\nerr\n" and "failed (exit 3)" in r.stderr
    api.post("/jobs", json={"name": "fine", "command": "echo fine", "schedule": NEVER})
    assert cli.run("jobs", "run", "fine", "--wait").stdout == "fine\n"


def test_logs_follow_prints_what_the_run_writes_while_it_runs(user: tuple[Cli, httpx.Client]) -> None:
    cli, api = user
    job = api.post(
        "/jobs", json={"name": "slow", "command": "echo first; sleep 2; echo second", "schedule": NEVER}
    ).json()
    execution = api.post(f"/jobs/{job['id']}/run").json()
    wait_until(
        lambda: api.get(f"/executions/{execution['id']}").json()["status"] == "running",
        timeout=30,
        what="running",
    )
    proc = cli.popen("logs", execution["id"], "-f")
    lines = Lines(proc)
    wait_until(lambda: "first\n" in lines.text, timeout=30, what="the first line")
    assert api.get(f"/executions/{execution['id']}").json()["status"] == "running", "shown while it runs"
    assert "second" not in lines.text
    assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    assert lines.text == "first\nsecond\n"
    assert api.get(f"/executions/{execution['id']}").json()["status"] == "succeeded"


def test_watch_keeps_the_runs_table_fresh(user: tuple[Cli, httpx.Client]) -> None:
    cli, api = user
    job = api.post("/jobs", json={"name": "watched", "command": "true", "schedule": NEVER}).json()
    proc = cli.popen("jobs", "runs", "watched", "--watch")
    lines = Lines(proc)
    try:
        wait_until(lambda: any(line.startswith("ID ") for line in lines.lines), timeout=30, what="a table")
        run = api.post(f"/jobs/{job['id']}/run").json()
        wait_until(
            lambda: any(line.startswith(f"{run['id']} ") and "succeeded" in line for line in lines.lines),
            timeout=30,
            what="the run in the table, succeeded",
        )
    finally:
        proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


def test_errors_are_one_line_naming_the_field(user: tuple[Cli, httpx.Client], tmp_path: Path) -> None:
    cli, api = user
    bad = cli.run("jobs", "create", "--name", "bad", "--command", "x", "--schedule", "99 * * * * *", ok=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: schedule: ") and bad.stderr.count("\n") == 1
    missing = cli.run("jobs", "get", "nope", ok=False)
    assert (missing.returncode, missing.stderr) == (1, "error: job: no job named 'nope'\n")
    twins = [
        api.post("/jobs", json={"name": "twin", "command": "true", "schedule": NEVER}).json()
        for _ in range(2)
    ]
    ambiguous = cli.run("jobs", "run", "twin", ok=False)
    assert ambiguous.returncode == 2 and all(t["id"] in ambiguous.stderr for t in twins)
    file = write_jobs(tmp_path / "bad.yaml", {"name": "x", "command": "true", "timeout_seconds": "long"})
    wrong = cli.run("apply", "-f", str(file), ok=False)
    assert (
        wrong.returncode == 2
        and wrong.stderr == f"error: {file} jobs[0] (x): timeout_seconds: must be an integer\n"
    )
    usage = cli.run("jobs", "list", "--bogus", ok=False)
    assert usage.returncode == 2 and usage.stderr == "error: No such option: --bogus\n"


def test_login_keeps_the_token_private_and_the_address_comes_flag_env_file(
    cli_cluster: Cluster, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    nowhere = f"127.0.0.1:{free_port()}"
    email = f"cli-{uuid.uuid4().hex[:6]}@example.com"
    cli = Cli(home, {"CRONFLEET_GRPC_ADDR": cli_cluster.grpc})
    cli.out("signup", "--name", "Ann", "--email", email, "--password", "password123")
    cli.out("login", "--email", email, "--password", "password123")
    credentials = home / ".config/cronfleet/credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert f"at {cli_cluster.grpc} (from CRONFLEET_GRPC_ADDR)" in cli.out("whoami")

    config = home / ".config/cronfleet/config.yaml"
    config.write_text(f"addr: {nowhere}\n")
    assert "(from CRONFLEET_GRPC_ADDR)" in cli.out("whoami"), "the environment beats the file"
    cli.env = {"CRONFLEET_GRPC_ADDR": nowhere}
    assert "(from --addr)" in cli.out("--addr", cli_cluster.grpc, "whoami"), "the flag beats the environment"
    cli.env = {}
    unreachable = cli.run("whoami", ok=False)
    assert unreachable.returncode == 1 and unreachable.stderr.startswith(
        f"error: cannot reach the gateway at {nowhere}"
    )
    config.write_text(f"addr: {cli_cluster.grpc}\n")
    assert f"(from {config})" in cli.out("whoami"), "the file when nothing else says"


def test_the_sdk_follows_logs_and_finds_jobs_by_name(cli_cluster: Cluster) -> None:
    token = cli_cluster.new_user()
    with cli_cluster.api(token) as api:
        job = api.post("/jobs", json={"name": "said", "command": "printf 'h\\303\\251llo\\n'"}).json()
        run = finished_run(api, job["id"])

    async def follow() -> None:
        async with AsyncClient(cli_cluster.grpc, token=token) as client:
            assert "".join([t async for t in client.follow_logs(run["id"])]) == "héllo\n"
            assert (await client.find_job("said"))["id"] == job["id"]
            with pytest.raises(ClientError) as err:
                _ = [t async for t in client.follow_logs("999999999")]
            assert err.value.code == "not_found"

    asyncio.run(follow())
    with Client(cli_cluster.grpc, token=token) as sdk:
        assert "".join(sdk.follow_logs(run["id"])) == "héllo\n"
        assert sdk.find_job(job["id"])["name"] == "said"
        with pytest.raises(ClientError) as err:
            list(sdk.follow_logs("999999999"))
        assert err.value.code == "not_found"
