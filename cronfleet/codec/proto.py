"""Records to the protobuf messages of ``cronfleet.v1`` and back.

A record and its message share field names. Unset is the message's own
notion: ``HasField`` for messages and ``optional`` scalars, the zero value
for the rest.

A job's secret env values travel as ``env`` plus the names in
``secret_env``: "***" in replies, and in the clear only where
:func:`spec_to_proto` is told to reveal them (a client's request, and a
run the scheduler hands a worker over mutual TLS).

How any record's fields map to a message's (times, the generic encode and
decode) is ``cronfleet.codec.proto_fields``; its names used outside the
codec stay importable from here.
"""

from __future__ import annotations

import dataclasses
import json
import typing
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from cronfleet.codec import jsonapi
from cronfleet.codec.proto_fields import (
    decode_field,
    decode_record,
    encode_into,
    encode_planned,
    plan_for,
    record_values,
    set_time,
    timestamp,
    timestamp_at,
    to_datetime,
    to_epoch,
)
from cronfleet.errors import InvalidArgument
from cronfleet.models import MASK, EnvValue, Job, JobSpec, Notify, RunBrief, Secret, name_steps
from cronfleet.records import PUBLIC_EXECUTION_FIELDS, Alert, DeadLetter, Execution, Stats, StepResult, User
from cronfleet.v1 import jobs_pb2 as pb

# id and job_id are strings on the wire; the rest share their record's names.
_EXECUTION_FIELDS = tuple(f for f in PUBLIC_EXECUTION_FIELDS if f not in ("id", "job_id"))

__all__ = [
    # from proto_fields: times, and the generic encode
    "set_time",
    "timestamp",
    "timestamp_at",
    "to_datetime",
    "to_epoch",
    "encode_into",
    "encode_planned",
    # each record's
    "spec_to_proto",
    "job_to_proto",
    "execution_to_proto",
    "dead_letter_to_proto",
    "user_to_proto",
    "alert_to_proto",
    "stats_to_proto",
    "notify_from_proto",
    "spec_from_proto",
    "job_from_proto",
    "execution_from_proto",
    "changes_from_proto",
    "step_results_from_proto",
    "cluster_to_json",
]


# ------------------------------------------------------------------ encode
_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(JobSpec) if f.name != "env")


def spec_to_proto(spec: JobSpec, reveal_secrets: bool = False) -> pb.JobSpec:
    """The message for ``spec``; secret env values are "***" unless
    ``reveal_secrets`` and the value is at hand (opened, or a client's own)."""
    msg = typing.cast(
        pb.JobSpec, encode_planned(pb.JobSpec(), spec, plan_for(JobSpec, pb.JobSpec, _SPEC_FIELDS))
    )
    for name, value in spec.env.items():
        if isinstance(value, Secret):
            msg.secret_env.append(name)
            msg.env[name] = value.value if reveal_secrets and value.value is not None else MASK
        else:
            msg.env[name] = value
    return msg


def job_to_proto(job: Job) -> pb.Job:
    msg = pb.Job(id=str(job.id), owner_id=str(job.owner_id), status=job.status, version=job.version)
    msg.spec.CopyFrom(spec_to_proto(job.spec))
    encode_into(
        msg,
        job,
        (
            "next_run_at",
            "paused_at",
            "created_at",
            "updated_at",
            "warnings",
            "schedule_description",
            "recent_runs",
        ),
    )
    return msg


def execution_to_proto(execution: Execution) -> pb.Execution:
    msg = pb.Execution(id=str(execution.id), job_id=str(execution.job_id))
    encode_into(msg, execution, _EXECUTION_FIELDS)
    return msg


def dead_letter_to_proto(dead: DeadLetter) -> pb.DeadLetter:
    msg = pb.DeadLetter(id=str(dead.id), job_id=str(dead.job_id), execution_id=str(dead.execution_id))
    return typing.cast(
        pb.DeadLetter, encode_into(msg, dead, ("reason", "attempts", "created_at", "job_name"))
    )


def user_to_proto(user: User) -> pb.User:
    msg = pb.User(id=str(user.id), name=user.name, email=user.email, created_at=timestamp(user.created_at))
    msg.notify.extend(typing.cast(pb.Notify, encode_into(pb.Notify(), n)) for n in user.notify)
    return msg


def alert_to_proto(alert: Alert) -> pb.Alert:
    msg = pb.Alert(
        id=str(alert.id),
        job_id=str(alert.job_id),
        execution_id=str(alert.execution_id),
        kind=alert.kind,
        created_at=timestamp(alert.created_at),
        summary=jsonapi.alert_summary(alert.payload),
        event_json=json.dumps(alert.payload, sort_keys=True),
    )
    for d in alert.deliveries:
        msg.deliveries.append(typing.cast(pb.Delivery, encode_into(pb.Delivery(), d)))
    return msg


