"""Records to Postgres rows (dicts from ``cronfleet.db``) and query parameters.

A job's spec is split between columns (what SQL reads: schedule, priority,
concurrency, retries...) and the ``spec`` JSONB column, which holds the rest
in API JSON. A new field that SQL does not read needs nothing here.

Secret env values are stored sealed, ``{"secret": true, "sealed": "v1..."}``
(cronfleet.sealing); a row is never written with a value unsealed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from psycopg.types.json import Jsonb

from cronfleet.codec import jsonapi
from cronfleet.db import Row
from cronfleet.models import EnvValue, Job, JobSpec, Notify, Secret
from cronfleet.records import Alert, DeadLetter, Delivery, Execution, StepResult, User
from cronfleet.schedule import Timing

# JobSpec fields kept in their own column of ``jobs`` (the claim's select,
# select_due_fires, names each of them too).
JOB_COLUMNS = (
    "name",
    "schedule",
    "timezone",
    "run_at",
    "start_at",
    "end_at",
    "max_retries",
    "timeout_seconds",
    "priority",
    "concurrency_policy",
    "max_concurrency",
)


def job_params(spec: JobSpec) -> dict[str, Any]:
    """The columns insert_job and update_job write for ``spec``."""
    payload = {k: v for k, v in jsonapi.spec_to_json(spec).items() if k not in JOB_COLUMNS}
    if spec.env:
        payload["env"] = env_param(spec.env)
    params = {name: getattr(spec, name) for name in JOB_COLUMNS}
    return params | {"name": spec.name.strip(), "spec": Jsonb(payload)}


def env_param(env: dict[str, EnvValue]) -> dict[str, Any]:
    """A spec's env as stored: secrets sealed. Refuses one that is not."""
    stored: dict[str, Any] = {}
    for name, value in env.items():
        if isinstance(value, Secret):
            if value.sealed is None:
                raise ValueError(f"env {name}: a secret must be sealed before it is stored")
            stored[name] = {"secret": True, "sealed": value.sealed}
        else:
            stored[name] = value
    return stored


def spec_from_row(row: Row) -> JobSpec:
    """The stored spec; its secrets stay sealed (``Secret(sealed=...)``)."""
    document = dict(row["spec"])
    env = document.pop("env", None) or {}
    spec = jsonapi.spec_from_json({**document, **{name: row[name] for name in JOB_COLUMNS}})
    if not env:
        return spec
    return dataclasses.replace(
        spec,
        env={name: Secret(sealed=v["sealed"]) if isinstance(v, dict) else str(v) for name, v in env.items()},
    )


def job_from_row(row: Row) -> Job:
    return Job(
        id=row["id"],
        owner_id=row["owner_id"],
        spec=spec_from_row(row),
        status=row["status"],
        shard_id=row["shard_id"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        next_run_at=row.get("next_run_at"),
        paused_at=row.get("paused_at"),
    )


def timing_from_row(row: Row) -> Timing:
    """When a job fires, read from its columns alone (the claim's hot path)."""
    return Timing(
        schedule=row["schedule"],
        timezone=row["timezone"],
        run_at=row["run_at"],
        start_at=row["start_at"],
        end_at=row["end_at"],
        anchor=row["created_at"],
    )


def execution_from_row(row: Row) -> Execution:
    return Execution(
        id=row["id"],
        job_id=row["job_id"],
        owner_id=row["owner_id"],
        shard_id=row["shard_id"],
        attempt=row["attempt"],
        status=row["status"],
        trigger=row["trigger"],
        scheduled_at=row["scheduled_at"],
        run_at=row["run_at"],
        priority=row["priority"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        exit_code=row["exit_code"],
        worker_id=row["worker_id"],
        log_url=row["log_url"],
        error=row["error"],
        lateness_ms=row["lateness_ms"],
        steps=tuple(StepResult(**s) for s in row.get("steps") or ()),
        cold_start=bool(row.get("cold_start")),
        upstream_execution_id=row.get("upstream_execution_id"),
        checkpoint=row.get("checkpoint"),
        checkpoint_truncated=bool(row.get("checkpoint_truncated")),
        container_id=row.get("container_id"),
        log_bytes=row.get("log_bytes"),
        log_removed_at=row.get("log_removed_at"),
    )


def step_results_param(steps: tuple[StepResult, ...]) -> Jsonb | None:
    """The ``executions.steps`` value: [{name, exit_code, duration_ms}], or NULL."""
    return Jsonb(jsonapi.encode(steps)) if steps else None


def sparse(values: list[Any], default: Any = None) -> list[Any] | None:
    """A batch statement's array parameter, or None (NULL) when every value
    is ``default``. The statements unnest several arrays side by side, which
    pads a NULL array with NULLs, and read NULL as that default: most of a
    batch's columns are (no error, no checkpoint, not cold), and psycopg
    dumps an array element by element in Python (a fifth of a scheduler's
    time on the no-op path went to dumping arrays). Values are compared with
    ``==``: only for a column of the default's type (``0 == False``)."""
    return None if values.count(default) == len(values) else values


def dead_letter_from_row(row: Row) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        job_id=row["job_id"],
        execution_id=row["execution_id"],
        reason=row["reason"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        job_name=row.get("job_name") or "",
    )


def user_from_row(row: Row) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        created_at=row["created_at"],
        notify=jsonapi.notify_from_json(row.get("default_notify") or []),
    )


def notify_param(notify: tuple[Notify, ...]) -> Jsonb:
    """The ``users.default_notify`` value: targets as API JSON."""
    return Jsonb(jsonapi.encode(notify))


def alert_from_row(row: Row) -> Alert:
    return Alert(
        id=row["id"],
        job_id=row["job_id"],
        execution_id=row["execution_id"],
        kind=row["kind"],
        created_at=row["created_at"],
        payload=row["payload"],
        deliveries=tuple(
            Delivery(
                target=d["target"],
                format=d["format"],
                status=d["status"],
                attempts=d["attempts"],
                next_attempt_at=jsonapi.parse_time(d["next_attempt_at"], "next_attempt_at")
                if d.get("next_attempt_at")
                else None,
                last_error=d.get("last_error"),
                last_status_code=d.get("last_status_code"),
                delivered_at=jsonapi.parse_time(d["delivered_at"], "delivered_at")
                if d.get("delivered_at")
                else None,
            )
            for d in row.get("deliveries") or ()
        ),
    )
