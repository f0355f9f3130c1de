"""The Compose stack (deploy/compose.yaml) from the images `make images`
built: up, a job through the gateway run in a container, a scheduler
container killed and firing resumed on the other, down -v. Opt-in and slow
(`make compose-test`, which sets CRONFLEET_COMPOSE_TEST=1); it prints its
figures (-s)."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from cronfleet.shards import shard_for
from launch.devservices import free_port

pytestmark = pytest.mark.skipif(
    os.environ.get("CRONFLEET_COMPOSE_TEST") != "1", reason="opt-in: make compose-test"
)
COMPOSE_FILE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
SHARDS = 256
T = TypeVar("T")


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    http: str
    figures: dict[str, object] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 600) -> str:
        command = [*shlex.split(os.environ.get("COMPOSE", "docker-compose"))]
        command += ["-f", str(COMPOSE_FILE), "-p", self.project, *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout


def eventually(what: str, timeout: float, check: Callable[[], T | None], every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(every)


@pytest.fixture
def stack() -> Iterator[Stack]:
    project = f"cronfleet-test-{uuid.uuid4().hex[:6]}"
    http_port, grpc_port = free_port(), free_port()
    env = dict(os.environ) | {
        "CRONFLEET_HTTP_PORT": str(http_port),
        "CRONFLEET_GRPC_PORT": str(grpc_port),
        "CRONFLEET_CLUSTER": f"/{project}",  # labels the run containers this stack makes
    }
    s = Stack(project, env, f"http://127.0.0.1:{http_port}")
    started = time.monotonic()
    try:
        s.compose("up", "-d")
        s.figures["up -d returned (s)"] = time.monotonic() - started
        yield s
    finally:
        if os.environ.get("CRONFLEET_COMPOSE_KEEP_LOGS"):
            Path(os.environ["CRONFLEET_COMPOSE_KEEP_LOGS"]).write_text(s.compose("logs", "--no-color"))
        down = time.monotonic()
        s.compose("down", "-v", "--timeout", "30")
        s.figures["down -v (s)"] = time.monotonic() - down
        # Run containers of this stack that outlived their worker (none, when
        # the workers stopped cleanly): only this stack's, by its label.
        listed = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=cronfleet.cluster=/{project}"]
            + ["--format", '{{.ID}} {{.Label "cronfleet"}}'],
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        left = dict(line.split(" ", 1) for line in listed if line.strip())
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True)
        s.figures["run containers left after down (by kind)"] = sorted(left.values())
        print("\ncompose-test figures:")
        for name, value in s.figures.items():
            print(f"  {name}: {value:.2f}" if isinstance(value, float) else f"  {name}: {value}")


def at(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_the_stack_runs_a_job_in_a_container_and_survives_a_scheduler_kill(stack: Stack) -> None:
    started = time.monotonic()
    with httpx.Client(base_url=stack.http + "/api/v1", timeout=10) as api:
        eventually("the gateway ready", 300, lambda: httpx.get(stack.http + "/readyz").status_code == 200)
        stack.figures["gateway ready after up -d returned (s)"] = time.monotonic() - started

        def cluster_whole() -> dict[str, Any] | None:
            c = api.get("/cluster").json()
            ok = len(c.get("schedulers", [])) == 2 and len(c.get("workers", [])) == 2 and c.get("leader")
            return c if ok else None

        account = {"name": "Ann", "email": "ann@example.com", "password": "correct-horse"}
        assert api.post("/auth/signup", json=account).status_code == 201
        token = api.post("/auth/login", json=account).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        cluster = eventually("two schedulers and two workers", 120, cluster_whole)
        assert cluster["coordinators"] and len(cluster["coordinators"]) == 2
        assert api.get(stack.http + "/").status_code == 200, "the dashboard"

        # A job through the gateway, run in a container on a worker.
        created = time.monotonic()
        job = api.post("/jobs", json={"name": "hello", "command": "echo hello from compose"}).json()

        def succeeded() -> dict[str, Any] | None:
            runs = api.get(f"/jobs/{job['id']}/executions").json()["executions"]
            return next((r for r in runs if r["status"] == "succeeded"), None)

        run = eventually("the job's run succeeded", 120, succeeded)
        stack.figures["run-now job: create to succeeded (s)"] = time.monotonic() - created
        stack.figures["run-now job: lateness (ms)"] = run["lateness_ms"]
        assert run["container_id"] and run["worker_id"] in ("worker-1", "worker-2")
        assert api.get(f"/executions/{run['id']}/logs").text == "hello from compose\n"

        # An every-second job; then the scheduler owning its shard is killed.
        tick = api.post("/jobs", json={"name": "tick", "command": "true", "schedule": "* * * * * *"}).json()
        shard = shard_for(tick["id"], SHARDS)

        def runs_of_tick() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = api.get(f"/jobs/{tick['id']}/executions?limit=500").json()[
                "executions"
            ]
            return found

        eventually("the every-second job firing", 60, lambda: len(runs_of_tick()) >= 5)
        # Who owns the job's shard now (both schedulers holding shards).
        balanced = eventually("shards on both schedulers", 60, lambda: _two_schedulers(api))
        owner = next(s["id"] for s in balanced["schedulers"] if shard in s["shards"])
        container = stack.compose("ps", "-q", owner).strip()
        killed_at = time.time()
        subprocess.run(["docker", "kill", container], check=True, capture_output=True)  # SIGKILL
        stack.figures["killed"] = owner
        stack.figures["docker kill took (s)"] = time.time() - killed_at
        # The survivor takes every shard once the killed one's lease ends
        # (the restart policy may start it again later; it rejoins then).
        eventually("the survivor owns every shard", 60, lambda: _one_scheduler(api), every=0.2)
        stack.figures["kill to the survivor owning every shard (s)"] = time.time() - killed_at

        def resumed() -> list[dict[str, Any]] | None:
            runs = runs_of_tick()
            later = [r for r in runs if r.get("started_at") and at(r["scheduled_at"]) > killed_at + 5]
            return runs if len(later) >= 5 else None

        runs = eventually("firing resumed after the kill", 120, resumed)

        starts = sorted(at(r.get("started_at")) for r in runs if r.get("started_at"))
        around = [b - a for a, b in zip(starts, starts[1:], strict=False) if a > killed_at - 5]
        stack.figures["longest gap between starts around the kill (s)"] = max(around)
        after = [r for r in runs if at(r["scheduled_at"]) >= killed_at and r.get("started_at")]
        first = min(after, key=lambda r: at(r["scheduled_at"]))
        stack.figures["first fire after the kill started, after the kill (s)"] = (
            at(first["started_at"]) - killed_at
        )
        lateness = sorted(float(r["lateness_ms"]) for r in after if r.get("lateness_ms") is not None)
        stack.figures["fires after the kill: max lateness (ms)"] = lateness[-1]
        stack.figures["fires after the kill: median lateness (ms)"] = lateness[len(lateness) // 2]
        # No fire doubled; none early.
        by_second = Counter((r["scheduled_at"], r["attempt"]) for r in runs)
        assert max(by_second.values()) == 1, by_second.most_common(3)
        assert all(at(r.get("started_at")) >= at(r["scheduled_at"]) for r in runs if r.get("started_at"))
        seconds = sorted({int(at(r["scheduled_at"])) for r in runs})
        missing = [s for s in range(seconds[0], seconds[-1]) if s not in set(seconds)]
        stack.figures["seconds without a fire"] = len(missing)
        assert not missing, missing
        api.delete(f"/jobs/{tick['id']}")


def _two_schedulers(api: httpx.Client) -> dict[str, Any] | None:
    c: dict[str, Any] = api.get("/cluster").json()
    live = [s for s in c.get("schedulers", []) if s["shards"]]
    return c if len(live) == 2 and sum(len(s["shards"]) for s in live) == SHARDS else None


def _one_scheduler(api: httpx.Client) -> dict[str, Any] | None:
    c: dict[str, Any] = api.get("/cluster").json()
    live = [s for s in c.get("schedulers", []) if s["shards"]]
    return c if len(live) == 1 and len(live[0]["shards"]) == SHARDS else None
