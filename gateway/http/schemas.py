"""What the OpenAPI document says each body and reply is.

The routes read bodies through the project's own codec (``cronfleet.codec``:
its errors name the field, and a PATCH tells an absent field from a null),
so these pydantic models only describe; nothing is parsed or serialised
through them. ``tests/integration/test_openapi.py`` holds them to the codec
(the examples decode, real replies validate) and the schemathesis test to the
running gateway. Bounds here are the server's (``cronfleet.models``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cronfleet import models
from gateway.service import accounts
from gateway.service.base import MAX_PAGE

# --------------------------------------------------------------------- shared
Status = Literal["active", "paused", "completed", "deleted"]
ExecutionStatus = Literal[
    "scheduled", "running", "succeeded", "failed", "timed_out", "cancelled", "lost", "skipped"
]
FailureClass = Literal["failed", "timed_out", "lost", "oom_killed"]
NotifyEvent = Literal["failed", "dead", "timed_out", "recovered", "missed"]


def _time(required: bool = False) -> Any:
    """An RFC 3339 time (UTC in replies, with a Z)."""
    return Field(... if required else None, json_schema_extra={"format": "date-time"})


def _name(required: bool = False) -> Any:
    return Field(... if required else None, min_length=1, max_length=models.MAX_NAME, pattern=r"\S")


def _script(required: bool = False) -> Any:
    return Field(... if required else None, min_length=1, max_length=models.MAX_COMMAND_BYTES, pattern=r"\S")


def _url() -> Any:
    return Field(max_length=models.MAX_URL, pattern=r"^https?://[A-Za-z0-9.-]+")


def _uuid() -> Any:
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


# ------------------------------------------------------------------ accounts
_DEFAULT_EVENTS: tuple[NotifyEvent, ...] = ("failed", "dead", "timed_out", "recovered")


class NotifyTarget(Strict):
    webhook: str = _url()
    on: list[NotifyEvent] = Field(default_factory=lambda: list(_DEFAULT_EVENTS), min_length=1, max_length=50)
    format: Literal["json", "slack"] = "json"


class SignupBody(Strict):
    name: str = Field(min_length=1, max_length=accounts.MAX_NAME, pattern=r"\S")
    email: str = Field(max_length=accounts.MAX_EMAIL, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD)


class LoginBody(BaseModel):
    email: str = Field(max_length=accounts.MAX_EMAIL)
    password: str = Field(max_length=accounts.MAX_PASSWORD)


class ProfileBody(Strict):
    name: str | None = Field(None, min_length=1, max_length=accounts.MAX_NAME, pattern=r"\S")
    email: str | None = Field(None, max_length=accounts.MAX_EMAIL, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str | None = Field(None, min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD)
    notify: list[NotifyTarget] | None = Field(None, max_length=models.MAX_NOTIFY_TARGETS)


class NewUser(BaseModel):
    id: str
    name: str
    email: str
    notify: list[NotifyTarget] = []


class UserReply(NewUser):
    created_at: str = _time(required=True)


class LoginReply(BaseModel):
    token: str
    expires_at: str = _time(required=True)


class WebhookSecretReply(BaseModel):
    secret: str
    header: str


# ---------------------------------------------------------------------- jobs
class StepSpec(Strict):
    name: str = Field("", max_length=models.MAX_NAME, description='"" or absent: step-N')
    run: str = _script(required=True)


class HttpSpec(Strict):
    url: str = _url()
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
    job_id: str = _uuid()
    on: Literal["success", "failure", "always"] = "success"


class JobFields(Strict):
    """Every field a job may set (API.md); each optional here, for PATCH."""

    name: str | None = _name()
    command: str | None = _script()
    steps: list[StepSpec] | None = Field(None, max_length=models.MAX_STEPS)
    http: HttpSpec | None = None
    schedule: str | None = Field(
        None, max_length=models.MAX_SCHEDULE, description="cron text (5, 6 or 7 fields, @daily, @every 90s)"
    )
    run_at: str | None = _time()
    timezone: str | None = Field(None, max_length=models.MAX_TIMEZONE, description="an IANA zone name")
    start_at: str | None = _time()
    end_at: str | None = _time()
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

    name: str = _name(required=True)


class JobsFile(Strict):
    """Several jobs at once, all or none (JSON, or ``Content-Type: application/yaml``)."""

    jobs: list[JobBody] = Field(min_length=1, max_length=100)


class RunBriefReply(BaseModel):
    id: str
    status: ExecutionStatus
    scheduled_at: str = _time(required=True)
    finished_at: str | None = _time()
    exit_code: int | None = None


class JobReply(JobFields):
    """A stored job: what was set (defaults included, unset fields left out)
    and what the server keeps."""

    model_config = ConfigDict(extra="forbid")

    id: str = _uuid()
    owner_id: str = _uuid()
    name: str
    status: Status
    version: int
    created_at: str = _time(required=True)
    updated_at: str = _time(required=True)
    next_run_at: str | None = _time()
    paused_at: str | None = _time()
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
    to: str = _time(required=True)


class PreviewBody(Strict):
    schedule: str = Field(max_length=models.MAX_SCHEDULE)
    timezone: str | None = Field(None, max_length=models.MAX_TIMEZONE)
    after: str | None = _time()
    count: int | None = Field(None, ge=1, le=100)


class PreviewReply(BaseModel):
    next: list[str]
    next_local: list[str]
    description: str
    warnings: list[str]


# ---------------------------------------------------------------- executions
class StepResultReply(BaseModel):
    name: str
    exit_code: int
    duration_ms: float


class ExecutionReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    job_id: str = _uuid()
    attempt: int
    status: ExecutionStatus
    trigger: str
    scheduled_at: str = _time(required=True)
    run_at: str = _time(required=True)
    started_at: str | None = _time()
    finished_at: str | None = _time()
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
    log_removed_at: str | None = _time()


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
    created_at: str = _time(required=True)
    job_name: str | None = None


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetterReply]
    next_page_token: str


class DeliveryReply(BaseModel):
    target: str
    format: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str | None = _time()
    last_error: str | None = None
    last_status_code: int | None = None
    delivered_at: str | None = _time()


class AlertReply(BaseModel):
    id: str
    job_id: str
    execution_id: str
    kind: NotifyEvent
    created_at: str = _time(required=True)
    summary: str
    event: dict[str, Any]
    deliveries: list[DeliveryReply]


class AlertPage(BaseModel):
    alerts: list[AlertReply]
    next_page_token: str


# --------------------------------------------------------------------- stats
class Spread(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class RunsInMinuteReply(BaseModel):
    minute: str = _time(required=True)
    runs: int


class StatsReply(BaseModel):
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    duration_ms: Spread
    lateness_ms: Spread
    last: list[str]
    success_rate_last_hour: float | None
    jobs: dict[str, int]
    executions: dict[str, dict[str, int]]
    runs_per_minute: list[RunsInMinuteReply]


# ------------------------------------------------------------------- cluster
class SchedulerReply(BaseModel):
    id: str
    shards: list[int]
    address: str


class WorkerReply(BaseModel):
    id: str
    capacity: int
    running: int
    runtime: str


class ClusterReply(BaseModel):
    leader: str
    epoch: int
    coordinators: list[str]
    schedulers: list[SchedulerReply]
    workers: list[WorkerReply]
    metrics: dict[str, str]
    health: dict[str, str]


class HealthReply(BaseModel):
    status: str


LIMIT_DOC = f"page size, 1-{MAX_PAGE} (default 100; more is taken as {MAX_PAGE})"
