"""The ownership matrix: two users, every route of the HTTP API and every RPC
of the public gRPC API. User B can neither read nor change anything of user
A's (404 / NOT_FOUND, the answer for what does not exist; lists never show
it), and a call without a valid token is refused (401 / UNAUTHENTICATED).
The matrix is checked against the served OpenAPI document and the
JobService descriptor, so a new route or RPC without a row fails here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from cronfleet.v1 import jobs_pb2 as pb
from cronfleet.v1 import jobs_pb2_grpc
from tests.e2e.conftest import Cluster
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e
PUBLIC_HTTP = {
    ("post", "/api/v1/auth/signup"),
    ("post", "/api/v1/auth/login"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}
PUBLIC_RPC = {"Signup", "Login"}
JOB = {"name": "b-was-here", "command": "true", "schedule": "0 0 1 1 *"}


@dataclass
class Owned:
    """What user A has: a job, a failed run, its dead letter and alert."""

    token: str
    job: str
    execution: str
    dead_letter: str
    alert: str


@pytest.fixture(scope="module")
def owned(cluster: Cluster) -> Owned:
    token = cluster.new_user()
    with cluster.api(token) as a:
        failing = {
            "name": "a-fails",
            "command": "false",
            "notify": [{"webhook": "http://127.0.0.1:9/hook", "on": ["failed", "dead"]}],
        }
        job = a.post("/jobs", json=failing).json()["id"]

        def dead_letter() -> dict[str, Any] | None:
            found = a.get("/dead-letters", params={"job_id": job}).json()["dead_letters"]
            return found[0] if found else None

        letter = wait_until(dead_letter, timeout=60, what="A's run failed for good")
        wait_until(lambda: a.get(f"/jobs/{job}").json()["status"] == "completed", timeout=30)
        alert = wait_until(lambda: a.get("/alerts", params={"job_id": job}).json()["alerts"], timeout=30)[0]
    return Owned(token, job, letter["execution_id"], letter["id"], alert["id"])


@pytest.fixture(scope="module")
def other(cluster: Cluster) -> str:
    return cluster.new_user()


# ------------------------------------------------------------------- HTTP
# (method, path template) -> (path, body or None, what B gets)
def http_matrix(o: Owned) -> dict[tuple[str, str], tuple[str, Any, int]]:
    j, e, d = o.job, o.execution, o.dead_letter
    window = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    return {
        ("post", "/api/v1/auth/logout"): ("/auth/logout", None, 204),  # B's own token only
        ("get", "/api/v1/me"): ("/me", None, 200),
        ("patch", "/api/v1/me"): ("/me", {"name": "B"}, 200),
        ("post", "/api/v1/me/webhook-secret"): ("/me/webhook-secret", None, 200),
        ("post", "/api/v1/jobs"): ("/jobs", JOB | {"after": [{"job_id": j}]}, 422),
        ("get", "/api/v1/jobs"): ("/jobs", None, 200),
        ("get", "/api/v1/jobs/{job_id}"): (f"/jobs/{j}", None, 404),
        ("put", "/api/v1/jobs/{job_id}"): (f"/jobs/{j}", JOB, 404),
        ("patch", "/api/v1/jobs/{job_id}"): (f"/jobs/{j}", {"priority": 1}, 404),
        ("delete", "/api/v1/jobs/{job_id}"): (f"/jobs/{j}?cancel_running=true", None, 404),
        ("post", "/api/v1/jobs/{job_id}/run"): (f"/jobs/{j}/run", None, 404),
        ("post", "/api/v1/jobs/{job_id}/pause"): (f"/jobs/{j}/pause", None, 404),
        ("post", "/api/v1/jobs/{job_id}/resume"): (f"/jobs/{j}/resume", None, 404),
        ("post", "/api/v1/jobs/{job_id}/backfill"): (f"/jobs/{j}/backfill", window, 404),
        ("get", "/api/v1/jobs/{job_id}/executions"): (f"/jobs/{j}/executions", None, 404),
        ("get", "/api/v1/jobs/{job_id}/stats"): (f"/jobs/{j}/stats", None, 404),
        ("get", "/api/v1/executions"): (f"/executions?job_id={j}", None, 404),
        ("get", "/api/v1/executions/{execution_id}"): (f"/executions/{e}", None, 404),
        ("get", "/api/v1/executions/{execution_id}/logs"): (f"/executions/{e}/logs?follow=true", None, 404),
        ("post", "/api/v1/executions/{execution_id}/cancel"): (f"/executions/{e}/cancel", None, 404),
        ("get", "/api/v1/dead-letters"): (f"/dead-letters?job_id={j}", None, 200),
        ("post", "/api/v1/dead-letters/{dead_letter_id}/replay"): (f"/dead-letters/{d}/replay", None, 404),
        ("delete", "/api/v1/dead-letters/{dead_letter_id}"): (f"/dead-letters/{d}", None, 404),
        ("get", "/api/v1/alerts"): (f"/alerts?job_id={j}", None, 200),
        ("get", "/api/v1/stats"): ("/stats", None, 200),
        ("post", "/api/v1/schedules/preview"): ("/schedules/preview", {"schedule": "@daily"}, 200),
        ("get", "/api/v1/cluster"): ("/cluster", None, 200),  # the cluster, nobody's data
    }


def test_the_http_matrix_covers_every_route(cluster: Cluster, owned: Owned) -> None:
    with cluster.api() as c:
        document = c.get("/openapi.json").json()
    served = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert served == set(http_matrix(owned)) | PUBLIC_HTTP


def test_user_b_reaches_nothing_of_user_a_over_http(cluster: Cluster, owned: Owned, other: str) -> None:
    with cluster.api(other) as b:
        for (method, _), (path, body, expected) in http_matrix(owned).items():
            if path == "/auth/logout":
                continue  # last, below
            reply = b.request(method.upper(), path, json=body)
            assert reply.status_code == expected, (method, path, reply.text[:300])
            if expected == 404:
                assert reply.json()["error"]["code"] == "not_found", (method, path)
            assert "a-fails" not in reply.text and owned.token not in reply.text, (method, path)
        # Lists show B nothing of A's, whatever the filter.
        for path in ("/jobs", "/executions", "/dead-letters", "/alerts"):
            listed = b.get(path, params={"limit": 500}).text
            assert owned.job not in listed, path
        # Naming A's job as an upstream says what naming no job says.
        nobody = str(uuid.uuid4())
        refusals = [
            b.post("/jobs", json=JOB | {"after": [{"job_id": job_id}]}).json()["error"]
            for job_id in (nobody, owned.job)
        ]
        assert refusals[0] | {"message": refusals[0]["message"].replace(nobody, owned.job)} == refusals[1]
        # An Idempotency-Key is B's own: A's use of it neither conflicts nor replays.
        with cluster.api(owned.token) as a:
            assert a.post("/jobs", json=JOB, headers={"Idempotency-Key": "k-1"}).status_code == 201
        mine = b.post("/jobs", json=JOB | {"name": "b"}, headers={"Idempotency-Key": "k-1"})
        assert mine.status_code == 201 and mine.json()["owner_id"] != owned.job
        assert b.get("/me").json()["name"] == "B"
        assert b.post("/auth/logout").status_code == 204
        assert b.get("/me").status_code == 401, "logout revoked B's token, and only B's"
    with cluster.api(owned.token) as a:  # A's things are as they were
        job = a.get(f"/jobs/{owned.job}").json()
        assert job["status"] == "completed" and job.get("priority", 5) == 5 and job["name"] == "a-fails"
        assert a.get(f"/executions/{owned.execution}").json()["status"] == "failed"
        letters = a.get("/dead-letters", params={"job_id": owned.job}).json()["dead_letters"]
        assert [x["id"] for x in letters] == [owned.dead_letter]
        assert a.get("/me").status_code == 200


def test_every_http_route_refuses_a_missing_or_bad_token(cluster: Cluster, owned: Owned) -> None:
    for token in (None, "cf_not-a-token", owned.token[:-2] + "xx"):
        with cluster.api(token) as c:
            for (method, _), (path, body, _) in http_matrix(owned).items():
                reply = c.request(method.upper(), path, json=body)
                assert reply.status_code == 401, (token, method, path, reply.text[:200])
                assert reply.json()["error"]["code"] == "unauthenticated"


# ------------------------------------------------------------------- gRPC
def _ts(text: str) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromJsonString(text)
    return ts


# RPC -> (request with A's ids, the status B gets: None for OK)
def rpc_matrix(o: Owned) -> dict[str, tuple[Any, grpc.StatusCode | None]]:
    j, e, d = o.job, o.execution, o.dead_letter
    spec = pb.JobSpec(name="b", command="true", schedule="0 0 1 1 *")
    nf = grpc.StatusCode.NOT_FOUND
    return {
        "Logout": (pb.LogoutRequest(), None),
        "GetMe": (pb.GetMeRequest(), None),
        "UpdateMe": (pb.UpdateMeRequest(name="B"), None),
        "CreateJob": (
            pb.CreateJobRequest(spec=pb.JobSpec(name="b", command="true", after=[pb.Upstream(job_id=j)])),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),  # fmt: skip
        "ListJobs": (pb.ListJobsRequest(), None),
        "GetJob": (pb.GetJobRequest(id=j), nf),
        "ReplaceJob": (pb.ReplaceJobRequest(id=j, spec=spec), nf),
        "UpdateJob": (pb.UpdateJobRequest(id=j, spec=pb.JobSpec(priority=1), update_mask=["priority"]), nf),
        "DeleteJob": (pb.DeleteJobRequest(id=j, cancel_running=True), nf),
        "RunJob": (pb.RunJobRequest(id=j), nf),
        "PauseJob": (pb.PauseJobRequest(id=j), nf),
        "ResumeJob": (pb.ResumeJobRequest(id=j), nf),
        "BackfillJob": (
            pb.BackfillJobRequest(id=j, start=_ts("2026-01-01T00:00:00Z"), end=_ts("2026-01-02T00:00:00Z")),
            nf,
        ),  # fmt: skip
        "ListExecutions": (pb.ListExecutionsRequest(job_id=j), nf),
        "GetExecution": (pb.GetExecutionRequest(id=e), nf),
        "GetExecutionLogs": (pb.GetExecutionLogsRequest(id=e), nf),
        "FollowExecutionLogs": (pb.GetExecutionLogsRequest(id=e), nf),
        "CancelExecution": (pb.CancelExecutionRequest(id=e), nf),
        "ListDeadLetters": (pb.ListDeadLettersRequest(job_id=j), None),
        "ReplayDeadLetter": (pb.ReplayDeadLetterRequest(id=d), nf),
        "DeleteDeadLetter": (pb.DeleteDeadLetterRequest(id=d), nf),
        "PreviewSchedule": (pb.PreviewScheduleRequest(schedule="@daily"), None),
        "GetCluster": (pb.GetClusterRequest(), None),
        "ListAlerts": (pb.ListAlertsRequest(job_id=j), None),
        "NewWebhookSecret": (pb.NewWebhookSecretRequest(), None),
        "GetStats": (pb.GetStatsRequest(job_id=j), nf),
    }


@pytest.fixture
def stub(cluster: Cluster) -> Iterator[Callable[[str, Any, str | None], Any]]:
    with grpc.insecure_channel(cluster.grpc) as channel:
        service = jobs_pb2_grpc.JobServiceStub(channel)

        def call(rpc: str, request: Any, token: str | None) -> Any:
            metadata = [("authorization", f"Bearer {token}")] if token else []
            reply = getattr(service, rpc)(request, metadata=metadata, timeout=20)
            return list(reply) if rpc == "FollowExecutionLogs" else reply

        yield call


def test_the_rpc_matrix_covers_every_rpc(owned: Owned) -> None:
    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["JobService"].methods}
    assert methods == set(rpc_matrix(owned)) | PUBLIC_RPC


def test_user_b_reaches_nothing_of_user_a_over_grpc(
    cluster: Cluster, owned: Owned, stub: Callable[[str, Any, str | None], Any]
) -> None:
    b = cluster.new_user()
    for rpc, (request, expected) in rpc_matrix(owned).items():
        if rpc == "Logout":
            continue
        try:
            reply = stub(rpc, request, b)
        except grpc.RpcError as exc:
            assert exc.code() == expected, (rpc, exc.code(), exc.details())
            continue
        assert expected is None, (rpc, "answered", reply)
        assert owned.job not in str(reply), rpc
    stub("Logout", pb.LogoutRequest(), b)
    with pytest.raises(grpc.RpcError) as refused:
        stub("GetMe", pb.GetMeRequest(), b)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with cluster.api(owned.token) as a:
        assert a.get(f"/jobs/{owned.job}").json()["status"] == "completed"  # it ran once, as made
        assert a.get("/dead-letters", params={"job_id": owned.job}).json()["dead_letters"]


def test_every_rpc_refuses_a_missing_or_bad_token(
    owned: Owned, stub: Callable[[str, Any, str | None], Any]
) -> None:
    for token in (None, "cf_not-a-token"):
        for rpc, (request, _) in rpc_matrix(owned).items():
            with pytest.raises(grpc.RpcError) as refused:
                stub(rpc, request, token)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, (token, rpc)
