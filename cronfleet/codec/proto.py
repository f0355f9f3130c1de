"""Records to the protobuf messages of ``cronfleet.v1`` and back.

A record and its message share field names. Unset is the message's own
notion: ``HasField`` for messages and ``optional`` scalars, the zero value
for the rest.

A job's secret env values travel as ``env`` plus the names in
``secret_env``: "***" in replies, and in the clear only where
:func:`spec_to_proto` is told to reveal them (a client's request, and a
run the scheduler hands a worker over mutual TLS).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from cronfleet.codec import jsonapi
from cronfleet.errors import InvalidArgument
from cronfleet.models import MASK, EnvValue, Job, JobSpec, Notify, RunBrief, Secret, name_steps
from cronfleet.records import PUBLIC_EXECUTION_FIELDS, Alert, DeadLetter, Execution, Stats, StepResult, User
from cronfleet.v1 import jobs_pb2 as pb

_STRING = FieldDescriptor.TYPE_STRING
# id and job_id are strings on the wire; the rest share their record's names.
_EXECUTION_FIELDS = tuple(f for f in PUBLIC_EXECUTION_FIELDS if f not in ("id", "job_id"))


# -------------------------------------------------------------------- time
def timestamp(dt: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def timestamp_at(epoch_seconds: float) -> Timestamp:
    """A wall-clock reading (``time.time()``) as a Timestamp, to the nanosecond."""
    seconds = int(epoch_seconds)
    return Timestamp(seconds=seconds, nanos=int((epoch_seconds - seconds) * 1e9))


def to_datetime(ts: Timestamp) -> datetime:
    dt: datetime = ts.ToDatetime(tzinfo=UTC)
    return dt


def to_epoch(ts: Timestamp) -> float:
    return float(ts.seconds + ts.nanos / 1e9)


# ------------------------------------------------------------------ encode
def encode_into(message: Message, record: Any, names: Iterable[str] | None = None) -> Message:
    """Copy ``record``'s fields (or just ``names``) into ``message``; None stays unset."""
    for name in names if names is not None else (f.name for f in dataclasses.fields(record)):
        value = getattr(record, name)
        if value is None:
            continue
        if isinstance(value, datetime):
            getattr(message, name).CopyFrom(timestamp(value))
        elif isinstance(value, uuid.UUID) or _is_id(message, name, value):
            setattr(message, name, str(value))
        elif isinstance(value, tuple):
            target = getattr(message, name)
            for item in value:
                if dataclasses.is_dataclass(item):
                    encode_into(target.add(), item)
                else:
                    target.append(item)
        elif isinstance(value, dict):
            getattr(message, name).update(value)
        elif dataclasses.is_dataclass(value):
            if any(getattr(value, f.name) is not None for f in dataclasses.fields(value)):
                encode_into(getattr(message, name), value)
        else:
            setattr(message, name, value)
    return message


def encode_planned(message: Message, record: Any, plan: tuple[_Field, ...]) -> Message:
    """encode_into along a plan worked out once per type (``_plan``): the
    per-fire path (a job version prepared for its runs, once per version; a
    bench of distinct jobs prepares one per fire) skips the type tests."""
    for f in plan:
        value = getattr(record, f.name)
        if value is None:
            continue
        if f.kind == "scalar":
            setattr(message, f.name, str(value) if f.string and not isinstance(value, str) else value)
        elif f.kind == "time":
            getattr(message, f.name).CopyFrom(timestamp(value))
        elif f.kind == "scalars":
            getattr(message, f.name).extend(value)
        elif f.kind == "map":
            getattr(message, f.name).update(value)
        elif f.kind == "records":
            target = getattr(message, f.name)
            for item in value:
                encode_into(target.add(), item)
        elif any(getattr(value, g.name) is not None for g in dataclasses.fields(value)):
            encode_into(getattr(message, f.name), value)
    return message


def _is_id(message: Message, name: str, value: Any) -> bool:
    """A serial id (an execution's) bound for a string field: ids are strings on the wire."""
    return isinstance(value, int) and message.DESCRIPTOR.fields_by_name[name].type == _STRING


_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(JobSpec) if f.name != "env")


