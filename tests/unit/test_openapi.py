"""The OpenAPI document describes every body and reply, and what it says
matches the codec: its examples are accepted, real replies validate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cronfleet.codec import jsonapi
from cronfleet.models import Job
from cronfleet.records import Alert, Delivery, Execution, StepResult
from cronfleet.v1 import jobs_pb2
from gateway.http import build_http_app, schemas
from gateway.http.openapi import BODY_EXAMPLES

# Operations that take no body (the rest that may change something do).
NO_BODY = {
    "/api/v1/auth/logout",
    "/api/v1/me/webhook-secret",
    "/api/v1/jobs/{job_id}/run",
    "/api/v1/jobs/{job_id}/pause",
    "/api/v1/jobs/{job_id}/resume",
    "/api/v1/executions/{execution_id}/cancel",
    "/api/v1/dead-letters/{dead_letter_id}/replay",
}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    async def cluster() -> jobs_pb2.Cluster:
        return jobs_pb2.Cluster()

    async def ready() -> bool:
        return True

    return build_http_app(None, cluster, ready).openapi()  # type: ignore[arg-type]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_every_body_and_reply_is_described(document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) >= 32
    for path, method, op in found:
        writes = method in ("post", "put", "patch")
        if writes and path not in NO_BODY:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert "$ref" in schema or "oneOf" in schema, (method, path)
        else:
            assert "requestBody" not in op, (method, path)
        ok = next(code for code in op["responses"] if code.startswith("2"))
        if ok != "204":
            content = op["responses"][ok]["content"]
            assert any(c.get("schema") for c in content.values()), (method, path)
        assert op["responses"]["default"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorReply"
        }
        public = path.startswith("/api/v1/auth/") and path != "/api/v1/auth/logout"
        assert ("security" in op) == (path.startswith("/api/v1/") and not public), (method, path)
    refs = {s.removeprefix("#/components/schemas/") for s in _refs(document)}
    assert refs <= set(document["components"]["schemas"]), "every $ref resolves"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_examples_are_accepted_by_the_codec() -> None:
    for example in BODY_EXAMPLES["JobBody"].values():
        jsonapi.spec_from_json(example["value"]).validate()
        schemas.JobBody.model_validate(example["value"])
    for example in BODY_EXAMPLES["JobFields"].values():
        jsonapi.changes_from_json(example["value"])
        schemas.JobFields.model_validate(example["value"])
    for name, examples in BODY_EXAMPLES.items():
        model = getattr(schemas, name)
        for example in examples.values():
            model.model_validate(example["value"])


def test_replies_validate_against_their_schemas() -> None:
    """Every field a job, an execution, an alert may carry, as the codec writes them."""
    spec = jsonapi.spec_from_json(
        {
            "name": "all",
            "http": {
                "url": "https://e.com/x",
                "method": "POST",
                "headers": {"X-A": "b"},
                "body": "{}",
                "timeout_seconds": 5,
                "expect_status": [200],
            },
            "schedule": "*/5 * * * * *",
            "timezone": "Europe/Paris",
            "start_at": "2026-01-01T00:00:00Z",
            "end_at": "2027-01-01T00:00:00Z",
            "image": "busybox",
            "container": "per_job",
            "env": {"A": "b"},
            "max_retries": 3,
            "timeout_seconds": 60,
            "priority": 7,
            "concurrency_policy": "allow",
            "max_concurrency": 2,
            "run_once": True,
            "resources": {"cpus": 0.5, "memory_mb": 64, "pids": 10},
            "retry": {"backoff_seconds": 1, "on": ["failed"], "never_exit_codes": [2], "jitter": 0.5},
            "misfire_policy": "skip",
            "delivery": "at_most_once",
            "after": [{"job_id": str(uuid.uuid4()), "on": "always"}],
            "notify": [{"webhook": "https://e.com/hook", "on": ["dead"], "format": "json"}],
        }
    )
    job = Job(uuid.uuid4(), uuid.uuid4(), spec, "paused", 3, 2, NOW, NOW, NOW, NOW, ("a warning",))
    schemas.JobReply.model_validate(jsonapi.job_to_json(job))
    least = jsonapi.spec_from_json({"name": "min", "steps": [{"run": "true"}]})
    schemas.JobReply.model_validate(
        jsonapi.job_to_json(Job(uuid.uuid4(), uuid.uuid4(), least, "active", 1, 1, NOW, NOW))
    )
    execution = Execution(
        id=7,
        job_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        shard_id=1,
        attempt=2,
        status="failed",
        trigger="retry",
        scheduled_at=NOW,
        run_at=NOW,
        started_at=NOW,
        finished_at=NOW,
        exit_code=0,
        worker_id="w",
        log_url="http://x",
        error="e",
        lateness_ms=1.5,
        steps=(StepResult("s", 1, 2.0),),
        cold_start=True,
        upstream_execution_id=3,
        checkpoint=b"x",
        checkpoint_truncated=True,
        container_id="c",
    )
    schemas.ExecutionReply.model_validate(jsonapi.execution_to_json(execution))
    alert = Alert(
        1,
        uuid.uuid4(),
        7,
        "dead",
        NOW,
        {"kind": "dead"},
        (Delivery("https://e.com", "json", "pending", 1, NOW),),
    )
    schemas.AlertReply.model_validate(jsonapi.alert_to_json(alert))
    with pytest.raises(ValueError):  # the reply schemas are closed: a new field must be described
        schemas.JobReply.model_validate(jsonapi.job_to_json(job) | {"surprise": 1})
