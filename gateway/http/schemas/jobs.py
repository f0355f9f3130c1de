"""Jobs: the fields a job may set (each part's bounds the server's), a job
to create or replace with, several at once, a stored job and pages of them;
a backfill's range; a schedule's preview."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cronfleet import models
from gateway.http.schemas.auth import NotifyTarget
from gateway.http.schemas.common import (
    ExecutionStatus,
    FailureClass,
    Status,
    Strict,
    name_field,
    script_field,
    time_field,
    url_field,
    uuid_field,
)


class StepSpec(Strict):
    name: str = Field("", max_length=models.MAX_NAME, description='"" or absent: step-N')
    run: str = script_field(required=True)


class HttpSpec(Strict):
    url: str = url_field()
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(
        {},
        max_length=models.MAX_HEADERS,
        json_schema_extra={"propertyNames": {"pattern": r"^[A-Za-z0-9-]+$"}},
    )
    body: str | None = Field(None, max_length=models.MAX_COMMAND_BYTES)
    timeout_seconds: int | None = Field(None, ge=1, le=models.MAX_TIMEOUT_SECONDS)
    expect_status: list[int] = Field([], max_length=models.MAX_LIST)


class ResourcesSpec(Strict):
    cpus: float | None = Field(None, gt=0, le=models.MAX_CPUS)
    memory_mb: int | None = Field(None, ge=4, le=models.MAX_MEMORY_MB)
    pids: int | None = Field(None, ge=1, le=models.MAX_PIDS)


class RetrySpec(Strict):
    backoff_seconds: float = Field(2.0, ge=0, le=models.MAX_BACKOFF_SECONDS)
    multiplier: float = Field(2.0, ge=1, le=models.MAX_MULTIPLIER)
    max_backoff_seconds: float = Field(3600.0, ge=0, le=models.MAX_BACKOFF_SECONDS)
    jitter: float = Field(0.0, ge=0, le=1)
    on: list[FailureClass] = Field(["failed", "timed_out", "lost", "oom_killed"], max_length=models.MAX_LIST)
    never_exit_codes: list[int] = Field([], max_length=models.MAX_EXIT_CODES)


class UpstreamSpec(Strict):
    job_id: str = uuid_field()
    on: Literal["success", "failure", "always"] = "success"


class JobFields(Strict):
    """Every field a job may set (API.md); each optional here, for PATCH."""

    name: str | None = name_field()
    command: str | None = script_field()
    steps: list[StepSpec] | None = Field(None, max_length=models.MAX_STEPS)
    http: HttpSpec | None = None
    schedule: str | None = Field(
        None, max_length=models.MAX_SCHEDULE, description="cron text (5, 6 or 7 fields, @daily, @every 90s)"
    )
    run_at: str | None = time_field()
    timezone: str | None = Field(None, max_length=models.MAX_TIMEZONE, description="an IANA zone name")
    start_at: str | None = time_field()
    end_at: str | None = time_field()
    image: str | None = Field(None, max_length=models.MAX_IMAGE)
    container: Literal["per_run", "per_job"] | None = None
    env: dict[str, str] | None = Field(
        None,
        max_length=models.MAX_ENV_VARS,
        json_schema_extra={"propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 256}},
    )
    max_retries: int | None = Field(None, ge=0, le=100)
    timeout_seconds: int | None = Field(None, ge=1, le=models.MAX_TIMEOUT_SECONDS)
    priority: int | None = Field(None, ge=0, le=9)
    concurrency_policy: Literal["allow", "forbid", "replace"] | None = None
    max_concurrency: int | None = Field(None, ge=1, le=models.MAX_CONCURRENCY)
    run_once: bool | None = None
    resources: ResourcesSpec | None = None
    retry: RetrySpec | None = None
    misfire_policy: Literal["run_once", "run_all", "skip"] | None = None
    delivery: Literal["at_least_once", "at_most_once"] | None = None
    after: list[UpstreamSpec] | None = Field(None, max_length=models.MAX_LIST)
    notify: list[NotifyTarget] | None = Field(None, max_length=models.MAX_NOTIFY_TARGETS)


class JobBody(JobFields):
    """A job to create or to replace with: ``name`` and one of ``command``,
    ``steps`` or ``http``."""

    name: str = name_field(required=True)


class JobsFile(Strict):
    """Several jobs at once, all or none (JSON, or ``Content-Type: application/yaml``)."""

    jobs: list[JobBody] = Field(min_length=1, max_length=100)


class RunBriefReply(BaseModel):
    id: str
    status: ExecutionStatus
    scheduled_at: str = time_field(required=True)
    finished_at: str | None = time_field()
    exit_code: int | None = None


class JobReply(JobFields):
    """A stored job: what was set (defaults included, unset fields left out)
    and what the server keeps."""

    model_config = ConfigDict(extra="forbid")

    id: str = uuid_field()
    owner_id: str = uuid_field()
    name: str
    status: Status
    version: int
    created_at: str = time_field(required=True)
    updated_at: str = time_field(required=True)
    next_run_at: str | None = time_field()
    paused_at: str | None = time_field()
    warnings: list[str] | None = None
    schedule_description: str | None = None
    recent_runs: list[RunBriefReply] | None = None
    # Replies echo what was stored, whatever the request bounds say.
    steps: list[StepSpec] | None = None
    after: list[UpstreamSpec] | None = None


class JobsReply(BaseModel):
    jobs: list[JobReply]


class JobPage(JobsReply):
    next_page_token: str = Field(description='"" on the last page')


class BackfillBody(Strict):
    from_: str = Field(alias="from", json_schema_extra={"format": "date-time"})
    to: str = time_field(required=True)


class PreviewBody(Strict):
    schedule: str = Field(max_length=models.MAX_SCHEDULE)
    timezone: str | None = Field(None, max_length=models.MAX_TIMEZONE)
    after: str | None = time_field()
    count: int | None = Field(None, ge=1, le=100)


class PreviewReply(BaseModel):
    next: list[str]
    next_local: list[str]
    description: str
    warnings: list[str]