def spec_to_proto(spec: JobSpec, reveal_secrets: bool = False) -> pb.JobSpec:
    """The message for ``spec``; secret env values are "***" unless
    ``reveal_secrets`` and the value is at hand (opened, or a client's own)."""
    msg = typing.cast(
        pb.JobSpec, encode_planned(pb.JobSpec(), spec, _plan(JobSpec, pb.JobSpec, _SPEC_FIELDS))
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
    return tuple(_decode_record(Notify, t) for t in targets)


# ------------------------------------------------------------------ decode
def spec_from_proto(message: pb.JobSpec) -> JobSpec:
    # Built once (not built, then replaced: a JobSpec validates itself when made).
    values = _record_values(JobSpec, message)
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
    fields = {f.name: f for f in _plan(Execution, type(message), _EXECUTION_FIELDS)}
    values = {name: _decode_field(message, field) for name, field in fields.items()}
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
    fields = {f.name: f for f in _plan(JobSpec, type(message))}
    changes: dict[str, Any] = {}
    for name in update_mask:
        if name not in fields:
            raise InvalidArgument("unknown field", field=f"update_mask.{name}")
        changes[name] = _decode_field(message, fields[name])
    if changes.get("env"):
        changes["env"] = _env(message)
    if changes.get("steps"):
        changes["steps"] = name_steps(changes["steps"])
    return changes


def step_results_from_proto(steps: Iterable[pb.ExecutionStep]) -> tuple[StepResult, ...]:
    return tuple(StepResult(name=s.name, exit_code=s.exit_code, duration_ms=s.duration_ms) for s in steps)


_HINTS: dict[Any, dict[str, Any]] = {}
_PLANS: dict[tuple[Any, Any, tuple[str, ...] | None], tuple[_Field, ...]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


@dataclasses.dataclass(frozen=True)
class _Field:
    """How to read one record field from its message field (worked out once per type)."""

    name: str
    kind: str  # "time" | "records" | "scalars" | "map" | "record" | "scalar"
    record: type | None  # the nested record type, for "records" and "record"
    has_presence: bool
    required: bool
    string: bool = False  # a string on the wire (ids and uuids are sent as strings)


def _plan(cls: Any, message_type: Any, names: tuple[str, ...] | None = None) -> tuple[_Field, ...]:
    """Worked out once per (record type, message type, fields): all of the
    record's fields, or just ``names``."""
    if (cls, message_type, names) not in _PLANS:
        _PLANS[cls, message_type, names] = _make_plan(cls, message_type, names)
    return _PLANS[cls, message_type, names]


def _make_plan(cls: Any, message_type: Any, names: tuple[str, ...] | None) -> tuple[_Field, ...]:
    hints = _hints(cls)
    plan = []
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        hint = hints[f.name]
        if typing.get_origin(hint) in (types.UnionType, typing.Union):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
        if hint is datetime:
            kind, record = "time", None
        elif origin is tuple:
            item = typing.get_args(hint)[0]
            kind, record = (
                ("records", typing.cast(type, item)) if dataclasses.is_dataclass(item) else ("scalars", None)
            )
        elif origin is dict:
            kind, record = "map", None
        elif dataclasses.is_dataclass(hint):
            kind, record = "record", typing.cast(type, hint)
        else:
            kind, record = "scalar", None
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        wire = message_type.DESCRIPTOR.fields_by_name[f.name]
        plan.append(_Field(f.name, kind, record, wire.has_presence, required, wire.type == _STRING))
    return tuple(plan)


def _decode_record(cls: type[Any], message: Message) -> Any:
    return cls(**_record_values(cls, message))


def _record_values(cls: type[Any], message: Message) -> dict[str, Any]:
    values = {}
    for field in _plan(cls, type(message)):
        value = _decode_field(message, field)
        if value is None and field.required:
            value = getattr(message, field.name)  # its zero value, for validation to name
        if value is not None:
            values[field.name] = value
    return values


def _decode_field(message: Message, field: _Field) -> Any:
    """The field's value as the record's type, or None when the message leaves it unset."""
    if field.has_presence and not message.HasField(field.name):
        return None
    value = getattr(message, field.name)
    if field.kind == "time":
        return to_datetime(value)
    if field.kind == "records":
        assert field.record is not None
        return tuple(_decode_record(field.record, item) for item in value) or None
    if field.kind == "scalars":
        return tuple(value) or None
    if field.kind == "map":
        return dict(value) or None
    if field.kind == "record":
        return _decode_record(typing.cast(type, field.record), value)
    if not field.has_presence and not value:
        return None  # proto3 zero: unset
    return value


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
