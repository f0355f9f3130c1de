"""What runs leave: executions (and their steps), dead letters, alerts and
their deliveries."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.http.schemas.common import ExecutionStatus, NotifyEvent, time_field, uuid_field


class StepResultReply(BaseModel):
    name: str
    exit_code: int
    duration_ms: float


class ExecutionReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    job_id: str = uuid_field()
    attempt: int
    status: ExecutionStatus
    trigger: str
    scheduled_at: str = time_field(required=True)
    run_at: str = time_field(required=True)
    started_at: str | None = time_field()
    finished_at: str | None = time_field()
    exit_code: int | None = None
    worker_id: str | None = None
    log_url: str | None = None
    error: str | None = None
    lateness_ms: float | None = None
    steps: list[StepResultReply] | None = None
    cold_start: bool | None = None
    upstream_execution_id: int | None = None
    checkpoint: str | None = Field(None, description="base64")
    checkpoint_truncated: bool | None = None
    container_id: str | None = None
    log_bytes: int | None = Field(None, description="the stored log's size")
    log_removed_at: str | None = time_field()


class ExecutionsReply(BaseModel):
    executions: list[ExecutionReply]


class ExecutionPage(ExecutionsReply):
    next_page_token: str


class DeadLetterReply(BaseModel):
    id: str
    job_id: str
    execution_id: str
    reason: str
    attempts: int
    created_at: str = time_field(required=True)
    job_name: str | None = None


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetterReply]
    next_page_token: str


class DeliveryReply(BaseModel):
    target: str
    format: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str | None = time_field()
    last_error: str | None = None
    last_status_code: int | None = None
    delivered_at: str | None = time_field()


class AlertReply(BaseModel):
    id: str
    job_id: str
    execution_id: str
    kind: NotifyEvent
    created_at: str = time_field(required=True)
    summary: str
    event: dict[str, Any]
    deliveries: list[DeliveryReply]


class AlertPage(BaseModel):
    alerts: list[AlertReply]
    next_page_token: str
