"""How a record's fields travel in a protobuf message, whatever the record:
times as Timestamps, the generic encode (field by field, or along a plan
worked out once per type) and the generic decode (each field read back as
the record's type, unset as None). ``cronfleet.codec.proto`` uses these for
each record.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

_STRING = FieldDescriptor.TYPE_STRING


# -------------------------------------------------------------------- time
# protobuf's FromDatetime and ToDatetime go through time tuples (3-4% of a
# busy scheduler, two per run handed over); this is the same, in integers.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(dt: datetime) -> Timestamp:
    """``dt`` as a Timestamp; a naive one is taken as UTC (as FromDatetime does)."""
    delta = (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


def timestamp_at(epoch_seconds: float) -> Timestamp:
    """A wall-clock reading (``time.time()``) as a Timestamp, to the nanosecond."""
    ts = Timestamp()
    set_time(ts, epoch_seconds)
    return ts


def set_time(target: Timestamp, epoch_seconds: float) -> None:
    """Set a Timestamp (a message's own field: no Timestamp built apart and
    copied in, 1 us a run event) to a wall-clock reading, to the nanosecond."""
    seconds = int(epoch_seconds)
    target.seconds = seconds
    target.nanos = int((epoch_seconds - seconds) * 1e9)


def to_datetime(ts: Timestamp) -> datetime:
    """Aware (UTC), to the microsecond (nanoseconds cut, as ToDatetime does)."""
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


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


def encode_planned(message: Message, record: Any, plan: tuple[FieldPlan, ...]) -> Message:
    """encode_into along a plan worked out once per type (``plan_for``): the
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


# ------------------------------------------------------------------ decode
_HINTS: dict[Any, dict[str, Any]] = {}
_PLANS: dict[tuple[Any, Any, tuple[str, ...] | None], tuple[FieldPlan, ...]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


@dataclasses.dataclass(frozen=True)
class FieldPlan:
    """How to read one record field from its message field (worked out once per type)."""

    name: str
    kind: str  # "time" | "records" | "scalars" | "map" | "record" | "scalar"
    record: type | None  # the nested record type, for "records" and "record"
    has_presence: bool
    required: bool
    string: bool = False  # a string on the wire (ids and uuids are sent as strings)


def plan_for(cls: Any, message_type: Any, names: tuple[str, ...] | None = None) -> tuple[FieldPlan, ...]:
    """Worked out once per (record type, message type, fields): all of the
    record's fields, or just ``names``."""
    if (cls, message_type, names) not in _PLANS:
        _PLANS[cls, message_type, names] = _make_plan(cls, message_type, names)
    return _PLANS[cls, message_type, names]


def _make_plan(cls: Any, message_type: Any, names: tuple[str, ...] | None) -> tuple[FieldPlan, ...]:
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
        plan.append(FieldPlan(f.name, kind, record, wire.has_presence, required, wire.type == _STRING))
    return tuple(plan)


def decode_record(cls: type[Any], message: Message) -> Any:
    return cls(**record_values(cls, message))


def record_values(cls: type[Any], message: Message) -> dict[str, Any]:
    values = {}
    for field in plan_for(cls, type(message)):
        value = decode_field(message, field)
        if value is None and field.required:
            value = getattr(message, field.name)  # its zero value, for validation to name
        if value is not None:
            values[field.name] = value
    return values


def decode_field(message: Message, field: FieldPlan) -> Any:
    """The field's value as the record's type, or None when the message leaves it unset."""
    if field.has_presence and not message.HasField(field.name):
        return None
    value = getattr(message, field.name)
    if field.kind == "time":
        return to_datetime(value)
    if field.kind == "records":
        assert field.record is not None
        return tuple(decode_record(field.record, item) for item in value) or None
    if field.kind == "scalars":
        return tuple(value) or None
    if field.kind == "map":
        return dict(value) or None
    if field.kind == "record":
        return decode_record(typing.cast(type, field.record), value)
    if not field.has_presence and not value:
        return None  # proto3 zero: unset
    return value
