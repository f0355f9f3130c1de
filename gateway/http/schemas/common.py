"""What every schema shares: the statuses and events as literals, the field
kinds (a time, a name, a script, a URL, a UUID), a strict request body, the
error reply, and the page size's description."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cronfleet import models
from gateway.service.base import MAX_PAGE

Status = Literal["active", "paused", "completed", "deleted"]
ExecutionStatus = Literal[
    "scheduled", "running", "succeeded", "failed", "timed_out", "cancelled", "lost", "skipped"
]
FailureClass = Literal["failed", "timed_out", "lost", "oom_killed"]
NotifyEvent = Literal["failed", "dead", "timed_out", "recovered", "missed"]


def time_field(required: bool = False) -> Any:
    """An RFC 3339 time (UTC in replies, with a Z)."""
    return Field(... if required else None, json_schema_extra={"format": "date-time"})


def name_field(required: bool = False) -> Any:
    return Field(... if required else None, min_length=1, max_length=models.MAX_NAME, pattern=r"\S")


def script_field(required: bool = False) -> Any:
    return Field(... if required else None, min_length=1, max_length=models.MAX_COMMAND_BYTES, pattern=r"\S")


def url_field() -> Any:
    return Field(max_length=models.MAX_URL, pattern=r"^https?://[A-Za-z0-9.-]+")


def uuid_field() -> Any:
    return Field(json_schema_extra={"format": "uuid"})


class Strict(BaseModel):
    """A request body: fields other than these are refused."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str = Field(
        description="invalid_argument, invalid_spec, unauthenticated, not_found, conflict, too_large, "
        "too_long, quota_exceeded, throttled, unavailable, internal"
    )
    message: str
    field: str | None = Field(None, description="the input that is wrong, or the limit or quota passed")
    retry_after_seconds: int | None = Field(None, description="on a 429: the Retry-After header's value")


class ErrorReply(BaseModel):
    error: ErrorDetail


LIMIT_DOC = f"page size, 1-{MAX_PAGE} (default 100; more is taken as {MAX_PAGE})"
