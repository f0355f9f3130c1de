"""Every role serves its own Prometheus metrics, and they count what happened;
one execution can be followed through every process's log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from launch.devservices import LocalEtcd, LocalPostgres
from tests.e2e.conftest import Cluster, start_cluster
from tests.e2e.test_cluster import finished_run

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def quiet_cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A cluster of its own, so that nothing else moves its counters."""
    yield from start_cluster(
        pg_server,
        etcd_server,
        tmp_path_factory.mktemp("metrics"),
        {"CRONFLEET_RUNTIME": "process", "CRONFLEET_LOG_LEVEL": "debug"},
        ["--schedulers", "1", "--workers", "1"],
    )


def scrape(addr: str) -> Samples:
    text = httpx.get(f"http://{addr}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_each_role_serves_metrics_that_count_real_fires(quiet_cluster: Cluster) -> None:
    with quiet_cluster.api(quiet_cluster.new_user()) as c:
        where = c.get("/cluster").json()["metrics"]
        assert set(where) == {"coordinator-1", "scheduler-1", "worker-1", "gateway"}
        config = yaml.safe_load((quiet_cluster.state_dir / "prometheus.yml").read_text())
        targets = {t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]}
        assert targets == set(where.values()), "the scrape config names every process"

        before = {m: scrape(a) for m, a in where.items()}
        jobs = [c.post("/jobs", json={"name": f"ok{i}", "command": "true"}).json() for i in range(3)]
        jobs.append(c.post("/jobs", json={"name": "bad", "command": "exit 3"}).json())
        outcomes = sorted(finished_run(c, j["id"])["status"] for j in jobs)
        assert outcomes == ["failed", "succeeded", "succeeded", "succeeded"]
        after = {m: scrape(a) for m, a in where.items()}

    def moved(member: str, name: str, **labels: str) -> float:
        return total(after[member], name, **labels) - total(before[member], name, **labels)

    worker = "worker-1"
    assert moved(worker, "cronfleet_worker_runs_total", status="succeeded") == 3
    assert moved(worker, "cronfleet_worker_runs_total", status="failed") == 1
    assert moved(worker, "cronfleet_worker_fire_lateness_seconds_count") == 4, "each run's real start"
    assert moved(worker, "cronfleet_worker_run_duration_seconds_count") == 4
    assert total(after[worker], "cronfleet_worker_capacity_runs") > 0
    buckets = [
        float(dict(ls)["le"])
        for (n, ls) in after[worker]
        if n == "cronfleet_worker_fire_lateness_seconds_bucket"
    ]
    assert min(buckets) == 0.0005 and 60 in buckets

    assert moved("scheduler-1", "cronfleet_scheduler_assignments_sent_total") == 4
    assert moved("scheduler-1", "cronfleet_scheduler_fires_claimed_total") == 4
    assert total(after["scheduler-1"], "cronfleet_scheduler_shards_owned") == 256
    assert total(after["scheduler-1"], "cronfleet_scheduler_worker_credits", worker=worker) > 0

    assert total(after["coordinator-1"], "cronfleet_coordinator_leader") == 1
    assert total(after["coordinator-1"], "cronfleet_coordinator_epoch") > 0
    assert total(after["coordinator-1"], "cronfleet_coordinator_members", role="worker") == 1

    created = moved(
        "gateway", "cronfleet_http_request_duration_seconds_count", route="/api/v1/jobs", method="POST"
    )
    assert created == 4


def test_each_role_answers_the_probes_kubernetes_asks(quiet_cluster: Cluster) -> None:
    """deploy/k8s probes /healthz and /readyz: the gateway on its API port,
    every other role on its metrics port."""
    with quiet_cluster.api(quiet_cluster.new_user()) as c:
        where = c.get("/cluster").json()["metrics"]
    for member, addr in where.items():
        for path in ("/healthz", "/readyz"):
            reply = httpx.get(f"http://{addr}{path}", timeout=5)
            assert reply.status_code == 200, f"{member} {path}: {reply.status_code} {reply.text}"


def test_one_execution_is_traced_through_every_process_by_its_id(quiet_cluster: Cluster) -> None:
    with quiet_cluster.api(quiet_cluster.new_user()) as c:
        job = c.post("/jobs", json={"name": "traced", "command": "true"}).json()
        run = finished_run(c, job["id"])

    def lines_about(member: str) -> list[dict[str, Any]]:
        text = (quiet_cluster.state_dir / "run" / f"{member}.log").read_text()
        found = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        return [e for e in found if e.get("execution_id") == int(run["id"])]

    by_scheduler = {e["event"]: e for e in lines_about("scheduler-1")}
    assert {"run_assigned", "run_event"} <= set(by_scheduler)
    assigned = by_scheduler["run_assigned"]
    assert assigned["job_id"] == job["id"] and assigned["worker_id"] == "worker-1"
    assert assigned["scheduler_id"] == "scheduler-1" and "shard_id" in assigned
    by_worker = lines_about("worker-1")
    assert by_worker and all(e["worker_id"] == "worker-1" and e["job_id"] == job["id"] for e in by_worker)
    assert by_worker[-1]["event"] == "run_finished" and by_worker[-1]["attempt"] == 1
