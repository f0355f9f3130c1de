"""Records to the protobuf messages of ``cronfleet.v1`` and back.

A record and its message share field names. Unset is the message's own
notion: ``HasField`` for messages and ``optional`` scalars, the zero value
for the rest.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from cronfleet.errors import InvalidArgument
from cronfleet.models import Execution, Job, JobSpec, StepResult, User, name_steps
from cronfleet.v1 import jobs_pb2 as pb

_EXECUTION_FIELDS = (
    "attempt",
    "status",
    "scheduled_at",
    "started_at",
    "finished_at",
    "exit_code",
    "worker_id",
    "log_url",
    "error",
    "lateness_ms",
    "cold_start",
    "steps",
)


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
    return ts.ToDatetime(tzinfo=UTC)


def to_epoch(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


# ------------------------------------------------------------------ encode
def encode_into(message: Message, record: Any, names: Iterable[str] | None = None) -> Message:
    """Copy ``record``'s fields (or just ``names``) into ``message``; None stays unset."""
    for name in names if names is not None else (f.name for f in dataclasses.fields(record)):
        value = getattr(record, name)
        if value is None:
            continue
        if isinstance(value, datetime):
            getattr(message, name).CopyFrom(timestamp(value))
        elif isinstance(value, tuple):
            target = getattr(message, name)
            for item in value:
                encode_into(target.add(), item)
        elif isinstance(value, dict):
            getattr(message, name).update(value)
        elif dataclasses.is_dataclass(value):
            if any(getattr(value, f.name) is not None for f in dataclasses.fields(value)):
                encode_into(getattr(message, name), value)
        else:
            setattr(message, name, value)
    return message


def spec_to_proto(spec: JobSpec) -> pb.JobSpec:
    return typing.cast(pb.JobSpec, encode_into(pb.JobSpec(), spec))


def job_to_proto(job: Job) -> pb.Job:
    msg = pb.Job(id=str(job.id), owner_id=str(job.owner_id), status=job.status, version=job.version)
    msg.spec.CopyFrom(spec_to_proto(job.spec))
    encode_into(msg, job, ("next_run_at", "created_at", "updated_at"))
    return msg


def execution_to_proto(execution: Execution) -> pb.Execution:
    msg = pb.Execution(id=str(execution.id), job_id=str(execution.job_id))
    encode_into(msg, execution, _EXECUTION_FIELDS)
    return msg


def user_to_proto(user: User) -> pb.User:
    return pb.User(id=str(user.id), name=user.name, email=user.email, created_at=timestamp(user.created_at))


# ------------------------------------------------------------------ decode
def spec_from_proto(message: pb.JobSpec) -> JobSpec:
    spec = _decode_record(JobSpec, message)
    return dataclasses.replace(spec, steps=name_steps(spec.steps))


def changes_from_proto(message: pb.JobSpec, update_mask: Iterable[str]) -> dict[str, Any]:
    """The fields an UpdateJob names, as {field: typed value}; an unset one is
    None, which resets it to its default."""
    hints = _hints(JobSpec)
    changes: dict[str, Any] = {}
    for name in update_mask:
        if name not in hints:
            raise InvalidArgument("unknown field", field=f"update_mask.{name}")
        changes[name] = _decode_field(message, name, hints[name])
    if changes.get("steps"):
        changes["steps"] = name_steps(changes["steps"])
    return changes


def step_results_from_proto(steps: Iterable[pb.ExecutionStep]) -> tuple[StepResult, ...]:
    return tuple(StepResult(name=s.name, exit_code=s.exit_code, duration_ms=s.duration_ms) for s in steps)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode_record(cls: type[Any], message: Message) -> Any:
    hints = _hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        value = _decode_field(message, f.name, hints[f.name])
        if value is None and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            value = getattr(message, f.name)  # required: its zero value, for validation to name
        if value is not None:
            values[f.name] = value
    return cls(**values)


def _decode_field(message: Message, name: str, hint: Any) -> Any:
    """The field's value as ``hint``'s type, or None when the message leaves it unset."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    descriptor = message.DESCRIPTOR.fields_by_name[name]
    if descriptor.has_presence and not message.HasField(name):
        return None
    value = getattr(message, name)
    if hint is datetime:
        return to_datetime(value)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple(_decode_record(typing.get_args(hint)[0], item) for item in value) or None
    if origin is dict:
        return dict(value) or None
    if dataclasses.is_dataclass(hint):
        return _decode_record(typing.cast(type, hint), value)
    if not descriptor.has_presence and not value:
        return None  # proto3 zero: unset
    return value
