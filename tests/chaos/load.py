"""The chaos suite's load: jobs whose commands write witness lines, and
one-offs created all along (what the API acknowledged must run once)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.cluster import ChaosCluster, Plan


def witness_command(path: Path, lives: float = 0.0) -> str:
    fields = "$CRONFLEET_JOB_ID $CRONFLEET_SCHEDULED_AT $CRONFLEET_ATTEMPT $(date +%s.%N) $$"
    start = f'echo "S {fields}" >> {path}'
    if not lives:
        return start
    beats = " ".join(str(i) for i in range(int(lives / 0.5)))
    return (
        f'{start}; for _ in {beats}; do sleep 0.5; echo "H {fields}" >> {path}; done; '
        f'echo "E {fields}" >> {path}'
    )


@dataclass
class Load:
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the body sent
    acknowledged: dict[str, float] = field(default_factory=dict)  # one-off id -> due (epoch)
    create_failures: int = 0


def create_jobs(cluster: ChaosCluster, plan: Plan, load: Load) -> None:
    w = cluster.witness
    kinds = [
        (plan.every_second, "sec", {"schedule": "* * * * * *", "command": witness_command(w)}),
        (plan.every_few, "few", {"schedule": "*/3 * * * * *", "command": witness_command(w)}),
        (plan.long_runs, "long", {"schedule": "*/5 * * * * *", "command": witness_command(w, 3)}),
        (
            plan.forbid,
            "forbid",
            {"schedule": "*/2 * * * * *", "command": witness_command(w, 3), "concurrency_policy": "forbid"},
        ),
    ]
    with cluster.api(timeout=30) as api:
        for count, name, body in kinds:
            for i in range(count):
                spec = {"name": f"{name}-{i}", "misfire_policy": "run_all", "timeout_seconds": 60, **body}
                reply = api.post("/jobs", json=spec)
                assert reply.status_code == 201, reply.text
                load.jobs[reply.json()["id"]] = spec


def keep_creating(cluster: ChaosCluster, plan: Plan, load: Load, stop: threading.Event) -> None:
    """One-offs due 2 s ahead, all along: whatever the API acknowledged must
    exist afterwards and run once; a refusal or timeout is not acknowledged."""
    with cluster.api(timeout=5) as api:
        while not stop.wait(plan.one_off_every):
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            body = {"name": "once", "command": witness_command(cluster.witness), "run_at": due.isoformat()}
            try:
                reply = api.post("/jobs", json=body)
            except httpx.HTTPError:
                load.create_failures += 1
                continue
            if reply.status_code == 201:
                load.acknowledged[reply.json()["id"]] = due.timestamp()
            else:
                load.create_failures += 1
