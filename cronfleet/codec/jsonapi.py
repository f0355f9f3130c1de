"""Records to API.md's JSON and back.

Decoding follows the record's type hints and names the field that is wrong
(``steps[1].run``, ``resources.gpus``); encoding leaves out what is unset.
The ``jobs.spec`` column stores this same JSON, but for secret env values
(``codec.rows``). A secret env value is always encoded ``{"value": "***",
"secret": true}``, whatever it holds.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import types
import typing
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cronfleet.errors import InvalidArgument
from cronfleet.models import MASK, Job, JobSpec, Notify, RunBrief, Secret, name_steps, storable
from cronfleet.records import PUBLIC_EXECUTION_FIELDS, Alert, DeadLetter, Execution, Stats, User


# ------------------------------------------------------------------ encode
def iso(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, as every time in the API."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def encode(value: Any) -> Any:
    """Any record or value as JSON data; unset (None, empty, False) record fields are left out."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Secret):
        return {"value": MASK, "secret": True}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_fields(value, [f.name for f in dataclasses.fields(value)])
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def _encode_fields(record: Any, names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(record, name)
        if value is None or value is False or value == ():
            continue
        encoded = encode(value)
        if encoded == {} and not isinstance(value, dict):
            continue  # an empty nested record (resources with nothing set)
        out[name] = encoded
    return out


def spec_to_json(spec: JobSpec, reveal_secrets: bool = False) -> dict[str, Any]:
    """A job's spec as API JSON. Secret env values are "***" unless
    ``reveal_secrets`` and the value is at hand (a client writing a job)."""
    out = dict(encode(spec))
    if reveal_secrets and spec.env:
        out["env"] = {
            name: {"value": v.value, "secret": True}
            if isinstance(v, Secret) and v.value is not None
            else encode(v)
            for name, v in spec.env.items()
        }
    return out


def job_to_json(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "owner_id": str(job.owner_id),
        **spec_to_json(job.spec),
        **_encode_fields(
            job,
            (
                "status",
                "next_run_at",
                "paused_at",
                "created_at",
                "updated_at",
                "version",
                "warnings",
                "schedule_description",
            ),
        ),
        **({"recent_runs": [run_brief_to_json(r) for r in job.recent_runs]} if job.recent_runs else {}),
    }


def run_brief_to_json(run: RunBrief) -> dict[str, Any]:
    return {**encode(run), "id": str(run.id)}  # ids are strings, as an execution's


def execution_to_json(execution: Execution) -> dict[str, Any]:
    out = _encode_fields(execution, PUBLIC_EXECUTION_FIELDS)
    out["id"] = str(execution.id)
    return out


def dead_letter_to_json(dead: DeadLetter) -> dict[str, Any]:
    out = dict(encode(dead))
    out["id"], out["execution_id"] = str(dead.id), str(dead.execution_id)
    return out


def stats_to_json(stats: Stats) -> dict[str, Any]:
    """Every key, also when empty (API.md's job stats have a fixed shape)."""
    return {f.name: encode(getattr(stats, f.name)) for f in dataclasses.fields(stats)}


def user_to_json(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "name": user.name,
        "email": user.email,
        "created_at": iso(user.created_at),
        "notify": encode(user.notify),
    }


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """API.md's alert: {id, job_id, execution_id, kind, created_at, deliveries},
    plus ``summary`` (one line for people) and ``event`` (the body sent)."""
    return {
        "id": str(alert.id),
        "job_id": str(alert.job_id),
        "execution_id": str(alert.execution_id),
        "kind": alert.kind,
        "created_at": iso(alert.created_at),
        "summary": alert_summary(alert.payload),
        "event": alert.payload,
        "deliveries": encode(alert.deliveries),
    }


_ALERT_WORDS = {
    "failed": "failed",
    "timed_out": "timed out",
    "dead": "failed for good (dead letter)",
    "recovered": "recovered",
    "missed": "missed a fire",
}


def alert_summary(payload: Mapping[str, Any]) -> str:
    """One line about an alert's event, for people (Slack, the dashboard)."""
    kind = str(payload.get("kind", ""))
    text = f"Job {payload.get('job_name', payload.get('job_id'))} {_ALERT_WORDS.get(kind, kind)}"
    facts = [f"attempt {payload['attempt']}"] if payload.get("attempt") else []
    if payload.get("exit_code") is not None and kind != "recovered":
        facts.append(f"exit code {payload['exit_code']}")
    if payload.get("error") and kind not in ("recovered",):
        facts.append(str(payload["error"]))
    if payload.get("detail"):
        facts.append(str(payload["detail"]))
    if payload.get("scheduled_at"):
        facts.append(f"due {payload['scheduled_at']}")
    return text + (f" ({'; '.join(facts)})" if facts else "")


# ------------------------------------------------------------------ decode
# The most entries any list or object of a job may have as decoded (the spec's
# own bounds, smaller, are checked by JobSpec.validate): a YAML body's aliases
# could otherwise make a small document decode for a long time.
MAX_ENTRIES = 1000


def spec_from_json(data: Any) -> JobSpec:
    """A job from user JSON/YAML, naming unknown or mistyped fields."""
    if not isinstance(data, dict):
        raise InvalidArgument("a job must be an object")
    spec: JobSpec = _decode_record(JobSpec, data, "")
    named = name_steps(spec.steps)
    return spec if named == spec.steps else dataclasses.replace(spec, steps=named)


def notify_from_json(data: Any, where: str = "notify") -> tuple[Notify, ...]:
    """Notify targets (a job's, or a user's default) from JSON, typed."""
    targets: tuple[Notify, ...] = _decode(tuple[Notify, ...], data, where)
    return targets


def changes_from_json(data: Any) -> dict[str, Any]:
    """A PATCH body as {field: typed value}; None resets the field to its default."""
    if not isinstance(data, dict):
        raise InvalidArgument("body must be an object of fields to change")
    hints = _hints(JobSpec)
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in hints:
            raise InvalidArgument("unknown field", field=str(key))
        changes[key] = None if value is None else _decode(hints[key], value, key)
    if changes.get("steps"):
        changes["steps"] = name_steps(changes["steps"])
    return changes


def parse_time(value: Any, field_name: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidArgument("must be an RFC 3339 time", field=field_name) from exc
    else:
        raise InvalidArgument("must be an RFC 3339 time", field=field_name)
    if dt.tzinfo is None:
        raise InvalidArgument("must include a UTC offset (e.g. Z)", field=field_name)
    try:
        return dt.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00
        raise InvalidArgument("must be an RFC 3339 time", field=field_name) from exc


_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# What reflection tells of a type, asked once per type, not once per value:
# decoding stored specs (each claim of a job version, each worker's first run
# of it) spent most of its time in dataclasses.fields and typing.get_args.
_FIELDS: dict[Any, tuple[tuple[str, Any, bool], ...]] = {}
_SHAPES: dict[Any, tuple[Any, tuple[Any, ...]]] = {}


def _fields(cls: Any) -> tuple[tuple[str, Any, bool], ...]:
    """Each field's name, type and whether it is required."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = _hints(cls)
        found = _FIELDS[cls] = tuple(
            (
                f.name,
                hints[f.name],
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
        )
    return found


def _shape(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    found = _SHAPES.get(hint)
    if found is None:
        found = _SHAPES[hint] = (typing.get_origin(hint), typing.get_args(hint))
    return found


def _decode_record(cls: type[Any], data: Any, where: str) -> Any:
    hints = _hints(cls)
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"must be an object {{{', '.join(hints)}}}", field=where or None)
    for key in data:
        if key not in hints:
            raise InvalidArgument("unknown field", field=_join(where, str(key)))
    values: dict[str, Any] = {}
    for name, hint, required in _fields(cls):
        value = data.get(name)
        if value is None:
            if required:
                raise InvalidArgument("is required", field=_join(where, name))
            continue
        values[name] = _decode(hint, value, _join(where, name))
    return cls(**values)


def _decode(hint: Any, value: Any, where: str) -> Any:
    """``value`` as the type ``hint`` names, or InvalidArgument naming ``where``."""
    origin, args = _shape(hint)
    if origin in (types.UnionType, typing.Union):  # X | None
        return None if value is None else _decode(next(a for a in args if a is not type(None)), value, where)
    if hint is datetime:
        return parse_time(value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InvalidArgument("must be a list", field=where)
        if len(value) > MAX_ENTRIES:
            raise InvalidArgument(f"must have at most {MAX_ENTRIES} entries", field=where)
        return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise InvalidArgument("must be an object of strings", field=where)
        if len(value) > MAX_ENTRIES:
            raise InvalidArgument(f"must have at most {MAX_ENTRIES} entries", field=where)
        secrets = Secret in _shape(args[1])[1]  # env: a value may be {value, secret}
        for k in value:
            _storable(str(k), where)
        return {str(k): _decode_value(v, f"{where}.{k}", secrets) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return _decode_record(hint, value, where)  # type: ignore[arg-type]
    return _decode_scalar(hint, value, where)


def _decode_value(value: Any, where: str, secrets: bool) -> str | Secret:
    """A map's value: a string (numbers become strings), or with ``secrets``
    also ``{"value": v, "secret": bool}``; a secret sent as "***" means the
    value stored (an update)."""
    if secrets and isinstance(value, Mapping):
        unknown = set(value) - {"value", "secret"}
        if unknown:
            raise InvalidArgument("unknown field", field=f"{where}.{sorted(unknown)[0]}")
        text = _decode_value(value.get("value"), f"{where}.value", secrets=False)
        secret = _decode_scalar(bool, value.get("secret", False), f"{where}.secret")
        if not secret:
            return text
        return Secret() if text == MASK else Secret(value=str(text))
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        what = 'a string or {"value": string, "secret": true}' if secrets else "a string"
        raise InvalidArgument(f"must be {what}", field=where)
    _storable(str(value), where)
    return str(value)


def _decode_scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise InvalidArgument("must be true or false", field=where)
        return value
    if isinstance(value, bool):  # JSON true is not a number
        raise InvalidArgument(f"must be {_WHAT.get(hint, 'a value')}", field=where)
    if hint is str and isinstance(value, str):
        return _storable(value, where)
    if hint is int and isinstance(value, int):
        return value
    if hint is float and isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidArgument("must be a finite number", field=where)
        return float(value)
    raise InvalidArgument(f"must be {_WHAT.get(hint, 'a value')}", field=where)


def _storable(text: str, where: str) -> str:
    if not storable(text):
        raise InvalidArgument("must be text without NUL characters or unpaired surrogates", field=where)
    return text


_WHAT = {str: "a string", int: "an integer", float: "a number"}
