"""Rows to what users see: API.md's JSON, and the matching protobuf messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from cronfleet.db import Row
from cronfleet.logstore import LogStore
from cronfleet.models import JobSpec
from cronfleet.v1 import jobs_pb2


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def job_json(row: Row) -> dict[str, Any]:
    spec = JobSpec.from_row(row)
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "owner_id": str(row["owner_id"]),
        "name": spec.name,
        "command": spec.command,
        "steps": [{"name": s.name, "run": s.run} for s in spec.steps] or None,
        "schedule": spec.schedule,
        "run_at": iso(spec.run_at),
        "timezone": spec.timezone,
        "start_at": iso(spec.start_at),
        "end_at": iso(spec.end_at),
        "image": spec.image,
        "env": spec.env,
        "max_retries": spec.max_retries,
        "timeout_seconds": spec.timeout_seconds,
        "priority": spec.priority,
        "concurrency_policy": spec.concurrency_policy,
        "max_concurrency": spec.max_concurrency,
        "resources": {k: v for k, v in vars(spec.resources).items() if v} or None,
        "status": row["status"],
        "next_run_at": iso(row.get("next_run_at")),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "version": row["version"],
    }
    return {k: v for k, v in out.items() if v is not None}


async def execution_json(row: Row, logs: LogStore) -> dict[str, Any]:
    link = ""
    if row["log_url"]:
        key = logs.key_for(row["owner_id"], row["job_id"], row["id"], row["attempt"])
        link = await logs.link(key, row["id"])
    out = {
        "id": str(row["id"]),
        "job_id": str(row["job_id"]),
        "attempt": row["attempt"],
        "status": row["status"],
        "trigger": row["trigger"],
        "scheduled_at": iso(row["scheduled_at"]),
        "run_at": iso(row["run_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "exit_code": row["exit_code"],
        "worker_id": row["worker_id"],
        "log_url": link or None,
        "error": row["error"],
        "lateness_ms": row["lateness_ms"],
        "steps": row.get("steps"),
        "cold_start": row.get("cold_start") or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def user_json(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "email": row["email"],
        "created_at": iso(row["created_at"]),
    }


# ------------------------------------------------------------------ protobuf
def timestamp(value: str | datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    ts.FromDatetime(dt)
    return ts


def job_proto(row: Row) -> jobs_pb2.Job:
    j = job_json(row)
    spec = jobs_pb2.JobSpec(
        name=j["name"],
        command=j.get("command", ""),
        steps=[jobs_pb2.Step(**s) for s in j.get("steps", [])],
        schedule=j.get("schedule", ""),
        timezone=j["timezone"],
        image=j.get("image", ""),
        env=j.get("env", {}),
        max_retries=j["max_retries"],
        timeout_seconds=j["timeout_seconds"],
        priority=j["priority"],
        concurrency_policy=j["concurrency_policy"],
        run_at=timestamp(j.get("run_at")),
        start_at=timestamp(j.get("start_at")),
        end_at=timestamp(j.get("end_at")),
    )
    if "max_concurrency" in j:
        spec.max_concurrency = j["max_concurrency"]
    if "resources" in j:
        spec.resources.CopyFrom(jobs_pb2.Resources(**j["resources"]))
    return jobs_pb2.Job(
        id=j["id"],
        owner_id=j["owner_id"],
        spec=spec,
        status=j["status"],
        next_run_at=timestamp(j.get("next_run_at")),
        created_at=timestamp(j["created_at"]),
        updated_at=timestamp(j["updated_at"]),
        version=j["version"],
    )


def execution_proto(e: dict[str, Any]) -> jobs_pb2.Execution:
    msg = jobs_pb2.Execution(
        id=e["id"],
        job_id=e["job_id"],
        attempt=e["attempt"],
        status=e["status"],
        scheduled_at=timestamp(e.get("scheduled_at")),
        started_at=timestamp(e.get("started_at")),
        finished_at=timestamp(e.get("finished_at")),
        worker_id=e.get("worker_id", ""),
        log_url=e.get("log_url", ""),
        error=e.get("error", ""),
    )
    if "exit_code" in e:
        msg.exit_code = e["exit_code"]
    if "lateness_ms" in e:
        msg.lateness_ms = e["lateness_ms"]
    msg.steps.extend(jobs_pb2.ExecutionStep(**st) for st in e.get("steps") or [])
    msg.cold_start = bool(e.get("cold_start"))
    return msg


def user_proto(row: Row) -> jobs_pb2.User:
    return jobs_pb2.User(
        id=str(row["id"]), name=row["name"], email=row["email"], created_at=timestamp(row["created_at"])
    )


def spec_from_proto(p: jobs_pb2.JobSpec, only: list[str] | None = None) -> dict[str, Any]:
    """A JobSpec message as the JSON-shaped dict JobSpec.from_mapping takes.

    ``only`` (an update mask) keeps just those fields; unset fields are left
    out so the server's defaults apply.
    """
    out: dict[str, Any] = {}
    for name in ("name", "command", "schedule", "timezone", "image", "concurrency_policy"):
        if getattr(p, name):
            out[name] = getattr(p, name)
    if p.steps:
        out["steps"] = [{"name": s.name, "run": s.run} for s in p.steps]
    for name in ("run_at", "start_at", "end_at"):
        if p.HasField(name):
            out[name] = getattr(p, name).ToDatetime(tzinfo=UTC)
    if p.env:
        out["env"] = dict(p.env)
    for name in ("max_retries", "timeout_seconds", "priority", "max_concurrency"):
        if p.HasField(name):
            out[name] = getattr(p, name)
    if p.HasField("resources"):
        r = p.resources
        out["resources"] = {
            k: v for k, v in {"cpus": r.cpus, "memory_mb": r.memory_mb, "pids": r.pids}.items() if v
        }
    if only is not None:
        unknown = [f for f in only if f not in {f.name for f in jobs_pb2.JobSpec.DESCRIPTOR.fields}]
        if unknown:
            from cronfleet.errors import InvalidArgument

            raise InvalidArgument("unknown field", field=f"update_mask.{unknown[0]}")
        out = {k: out.get(k) for k in only}
    return out