def stats_to_proto(stats: Stats) -> pb.Stats:
    msg = pb.Stats(
        runs=stats.runs,
        succeeded=stats.succeeded,
        failed=stats.failed,
        last=list(stats.last),
        jobs=stats.jobs,
        duration_ms=_percentiles(stats.duration_ms),
        lateness_ms=_percentiles(stats.lateness_ms),
    )
    if stats.success_rate is not None:
        msg.success_rate = stats.success_rate
    if stats.success_rate_last_hour is not None:
        msg.success_rate_last_hour = stats.success_rate_last_hour
    for window, counts in stats.executions.items():
        msg.executions[window].counts.update(counts)
    msg.runs_per_minute.extend(
        pb.RunsInMinute(minute=timestamp(m.minute), runs=m.runs) for m in stats.runs_per_minute
    )
    return msg


def _percentiles(values: dict[str, float | None]) -> pb.Percentiles:
    return pb.Percentiles(**{k: v for k, v in values.items() if v is not None})


def notify_from_proto(targets: Iterable[pb.Notify]) -> tuple[Notify, ...]:
    return tuple(decode_record(Notify, t) for t in targets)


# ------------------------------------------------------------------ decode
def spec_from_proto(message: pb.JobSpec) -> JobSpec:
    # Built once (not built, then replaced: a JobSpec validates itself when made).
    values = record_values(JobSpec, message)
    if values.get("steps"):
        values["steps"] = name_steps(values["steps"])
    env = _env(message)
    if env:
        values["env"] = env
    else:
        values.pop("env", None)
    return JobSpec(**values)


def _env(message: pb.JobSpec) -> dict[str, EnvValue]:
    """``env``, with the values ``secret_env`` names as secrets ("***": the value stored)."""
    secret = set(message.secret_env)
    unknown = secret - set(message.env)
    if unknown:
        raise InvalidArgument("names no variable in env", field=f"secret_env.{sorted(unknown)[0]}")
    return {
        name: (Secret() if value == MASK else Secret(value=value)) if name in secret else value
        for name, value in message.env.items()
    }


def job_from_proto(message: pb.Job) -> Job:
    """A job as a client reads it. The shard stays on the server (0 here)."""
    return Job(
        id=uuid.UUID(message.id),
        owner_id=uuid.UUID(message.owner_id),
        spec=spec_from_proto(message.spec),
        status=message.status,
        shard_id=0,
        version=message.version,
        created_at=to_datetime(message.created_at),
        updated_at=to_datetime(message.updated_at),
        next_run_at=_time(message, "next_run_at"),
        paused_at=_time(message, "paused_at"),
        warnings=tuple(message.warnings),
        recent_runs=tuple(
            RunBrief(
                id=int(r.id),
                status=r.status,
                scheduled_at=to_datetime(r.scheduled_at),
                finished_at=_time(r, "finished_at"),
                exit_code=r.exit_code if r.HasField("exit_code") else None,
            )
            for r in message.recent_runs
        ),
    )


def execution_from_proto(message: pb.Execution) -> Execution:
    """An execution as a client reads it. Its owner and shard stay on the
    server (nil and 0 here); every public field is read back."""
    fields = {f.name: f for f in plan_for(Execution, type(message), _EXECUTION_FIELDS)}
    values = {name: decode_field(message, field) for name, field in fields.items()}
    return Execution(
        id=int(message.id),
        job_id=uuid.UUID(message.job_id),
        owner_id=uuid.UUID(int=0),
        shard_id=0,
        **{k: v for k, v in values.items() if v is not None},
    )


def _time(message: Message, name: str) -> datetime | None:
    return to_datetime(getattr(message, name)) if message.HasField(name) else None


def changes_from_proto(message: pb.JobSpec, update_mask: Iterable[str]) -> dict[str, Any]:
    """The fields an UpdateJob names, as {field: typed value}; an unset one is
    None, which resets it to its default."""
    fields = {f.name: f for f in plan_for(JobSpec, type(message))}
    changes: dict[str, Any] = {}
    for name in update_mask:
        if name not in fields:
            raise InvalidArgument("unknown field", field=f"update_mask.{name}")
        changes[name] = decode_field(message, fields[name])
    if changes.get("env"):
        changes["env"] = _env(message)
    if changes.get("steps"):
        changes["steps"] = name_steps(changes["steps"])
    return changes


def step_results_from_proto(steps: Iterable[pb.ExecutionStep]) -> tuple[StepResult, ...]:
    return tuple(StepResult(name=s.name, exit_code=s.exit_code, duration_ms=s.duration_ms) for s in steps)


def cluster_to_json(cluster: pb.Cluster) -> dict[str, Any]:
    """GET /cluster's body (the gateway adds ``health``); the SDK returns the same."""
    d = MessageToDict(cluster, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    return {
        "leader": d["leader"],
        "epoch": int(d.get("epoch", 0)),
        "coordinators": d["coordinators"],
        "schedulers": [
            {"id": s["id"], "shards": s["shards"], "address": s["address"]} for s in d["schedulers"]
        ],
        "workers": d["workers"],
        "metrics": d.get("metrics", {}),
    }
