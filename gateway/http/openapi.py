"""The OpenAPI document: every request body and reply described.

Routes read their bodies with the project's codec, so FastAPI cannot see
them; :func:`doc` gives a route's decorator what to say instead (the body's
schema, each reply's, the errors, the bearer token), and
:func:`install` adds the body schemas to the document's components.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.http import schemas

REF = "#/components/schemas/{model}"
# Bodies the document names; a route names one of these in doc(body=...).
BODY_MODELS: tuple[type[BaseModel], ...] = (
    schemas.SignupBody,
    schemas.LoginBody,
    schemas.ProfileBody,
    schemas.JobBody,
    schemas.JobsFile,
    schemas.JobFields,
    schemas.BackfillBody,
    schemas.PreviewBody,
)
ERRORS = {
    400: "the request is malformed (a field of the wrong type, an unknown field)",
    401: "no bearer token, or one that is invalid, expired or revoked",
    404: "no such thing of yours",
    409: "conflicts with the current state",
    410: "removed: a run log past its owner's log-bytes-kept quota",
    413: "the body is over 1 MiB",
    422: "invalid: a field out of its bounds, a spec that cannot run, a quota passed",
    429: "throttled, or a rate quota spent: try again after Retry-After seconds",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}

JOB_EXAMPLES: dict[str, dict[str, Any]] = {
    "every two seconds": {"value": {"name": "tick", "command": "date", "schedule": "*/2 * * * * *"}},
    "once, now": {"value": {"name": "hello", "command": "echo hello"}},
    "steps, nightly": {
        "value": {
            "name": "build",
            "schedule": "0 0 3 * * *",
            "timezone": "Europe/Paris",
            "steps": [{"name": "test", "run": "true"}, {"name": "report", "run": "echo done"}],
            "max_retries": 2,
            "retry": {"backoff_seconds": 5, "multiplier": 2},
            "concurrency_policy": "forbid",
            "env": {"MODE": "nightly"},
        }
    },
    "an HTTP call": {
        "value": {
            "name": "ping",
            "schedule": "@every 90s",
            "http": {"url": "https://example.com/health", "method": "GET", "expect_status": [200]},
        }
    },
}
BODY_EXAMPLES: dict[str, dict[str, Any]] = {
    "SignupBody": {
        "ann": {"value": {"name": "Ann", "email": "ann@example.com", "password": "correct-horse"}}
    },
    "LoginBody": {"ann": {"value": {"email": "ann@example.com", "password": "correct-horse"}}},
    "ProfileBody": {"rename": {"value": {"name": "Ann B."}}},
    "JobBody": JOB_EXAMPLES,
    "JobsFile": {
        "two": {
            "value": {
                "jobs": [JOB_EXAMPLES["once, now"]["value"], JOB_EXAMPLES["every two seconds"]["value"]]
            }
        }
    },
    "JobFields": {
        "priority": {"value": {"priority": 9}},
        "reschedule": {"value": {"schedule": "0 * * * * *"}},
    },
    "BackfillBody": {"an hour": {"value": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}}},
    "PreviewBody": {
        "noon in Tokyo": {"value": {"schedule": "0 0 12 * * ?", "timezone": "Asia/Tokyo", "count": 3}}
    },
}


def doc(
    status: int,
    reply: Any = None,
    *,
    body: type[BaseModel] | None = None,
    yaml_body: bool = False,
    auth: bool = True,
    text: bool = False,
    errors: tuple[int, ...] = (400, 401, 404, 422),
) -> dict[str, Any]:
    """Decorator arguments that describe a route: ``reply`` (a model, or a
    union of models) at ``status``, the JSON ``body`` (and YAML, for job
    files), the errors it may answer with, and whether it needs a token."""
    responses: dict[int | str, dict[str, Any]] = {}
    if text:
        responses[status] = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    elif reply is not None:
        responses[status] = {"model": reply}
    else:
        responses[status] = {"description": "done; no body"}
    codes = set(errors) | ({401} if auth else set()) | ({413} if body else set())
    for code in sorted(codes):
        responses[code] = {"model": schemas.ErrorReply, "description": ERRORS[code]}
        if code == 429:
            responses[code]["headers"] = RETRY_AFTER
    # Any other status (a 503 while the database is away, a 500) has the same body.
    responses["default"] = {"model": schemas.ErrorReply, "description": "an error"}
    extra: dict[str, Any] = {}
    if auth:
        extra["security"] = [{"bearer": []}]
    if body is not None:
        content: dict[str, Any] = {
            "application/json": {
                "schema": _body_schema(body),
                "examples": BODY_EXAMPLES.get(body.__name__, {}),
            }
        }
        if yaml_body:
            content["application/yaml"] = {"schema": {"$ref": REF.format(model="JobsFile")}}
        extra["requestBody"] = {"required": True, "content": content}
    return {"response_model": None, "responses": responses, "openapi_extra": extra}


def _body_schema(body: type[BaseModel]) -> dict[str, Any]:
    if body is schemas.JobBody:  # POST /jobs: one job, or several (``{jobs: [...]}``)
        return {"oneOf": [{"$ref": REF.format(model="JobBody")}, {"$ref": REF.format(model="JobsFile")}]}
    return {"$ref": REF.format(model=body.__name__)}


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the body schemas and the bearer scheme."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=(
                    "cronfleet's HTTP API (API.md). Errors: {error: {code, message, field?}}; "
                    "a 429 carries Retry-After."
                ),
                routes=app.routes,
            )
            components = document.setdefault("components", {})
            _, defs = models_json_schema([(m, "validation") for m in BODY_MODELS], ref_template=REF)
            found = components.setdefault("schemas", {})
            for name, schema in defs.get("$defs", {}).items():
                found.setdefault(name, schema)
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
