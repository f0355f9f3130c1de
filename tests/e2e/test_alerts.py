"""Alerts through the whole cluster: a job's notify set over HTTP, real runs
failing and recovering, deliveries signed with the user's secret, and the
coordinator that sends them killed mid-delivery and restarted: nothing lost,
nothing delivered twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cronfleet import Client, alerts
from cronfleet.client import ClientError
from launch.devservices import LocalEtcd, LocalPostgres
from tests.e2e.conftest import Cluster, start_cluster
from tests.e2e.test_faults import role_pid
from tests.e2e.test_observability import scrape, total
from tests.helpers import wait_until
from tests.webhooks import Receiver, webhook_receiver


@pytest.fixture(scope="module")
def alerting_cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    yield from start_cluster(
        pg_server,
        etcd_server,
        tmp_path_factory.mktemp("alerts"),
        {
            "CRONFLEET_RUNTIME": "process",
            # Longer than a kill and restart takes: the first try is still
            # hanging when its coordinator dies (the hold is this + 5 s).
            "CRONFLEET_ALERT_TIMEOUT_SECONDS": "10",
            "CRONFLEET_ALERT_RETRY_BASE_SECONDS": "0.2",
            "CRONFLEET_ALERT_POLL_INTERVAL": "0.1",
        },
        ["--coordinators", "1", "--schedulers", "1", "--workers", "1"],
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def alerts_of(c: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    r = c.get("/alerts", params={"job_id": job_id})
    assert r.status_code == 200, r.text
    return sorted(r.json()["alerts"], key=lambda a: int(a["id"]))


def test_bad_notify_is_refused_naming_the_field(alerting_cluster: Cluster) -> None:
    with alerting_cluster.api(alerting_cluster.new_user()) as c:
        bad_class = {
            "name": "x",
            "command": "true",
            "notify": [{"webhook": "https://e.com/h", "on": ["oops"]}],
        }
        r = c.post("/jobs", json=bad_class)
        assert r.status_code == 422 and r.json()["error"]["field"] == "notify[0].on[0]", r.text
        not_http = {"name": "x", "command": "true", "notify": [{"webhook": "file:///etc/passwd"}]}
        r = c.post("/jobs", json=not_http)
        assert r.status_code == 422 and r.json()["error"]["field"] == "notify[0].webhook", r.text
        r = c.patch("/me", json={"notify": [{"webhook": "https://e.com/alerts", "format": "slack"}]})
        assert r.status_code == 422 and r.json()["error"]["field"] == "notify[0].webhook", r.text
        assert c.get("/jobs").json()["jobs"] == [], "nothing half-written"
        assert c.get("/me").json()["notify"] == []


def test_failures_a_dead_letter_and_a_recovery_reach_the_webhook_signed(
    alerting_cluster: Cluster, receiver: Receiver, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    with alerting_cluster.api(alerting_cluster.new_user()) as c:
        secret = c.post("/me/webhook-secret").json()["secret"]
        job = c.post(
            "/jobs",
            json={
                "name": "flaky",
                "command": f"test -f {flag}",
                "max_retries": 1,
                "retry": {"backoff_seconds": 0},
                "notify": [{"webhook": receiver.url + "/flaky", "on": ["failed", "dead", "recovered"]}],
            },
        ).json()
        got = wait_until(lambda: receiver.delivered() if len(receiver.delivered()) >= 3 else None, timeout=30)
        assert sorted(r.json["kind"] for r in got) == ["dead", "failed", "failed"]
        for r in got:
            assert r.headers["x-cronfleet-signature"] == alerts.sign(secret, r.body)
            assert r.json["job_id"] == job["id"] and r.json["job_name"] == "flaky"
        flag.touch()
        assert c.post(f"/jobs/{job['id']}/run").status_code == 202
        wait_until(lambda: len(receiver.delivered()) == 4, timeout=30, what="the recovery")
        assert receiver.delivered()[-1].json["kind"] == "recovered"

        def all_delivered() -> list[dict[str, Any]] | None:
            found = alerts_of(c, job["id"])
            return found if all(a["deliveries"][0]["status"] == "delivered" for a in found) else None

        found = wait_until(all_delivered, what="recorded delivered")
        assert [a["kind"] for a in found] == ["failed", "failed", "dead", "recovered"]
        assert {r.alert_id for r in receiver.delivered()} == {a["id"] for a in found}
        assert all(a["deliveries"][0]["attempts"] == 1 for a in found)
        where = c.get("/cluster").json()["metrics"]["coordinator-1"]
        delivered = total(scrape(where), "cronfleet_coordinator_alert_deliveries_total", outcome="delivered")
        assert delivered >= 4, "the coordinator counts what it delivered"


def test_alerts_and_stats_over_grpc(alerting_cluster: Cluster, receiver: Receiver) -> None:
    with Client(alerting_cluster.grpc) as sdk:
        sdk.signup("G", "grpc-alerts@example.com", "password123")
        sdk.login("grpc-alerts@example.com", "password123")
        assert sdk.new_webhook_secret().startswith("whsec_")
        job = sdk.create_job(
            name="grpc-failing", command="exit 2", notify=[{"webhook": receiver.url + "/g", "on": ["failed"]}]
        )
        (alert,) = wait_until(lambda: sdk.list_alerts(job_id=job["id"])["alerts"], timeout=30)
        assert alert["kind"] == "failed" and alert["event"]["exit_code"] == 2
        assert alert["summary"].startswith("Job grpc-failing failed")
        stats = sdk.stats(job["id"])
        assert (int(stats["runs"]), int(stats["failed"]), stats["last"]) == (1, 1, ["failed"])
        assert {k: int(v) for k, v in sdk.stats()["jobs"].items()} == {"completed": 1}
        not_slack = [{"webhook": "https://e.com/x", "format": "slack"}]
        with pytest.raises(ClientError) as bad:
            sdk.create_job(name="bad", command="true", notify=not_slack)
        assert bad.value.field == "notify[0].webhook"


def test_a_coordinator_killed_mid_delivery_loses_nothing_and_doubles_nothing(
    alerting_cluster: Cluster, receiver: Receiver
) -> None:
    receiver.answer("hang")
    with alerting_cluster.api(alerting_cluster.new_user()) as c:
        job = c.post(
            "/jobs",
            json={
                "name": "doomed",
                "command": "exit 1",
                "notify": [{"webhook": receiver.url + "/doomed", "on": ["dead"]}],
            },
        ).json()
        (hung,) = wait_until(receiver.all, timeout=30, what="the first try, hanging")
        pid = role_pid(alerting_cluster, "coordinator-1")
        environ = dict(
            e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e
        )
        os.kill(pid, signal.SIGKILL)
        assert len(receiver.all()) == 1, "killed during the first try"
        log = open(alerting_cluster.state_dir / "coordinator-restarted.log", "wb")  # noqa: SIM115
        restarted = subprocess.Popen(
            [sys.executable, "-m", "launch", "coordinator"], env=environ, stdout=log, stderr=log
        )
        try:
            (delivered,) = wait_until(receiver.delivered, timeout=30, what="delivered after the restart")
            assert delivered.alert_id == hung.alert_id and delivered.body == hung.body

            def recorded() -> dict[str, Any] | None:
                (alert,) = alerts_of(c, job["id"])
                return alert if alert["deliveries"][0]["status"] == "delivered" else None

            alert = wait_until(recorded, what="recorded delivered")
            assert alert["deliveries"][0]["attempts"] == 2
            assert len(receiver.all()) == 2 and len(receiver.delivered()) == 1
        finally:
            restarted.terminate()
            restarted.wait(20)
            log.close()
